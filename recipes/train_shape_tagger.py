"""Shape tagger: which shape classes does an image contain? (multi-label, end to end)

Description: the shortest end-to-end tour of the recipe spine. A small CNN learns
    which of the detection set's classes appear in each image (multi-hot targets made from the
    boxes' labels), then the recipe evaluates it, exports the TF Serving SavedModel and fp32 +
    int8 `.tflite` files, and checks all three against the Keras model with `verify_export`.
Data: the embedded synthetic shapes set by default; `--data` takes anything
    `zoo.data.load_detection_data` reads (COCO JSON, YOLO txt, VOC XML, tfds:NAME).
Expected result: about 0.95 mean per-class accuracy after the default 8 epochs on 96x96 images.
Runtime: a few minutes on a 2-core CPU; `--smoke` well under a minute.

    python recipes/train_shape_tagger.py            # train, evaluate, export
    python recipes/train_shape_tagger.py --smoke    # the CI check
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.data import detection_pipeline, load_detection_data, synthetic_shapes  # noqa: E402
from zoo.export import export_saved_model, export_tflite, next_version, verify_export  # noqa: E402
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

# === Hyperparameters ===
DEFAULTS = {"epochs": 8, "batch_size": 32, "image_size": 96}
SMOKE = {"epochs": 1, "batch_size": 8, "image_size": 48, "steps_per_epoch": 2}


def build_arg_parser():
    parser = build_parser(__doc__.splitlines()[0], defaults=DEFAULTS, smoke_defaults=SMOKE)
    parser.add_argument(
        "--num-train", type=int_at_least(1), default=2000, help="synthetic training images"
    )
    parser.add_argument(
        "--num-val", type=int_at_least(1), default=500, help="synthetic validation images"
    )
    parser.add_argument(
        "--export-dir", default="saved_models", help="TF Serving model root (default: %(default)s)"
    )
    parser.add_argument("--no-export", action="store_true", help="skip export and verification")
    return parser


def parse_args(argv=None):
    args = parse_flags(build_arg_parser(), argv)
    if args.smoke:
        args.num_train, args.num_val = min(args.num_train, 32), min(args.num_val, 16)
    return args


# === Data ===
def load_splits(args):
    size = (args.image_size, args.image_size)
    if args.data in (None, "synthetic"):
        train_data = synthetic_shapes(args.num_train, image_size=size, seed=args.seed)
        val_data = synthetic_shapes(args.num_val, image_size=size, seed=args.seed + 10_000)
    else:
        train_data = load_detection_data(args.data, split="train")
        val_data = load_detection_data(args.data, split="validation")
    return train_data, val_data


def to_multi_hot(num_classes):
    def fn(batch):
        labels = batch["bounding_boxes"]["labels"]  # (B, max_boxes), -1 = padding
        hot = tf.one_hot(labels, num_classes)  # -1 gives an all-zero row
        return tf.cast(batch["images"], tf.float32), tf.reduce_max(hot, axis=1)

    return fn


def make_dataset(data, args, training):
    ds = detection_pipeline(
        data,
        (args.image_size, args.image_size),
        args.batch_size,
        max_boxes=20,
        augment=training,
        seed=args.seed,
        repeat=training and args.steps_per_epoch is not None,
    )
    return ds.map(to_multi_hot(data.num_classes), num_parallel_calls=tf.data.AUTOTUNE)


# === Model ===
def build_tagger(num_classes, image_size, width=32):
    inputs = keras.Input((image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for i, filters in enumerate((width, width * 2, width * 4, width * 4)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="sigmoid", name="class_scores")(x)
    return keras.Model(inputs, outputs, name="shape_tagger")


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, val_data = load_splits(args)
    train_ds = make_dataset(train_data, args, training=True)
    val_ds = make_dataset(val_data, args, training=False)

    with strategy.scope():
        model = build_tagger(train_data.num_classes, args.image_size)
        model.compile(
            keras.optimizers.Adam(2e-3),
            "binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
            **compile_options(args),
        )
    result = train(
        model,
        train_ds,
        args,
        recipe="shape_tagger",
        validation_data=val_ds,
        base_lr=2e-3,
        config={"num_classes": train_data.num_classes, "class_names": train_data.class_names},
    )

    # === Evaluation ===
    metrics = {k: float(v) for k, v in model.evaluate(val_ds, verbose=0, return_dict=True).items()}
    write_json(result.run.path / "metrics.json", metrics)
    print("validation:", json.dumps(metrics))

    # === Export ===
    if args.no_export:
        return metrics
    sample = np.concatenate([x for x, _ in val_ds.take(2).as_numpy_iterator()])[:8]
    version = next_version(args.export_dir, "shape_tagger")
    saved = export_saved_model(
        model,
        args.export_dir,
        "shape_tagger",
        version=version,
        class_names=train_data.class_names,
        metrics=metrics,
        config={"image_size": args.image_size, "num_classes": train_data.num_classes},
    )
    representative = np.concatenate([x for x, _ in train_ds.take(4).as_numpy_iterator()])
    fp32 = export_tflite(model, saved / "model_fp32.tflite")
    int8 = export_tflite(
        model,
        saved / "model_int8.tflite",
        quantization="int8",
        representative_dataset=representative,
    )
    report = verify_export(model, sample, saved_model_dir=saved, tflite_paths=[fp32, int8])
    print(f"exported {saved} (+ {fp32.name}, {int8.name}); verify_export passed")
    artifacts = {"saved_model": report["saved_model"], **report["tflite"]}
    for artifact, entry in artifacts.items():
        for output, diff in entry["outputs"].items():
            print(
                f"  {Path(artifact).name} [{output}]: max_abs={diff['max_abs']:.3g} "
                f"(limit {diff['limit']:.3g}), {entry['size_bytes']} bytes"
            )
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))
