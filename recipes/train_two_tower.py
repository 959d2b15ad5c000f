"""Two-tower (multi-stream) model: match an item across two domains, fully offline.

Description: domain A is the photo-like image (28x28 Fashion-MNIST, or digits); domain B is a
    different rendering of the SAME item: a 14x14 edge sketch (Sobel gradient magnitude,
    2x2-average-pooled) flattened into a 196-d vector, i.e. another modality that needs another
    network. ``zoo.build_two_tower`` joins a small CNN (images) and an MLP (sketch vectors), each
    projected into one shared, L2-normalised space, and trains them with
    ``zoo.metric_learning.ContrastiveLoss`` on the pair embeddings: matched (image, sketch) pairs are
    similar (y = 0), each image with another item's sketch from the batch is dissimilar (y = 1).
    Evaluation is cross-modal retrieval on the test split: every image queries the gallery of all
    sketches; recall@1 counts the item's own sketch ranked first (instance level), and the class
    recall@1 counts a sketch of the same class ranked first. The recipe then exports each tower
    on its own into the shared space, "two_tower_image" (image -> embedding) and
    "two_tower_sketch" (196-d sketch vector -> embedding), as a TF Serving SavedModel and a
    `.tflite` under `--export-dir`, checked with `verify_export` (`--no-export` skips it).
Data: Fashion-MNIST from local files, digits when it is absent, or `--data FOLDER`.
Expected result: Fashion-MNIST, defaults: instance recall@1 well above chance (1 in 10000).
Runtime: a few minutes on a 2-core CPU; `--smoke` well under a minute.

    python recipes/train_two_tower.py                    # train, evaluate, export both towers
    python recipes/train_two_tower.py --no-export        # train and evaluate only
    python recipes/train_two_tower.py --smoke
"""

from __future__ import annotations

import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo.data.classification import load_classification_data, subsample  # noqa: E402
from zoo.export import export_encoder  # noqa: E402
from zoo.metric_learning import cross_modal_recall, edge_sketches, sketch_pair_batches
from zoo.metric_learning.loss import ContrastiveLoss
from zoo.metric_learning.model import build_embedding_model, build_two_tower
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least, non_negative_float, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

# === Hyperparameters ===
DEFAULTS = {"epochs": 8, "batch_size": 64, "image_size": None, "steps_per_epoch": 150}
EXPORT_DIR = "saved_models"
SMOKE = {"epochs": 1, "batch_size": 16, "image_size": None, "steps_per_epoch": 2}


def build_arg_parser():
    parser = build_parser(
        __doc__.splitlines()[0],
        defaults=DEFAULTS,
        smoke_defaults={**SMOKE, "max_train": 400, "max_test": 200},
    )
    parser.add_argument(
        "--projection-dim", type=int_at_least(1), default=64, help="shared space size"
    )
    parser.add_argument(
        "--margin", type=non_negative_float, default=1.0, help="contrastive margin (on D²)"
    )
    parser.add_argument("--lr", type=positive_float, default=2e-3, help="Adam learning rate (peak)")
    parser.add_argument(
        "--max-train", type=int_at_least(1), default=None, help="subsample the train split"
    )
    parser.add_argument(
        "--max-test", type=int_at_least(1), default=2000, help="test items to retrieve among"
    )
    parser.add_argument("--export-dir", default=EXPORT_DIR, help="TF Serving model root")
    parser.add_argument("--no-export", action="store_true", help="skip export and verification")
    return parser


def parse_args(argv=None):
    return parse_flags(build_arg_parser(), argv)


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, test_data = load_classification_data(args.data, seed=args.seed)
    train_data = subsample(train_data, args.max_train, args.seed)
    test_data = subsample(test_data, args.max_test, args.seed + 1)
    train_sketch, test_sketch = edge_sketches(train_data.images), edge_sketches(test_data.images)
    dataset = sketch_pair_batches(train_data.images, train_sketch, args.batch_size, args.seed)

    # === Model ===
    with strategy.scope():
        image_encoder = build_embedding_model(
            train_data.image_shape,
            embedding_dim=128,
            width=16,
            normalize=False,
            name="image_encoder",
        )
        sketch_encoder = build_embedding_model(
            train_sketch.shape[1:],
            embedding_dim=128,
            backbone="mlp",
            width=32,
            normalize=False,
            name="sketch_encoder",
        )
        model = build_two_tower(image_encoder, sketch_encoder, args.projection_dim)
        model.compile(
            keras.optimizers.Adam(args.lr),
            loss={"embeddings": ContrastiveLoss(margin=args.margin)},
            **compile_options(args),
        )
    before = cross_modal_recall(model, test_data.images, test_sketch, test_data.labels)

    # === Training ===
    result = train(
        model,
        dataset,
        args,
        recipe="two_tower",
        base_lr=args.lr,
        config={"projection_dim": args.projection_dim, "margin": args.margin},
    )

    # === Evaluation ===
    after = cross_modal_recall(model, test_data.images, test_sketch, test_data.labels)
    metrics = {"untrained": before, "trained": after}
    write_json(result.run.path / "metrics.json", metrics)
    for name, values in metrics.items():
        print(
            f"{name:<10} "
            + " ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
            )
        )

    # === Export ===
    if not args.no_export:
        exports = export_towers(model, args, test_data, test_sketch, after)
        print("exports: " + ", ".join(f"{name} -> {path}" for name, path in exports.items()))
    return metrics


def export_towers(model, args, test_data, test_sketch, metrics):
    """Each tower alone (its input -> the shared embedding): SavedModel + ``.tflite``, verified.

    Returns:
        ``{model name: saved_model_dir}``.
    """
    towers = {
        "two_tower_image": (
            model.get_layer("tower_a"),
            test_data.images[:8],
            True,
            {"input": "float32 pixels 0-255"},
        ),
        "two_tower_sketch": (
            model.get_layer("tower_b"),
            test_sketch[:8],
            False,
            {
                "input": "float32 edge sketch vector: zoo.metric_learning.edge_sketches (Sobel "
                "magnitude of the 0-255 image, 2x2 average-pooled, flattened, scaled to 0-255)"
            },
        ),
    }
    exports = {}
    for name, (tower, sample, image_input, preprocessing) in towers.items():
        saved, _ = export_encoder(
            tower,
            args.export_dir,
            name,
            np.asarray(sample, np.float32),
            image_input=image_input,
            class_names=list(test_data.class_names),
            metrics=metrics,
            preprocessing=preprocessing,
            config={
                "embedding_dim": int(tower.output_shape[-1]),
                "distance": "l2",  # unit-norm embeddings: the same ranking as cosine
                "input_shape": [int(d) for d in tower.input_shape[1:]],
                "projection_dim": args.projection_dim,
                "margin": args.margin,
            },
        )
        exports[name] = saved
    return exports


if __name__ == "__main__":
    sys.exit(run_cli(main))
