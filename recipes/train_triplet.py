"""Triplet network: an image embedding trained with online triplet mining on P×K batches.

Description: a small CNN tower (``zoo.build_embedding_model``) learns a unit-norm embedding
    with ``zoo.metric_learning.TripletLoss`` (batch-all, batch-hard or FaceNet semi-hard mining) on
    class-balanced P×K batches. The recipe then evaluates retrieval (recall@1/2/4/8 of test
    queries against the train gallery, MAP@R leave-one-out on the test split) and verification
    (LFW-protocol accuracy, ROC AUC, VAL@FAR=1e-3) next to raw-pixel nearest neighbour, writes a
    t-SNE plot, and exports the tower (image -> embedding) as a TF Serving SavedModel and a
    `.tflite`, checked with `verify_export`.
Data: Fashion-MNIST from the local IDX files (Debian package `dataset-fashion-mnist`,
    ~/.keras/datasets), scikit-learn digits when it is absent, or `--data FOLDER` (one
    sub-folder per class; `train/` + `test/` sub-folders are used as the splits).
    `--holdout-classes 5,6,7,8,9` trains without those classes and reports them separately
    (zero-shot retrieval on unseen classes).
Expected result: Fashion-MNIST, default flags (P 10 x K 8 batches, semi-hard): test recall@1
    about 0.92 against raw pixels' 0.85 (benchmarks/RESULTS.md). Zero-shot
    (`--holdout-classes`): unseen-class recall falls the longer the tower trains on the seen
    classes; train briefly, or watch `RetrievalMetricsCallback` on classes held out for
    validation (docs/metric_learning.md).
Runtime: about 4 minutes on a 2-core CPU with the defaults; `--smoke` well under a minute.

    python recipes/train_triplet.py                          # train, evaluate, plot, export
    python recipes/train_triplet.py --mining hard --margin 0.3
    python recipes/train_triplet.py --holdout-classes 5,6,7,8,9
    python recipes/train_triplet.py --smoke                  # the CI check
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo.data.classification import (  # noqa: E402
    load_classification_data,
    make_augmentation,
    pk_batches,
    resize_images,
    split_classes,
    subsample,
)
from zoo.export import export_encoder  # noqa: E402
from zoo.metric_learning.loss import MINING_MODES, TripletLoss
from zoo.metric_learning.model import build_embedding_model
from zoo.metrics.retrieval import evaluate_encoder, plot_embeddings  # noqa: E402
from zoo.ops.distances import DISTANCES  # noqa: E402
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402

# === Hyperparameters ===
# batch_size = P x K (P classes, K examples each); image_size None = the data's own size.
DEFAULTS = {"epochs": 12, "batch_size": 80, "image_size": None, "steps_per_epoch": 200}
SMOKE = {"epochs": 1, "batch_size": 16, "image_size": None, "steps_per_epoch": 2}


def parse_list(text):
    return [int(v) for v in str(text).split(",") if v.strip()] if text else []


def add_metric_learning_flags(parser, *, margin, distance):
    """Flags shared by the metric-learning recipes (data, tower, evaluation, export)."""
    group = parser.add_argument_group("metric learning")
    group.add_argument("--embedding-dim", type=int, default=64, help="default: %(default)s")
    group.add_argument("--width", type=int, default=16, help="filters of the first conv block")
    group.add_argument("--dropout", type=float, default=0.0, help="before the embedding layer")
    group.add_argument("--margin", type=float, default=margin, help="default: %(default)s")
    group.add_argument("--distance", choices=DISTANCES, default=distance, help="%(default)s")
    group.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (peak)")
    group.add_argument(
        "--no-augment", dest="augment", action="store_false", help="no random flip / shift"
    )
    group.add_argument(
        "--shift",
        type=float,
        default=0.0,
        help="random translation as a fraction of the image (0 = flips only). Default: %(default)s",
    )
    group.add_argument(
        "--holdout-classes",
        type=parse_list,
        default=[],
        metavar="C1,C2",
        help="train without these classes; report them separately (zero-shot)",
    )
    group.add_argument("--max-train", type=int, default=None, help="subsample the train split")
    group.add_argument("--max-test", type=int, default=None, help="subsample the test split")
    group.add_argument("--eval-pairs", type=int, default=20000, help="verification pairs")
    group.add_argument("--plot-points", type=int, default=2000, help="t-SNE points")
    group.add_argument("--export-dir", default="saved_models", help="TF Serving model root")
    group.add_argument("--no-export", action="store_true", help="skip export and verification")
    parser.set_defaults(augment=True)
    return parser


SMOKE_EXTRA = {"max_train": 600, "max_test": 300, "eval_pairs": 400, "plot_points": 150}


def parse_args(argv=None):
    parser = build_parser(
        __doc__.splitlines()[0], defaults=DEFAULTS, smoke_defaults={**SMOKE, **SMOKE_EXTRA}
    )
    add_metric_learning_flags(parser, margin=0.2, distance="squared_l2")
    parser.add_argument("--mining", choices=MINING_MODES, default="semi-hard")
    parser.add_argument("--k", type=int, default=8, help="examples per class in a batch (K)")
    return parse_flags(parser, argv)


# === Data ===
def load_data(args):
    train, test = load_classification_data(args.data, seed=args.seed)
    size = None if args.image_size is None else (args.image_size, args.image_size)
    train = resize_images(subsample(train, args.max_train, args.seed), size)
    test = resize_images(subsample(test, args.max_test, args.seed + 1), size)
    return train, test


def splits(train, test, holdout):
    """``{name: (train part, test part)}``: ``all``, or ``seen`` and ``unseen`` with a holdout."""
    if not holdout:
        return {"all": (train, test)}
    seen_train, unseen_train = split_classes(train, holdout)
    seen_test, unseen_test = split_classes(test, holdout)
    return {"seen": (seen_train, seen_test), "unseen": (unseen_train, unseen_test)}


# === Evaluation ===
def evaluate(encoder, parts, args):
    """Metrics of the encoder and of raw pixels for every part (test queries, train gallery)."""

    def pixels(x):
        return x.reshape(len(x), -1) / 255.0

    results = {}
    for name, (train_part, test_part) in parts.items():
        options = {"num_pairs": args.eval_pairs, "seed": args.seed}
        results[name] = {
            "model": evaluate_encoder(
                encoder,
                test_part.images,
                test_part.labels,
                train_part.images,
                train_part.labels,
                **options,
            ),
            "raw_pixels": evaluate_encoder(
                pixels,
                test_part.images,
                test_part.labels,
                train_part.images,
                train_part.labels,
                **options,
            ),
        }
    return results


def print_metrics(results):
    keys = (
        "recall@1",
        "recall@2",
        "recall@4",
        "recall@8",
        "map@r",
        "verification_accuracy",
        "verification_roc_auc",
        "verification_val@far=0.001",
    )
    print(
        f"{'split':<8} {'embedding':<11} "
        + " ".join(f"{k.replace('verification_', 'ver_'):>12}" for k in keys)
    )
    for split, entry in results.items():
        for who, metrics in entry.items():
            print(f"{split:<8} {who:<11} " + " ".join(f"{metrics[k]:>12.4f}" for k in keys))


# === Export ===
def export_tower(encoder, name, sample, args, train, metrics):
    """SavedModel (image -> embedding) + fp32 .tflite, checked against the Keras tower."""
    return export_encoder(
        encoder,
        args.export_dir,
        name,
        sample,
        class_names=list(train.class_names),
        metrics=metrics,
        config={
            "embedding_dim": args.embedding_dim,
            "distance": args.distance,
            "image_shape": list(train.image_shape),
            "input": "float32 pixels 0-255",
        },
    )


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, test_data = load_data(args)
    parts = splits(train_data, test_data, args.holdout_classes)
    fit_part = parts["all" if "all" in parts else "seen"][0]
    k = args.k
    p = max(2, min(args.batch_size // k, len(np.unique(fit_part.labels))))
    augment = make_augmentation(max_shift=args.shift, seed=args.seed) if args.augment else None
    dataset = pk_batches(
        fit_part.images, fit_part.labels, p=p, k=k, seed=args.seed, augment=augment
    )

    # === Model ===
    with strategy.scope():
        encoder = build_embedding_model(
            train_data.image_shape,
            embedding_dim=args.embedding_dim,
            width=args.width,
            dropout=args.dropout,
            name="triplet_embedding",
        )
        loss = TripletLoss(margin=args.margin, mining=args.mining, distance=args.distance)
        encoder.compile(keras.optimizers.Adam(args.lr), loss=loss, **compile_options(args))

    # === Training ===
    result = train(
        encoder,
        dataset,
        args,
        recipe="triplet",
        base_lr=args.lr,
        config={
            "mining": args.mining,
            "margin": args.margin,
            "p": p,
            "k": k,
            "holdout_classes": args.holdout_classes,
            "data": train_data.source,
        },
    )

    return finish_run(
        encoder,
        parts,
        args,
        result.run.path,
        train_data,
        test_data,
        tower="triplet_embedding",
        title=f"triplet ({args.mining}) test embeddings",
    )


def finish_run(encoder, parts, args, run, train_data, test_data, tower, title):
    """Evaluate, write metrics.json and the t-SNE plot, export the tower (shared by recipes)."""
    # === Evaluation ===
    results = evaluate(encoder, parts, args)
    print_metrics(results)
    (run / "metrics.json").write_text(json.dumps(results, indent=2))
    plot_part = parts["unseen" if "unseen" in parts else "all"][1]
    emb = encoder.predict(plot_part.images.astype("float32"), batch_size=512, verbose=0)
    plot = plot_embeddings(
        emb,
        plot_part.labels,
        run / "tsne.png",
        class_names=train_data.class_names,
        max_points=args.plot_points,
        seed=args.seed,
        title=title,
    )
    print(f"metrics: {run / 'metrics.json'}; plot: {plot}")

    # === Export ===
    if not args.no_export:
        sample = test_data.images[:8].astype("float32")
        flat = {f"{s}_{k}": v for s, e in results.items() for k, v in e["model"].items()}
        export_tower(encoder, tower, sample, args, train_data, flat)
    return results


if __name__ == "__main__":
    main()
