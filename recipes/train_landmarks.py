"""Landmarks: is there a face, and where are its eyes, nose tip and mouth corners? (end to end)

Description: trains `zoo.build_landmark_model` (presence + K points; regression or heatmap head)
    with the Wing `LandmarkLoss`, evaluates NME (inter-ocular), failure rate, AUC@0.1 and
    presence accuracy, writes metrics.json, a CED plot and a grid of validation images with the
    predicted (red x) and true (green o) points, and exports with `zoo.landmarks.export_landmarks`:
    the TF Serving SavedModel (outputs `presence` and `landmarks` in pixels of the input image)
    and fp32 + int8 `.tflite` files (int8 body; the heatmap head's soft-argmax stays float),
    checked with `verify_export`, with the int8-vs-fp32 NME drift measured.
Data: the embedded synthetic faces (`zoo.landmarks.faces`) by default; `--data tfds:celeb_a` or
    `--data FOLDER` (iBUG / 300-W `.pts` files next to their images; `train/` + `val/`
    subfolders, or a flat folder split 90/10).
Expected result: synthetic faces, default flags (9-minute budget on a 2-core CPU): NME around
    3 % of the inter-ocular distance and presence accuracy around 99 % on 500 validation images;
    int8 NME within 0.5 points of fp32.
Runtime: about 10 minutes (training stops at --time-budget); `--smoke` well under a minute.

    python recipes/train_landmarks.py                       # train, evaluate, export
    python recipes/train_landmarks.py --head regression     # the other head
    python recipes/train_landmarks.py --smoke               # the CI check
"""

from __future__ import annotations

import json
import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from zoo.landmarks.data import landmark_pipeline, load_landmark_data  # noqa: E402
from zoo.landmarks.export import export_landmarks  # noqa: E402
from zoo.landmarks.loss import COORDINATE_LOSSES, LandmarkLoss  # noqa: E402
from zoo.landmarks.metrics import (  # noqa: E402
    collect_predictions,
    metrics_from_predictions,
    nme,
    save_ced_plot,
    save_landmark_grid,
)
from zoo.landmarks.model import (  # noqa: E402
    DEFAULT_HEAD,
    HEADS,
    build_landmark_model,
    pixel_landmark_model,
)
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least, non_negative_float, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

# === Hyperparameters ===
DEFAULTS = {"epochs": 60, "batch_size": 32, "image_size": 96, "time_budget": 9.0}
SMOKE = {
    "epochs": 1,
    "batch_size": 8,
    "image_size": 64,
    "steps_per_epoch": 2,
    "time_budget": None,
}
LEARNING_RATE = 2e-3
COORDINATE_WEIGHT = 5.0


def build_arg_parser():
    parser = build_parser(__doc__.splitlines()[0], defaults=DEFAULTS, smoke_defaults=SMOKE)
    parser.add_argument("--head", choices=HEADS, default=DEFAULT_HEAD, help="default: %(default)s")
    parser.add_argument("--backbone", default="tiny", help="tiny or a zoo.backbones.cnn name")
    parser.add_argument("--heatmap-stride", type=int, choices=(2, 4, 8), default=4)
    parser.add_argument("--loss", choices=COORDINATE_LOSSES, default="wing", help="coordinate loss")
    parser.add_argument("--learning-rate", type=positive_float, default=LEARNING_RATE)
    parser.add_argument("--coordinate-weight", type=non_negative_float, default=COORDINATE_WEIGHT)
    parser.add_argument("--num-landmarks", type=int, choices=(5, 9), default=5, help="synthetic")
    parser.add_argument(
        "--num-train", type=int_at_least(1), default=4000, help="synthetic training images"
    )
    parser.add_argument(
        "--num-val", type=int_at_least(1), default=500, help="synthetic validation images"
    )
    parser.add_argument(
        "--export-dir", default="saved_models", help="TF Serving model root (default: %(default)s)"
    )
    parser.add_argument("--no-export", action="store_true", help="skip export and verification")
    parser.add_argument(
        "--image-dir", help="image folder of a --data landmark table (default: found beside it)"
    )
    return parser


def parse_args(argv=None):
    args = parse_flags(build_arg_parser(), argv)
    if args.smoke:
        args.num_train, args.num_val = min(args.num_train, 32), min(args.num_val, 16)
    return args


# === Data ===
def load_splits(args):
    if args.data in (None, "synthetic"):
        size = (args.image_size, args.image_size)
        common = dict(image_size=size, num_landmarks=args.num_landmarks, seed=args.seed)
        train_data = load_landmark_data("synthetic", "train", num_images=args.num_train, **common)
        val_data = load_landmark_data("synthetic", "validation", num_images=args.num_val, **common)
    else:
        kwargs = {"image_dir": args.image_dir} if args.image_dir else {}
        train_data = load_landmark_data(args.data, "train", **kwargs)
        val_data = load_landmark_data(args.data, "validation", **kwargs)
    return train_data, val_data


def make_datasets(train_data, val_data, args):
    size = (args.image_size, args.image_size)
    small = (train_data.num_examples or 10**9) <= 20_000
    train_ds = landmark_pipeline(
        train_data,
        size,
        args.batch_size,
        augment=True,
        seed=args.seed,
        repeat=args.steps_per_epoch is not None,
        cache=small,
    )
    val_ds = landmark_pipeline(val_data, size, args.batch_size, cache=small)
    return train_ds, val_ds


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, val_data = load_splits(args)
    train_ds, val_ds = make_datasets(train_data, val_data, args)
    size = (args.image_size, args.image_size)
    eye_kwargs = (
        {"normalization": "inter_ocular", "eye_indices": val_data.eye_indices}
        if val_data.eye_indices is not None
        else {"normalization": "box_diagonal"}
    )

    # === Model ===
    with strategy.scope():
        model = build_landmark_model(
            val_data.num_landmarks,
            input_shape=(*size, 3),
            backbone=args.backbone,
            head=args.head,
            heatmap_stride=args.heatmap_stride,
        )
        model.compile(
            keras.optimizers.Adam(args.learning_rate),
            LandmarkLoss(args.loss, coordinate_weight=args.coordinate_weight),
            **compile_options(args),
        )

    # === Training ===
    result = train(
        model,
        train_ds,
        args,
        recipe="landmarks",
        validation_data=val_ds,
        base_lr=args.learning_rate,
        warmup=0.02,
        min_lr_ratio=0.01,
        config={
            "num_landmarks": val_data.num_landmarks,
            "landmark_names": list(val_data.landmark_names),
            "head": args.head,
            "backbone": args.backbone,
            "loss": args.loss,
        },
    )
    run = result.run.path

    # === Evaluation ===
    keras_pixels = pixel_landmark_model(model)
    collected = collect_predictions(
        lambda x: keras_pixels.predict_on_batch(x), val_ds, size, keep_images=24
    )
    metrics = {"keras": metrics_from_predictions(collected, **eye_kwargs)}
    print("validation:", json.dumps(metrics["keras"]))
    curves = {
        "keras": nme(
            collected["pred_landmarks"],
            collected["true_landmarks"],
            collected["visibility"],
            collected["true_presence"],
            **eye_kwargs,
        )
    }
    n = len(collected["images"])
    save_landmark_grid(
        collected["images"],
        collected["pred_landmarks"][:n],
        collected["true_landmarks"][:n],
        collected["visibility"][:n],
        collected["pred_presence"][:n],
        collected["true_presence"][:n],
        path=run / "val_predictions.png",
    )

    # === Export ===
    if not args.no_export:
        exported = export_landmarks(
            model,
            train_ds,
            val_ds,
            args.export_dir,
            "landmarks",
            eye_indices=val_data.eye_indices,
            metrics=metrics["keras"],
            config={
                "image_size": args.image_size,
                "landmark_names": list(val_data.landmark_names),
            },
        )
        saved, fp32, int8 = (exported[k] for k in ("saved_model", "tflite_fp32", "tflite_int8"))
        print(f"exported {saved} (+ {fp32.name}, {int8.name}); verify_export passed")
        metrics.update(exported["metrics"])
        curves.update(exported["nme"])
        metrics["int8_nme_minus_fp32"] = exported["int8_nme_minus_fp32"]
        metrics["artifacts"] = {
            "saved_model": str(saved),
            "tflite_fp32": str(fp32),
            "tflite_int8": str(int8),
        }
        metrics["export"] = exported["max_abs"]
        print(
            f"NME fp32 {metrics['tflite_fp32']['nme']:.4f}, int8 {metrics['tflite_int8']['nme']:.4f} "
            f"(int8 - fp32 = {100 * metrics['int8_nme_minus_fp32']:+.2f} points)"
        )
    save_ced_plot(curves, run / "ced.png")
    write_json(run / "metrics.json", metrics)
    print(f"wrote {run / 'metrics.json'}, {run / 'ced.png'}, {run / 'val_predictions.png'}")
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))
