"""Siamese network: one shared tower trained on image pairs with the contrastive loss.

Description: two images go through ONE embedding tower (shared weights) and
    ``zoo.metric_learning.ContrastiveLoss``'s squared-margin formula (LABEL 0 = SIMILAR pair)
    pulls similar pairs together and pushes dissimilar ones beyond the margin. By default
    (`--pairs in-batch`) the pairs are every pair of a P x K batch (P classes x K images):
    ``BatchContrastiveLoss`` on the tower, B(B-1) pairs for B forward passes, averaged as the
    mean over similar pairs plus the mean over dissimilar pairs still inside the margin
    (`--average active`). `--pairs explicit` trains ``zoo.build_siamese`` on pairs from
    ``zoo.metric_learning.PairGenerator`` (half similar, half dissimilar; `--hard-fraction` of
    them mined again every epoch by ``HardMiningCallback``: farthest positive, closest
    negative). A collapse of the embeddings stops the run with one line. Evaluation, plot and
    export are the triplet recipe's (``zoo.metric_learning.workflow``): retrieval and
    verification next to raw pixels, a t-SNE PNG, the tower exported as a SavedModel
    (image -> embedding) and a `.tflite`, checked with `verify_export`.
Data: as recipes/train_triplet.py (Fashion-MNIST, digits when it is absent, `--data FOLDER`;
    `--holdout-classes` for zero-shot).
Expected result: Fashion-MNIST, default flags trained for 10 minutes: test recall@1 0.915
    against raw pixels' 0.850 (benchmarks/RESULTS.md; docs/metric_learning.md).
Runtime: about 4 minutes on a 2-core CPU with the defaults; `--smoke` well under a minute.

    python recipes/train_siamese.py
    python recipes/train_siamese.py --variant hadsell --margin 1.0
    python recipes/train_siamese.py --pairs explicit --hard-fraction 0
    python recipes/train_siamese.py --smoke
"""

from __future__ import annotations

import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from zoo.metric_learning.collapse import CollapseMonitor  # noqa: E402
from zoo.metric_learning.loss import (  # noqa: E402
    CONTRASTIVE_AVERAGES,
    CONTRASTIVE_VARIANTS,
    BatchContrastiveLoss,
    ContrastiveLoss,
)
from zoo.metric_learning.model import build_embedding_model, build_siamese  # noqa: E402
from zoo.metric_learning.sampling import (  # noqa: E402
    HardMiningCallback,
    PairGenerator,
)
from zoo.metric_learning.workflow import (  # noqa: E402
    SIAMESE_DEFAULTS,
    SMOKE_SUBSETS,
    add_offline_mining_flags,
    evaluate_plot_export,
    holdout_splits,
    load_embedding_data,
    metric_learning_parser,
    probe_images,
    training_batches,
)
from zoo.training import compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least  # noqa: E402

# === Hyperparameters ===
# Every default lives in zoo.metric_learning.SIAMESE_DEFAULTS (the benchmark reads it too):
# batch_size = pairs per step (2 images each); distance "l2" is the D of the contrastive
# formula and the margin is on D² (the squared variant).
DEFAULTS = SIAMESE_DEFAULTS
SMOKE = {"epochs": 2, "batch_size": 16, "image_size": None, "steps_per_epoch": 2, **SMOKE_SUBSETS}


PAIRS = ("in-batch", "explicit")


def build_arg_parser():
    parser = metric_learning_parser(__doc__.splitlines()[0], DEFAULTS, SMOKE)
    parser.add_argument(
        "--pairs",
        choices=PAIRS,
        default=DEFAULTS["pairs"],
        help="in-batch: every pair of a P x K batch (--k); explicit: build_siamese on "
        "PairGenerator pairs (--batch-size pairs per step). Default: %(default)s",
    )
    parser.add_argument("--variant", choices=CONTRASTIVE_VARIANTS, default=DEFAULTS["variant"])
    parser.add_argument(
        "--average",
        choices=CONTRASTIVE_AVERAGES,
        default=DEFAULTS["average"],
        help="active: mean over similar pairs + mean over dissimilar pairs inside the margin; "
        "pairs: mean over every pair. Default: %(default)s",
    )
    parser.add_argument(
        "--k",
        type=int_at_least(2),
        default=DEFAULTS["k"],
        help="in-batch pairs: examples per class in a batch (K). Default: %(default)s",
    )
    add_offline_mining_flags(parser, DEFAULTS)
    return parser


def parse_args(argv=None):
    return parse_flags(build_arg_parser(), argv)


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)

    # === Data ===
    train_data, test_data = load_embedding_data(
        args.data,
        image_size=args.image_size,
        max_train=args.max_train,
        max_test=args.max_test,
        seed=args.seed,
    )
    parts = holdout_splits(train_data, test_data, args.holdout_classes)
    fit_part = parts["all" if "all" in parts else "seen"][0]
    explicit = args.pairs == "explicit"
    dataset, pairs, _ = training_batches(
        args, fit_part, PairGenerator if explicit else None, target_key="distance"
    )

    # === Model ===
    with strategy.scope():
        encoder = build_embedding_model(
            train_data.image_shape,
            embedding_dim=args.embedding_dim,
            width=args.width,
            dropout=args.dropout,
            name="siamese_embedding",
        )
        if explicit:  # two inputs through the one tower; y = 0: similar
            model = build_siamese(encoder, distance=args.distance)
            loss = {
                "distance": ContrastiveLoss(
                    margin=args.margin, variant=args.variant, average=args.average
                )
            }
        else:  # the same tower and formula on every pair of the batch
            model = encoder
            loss = BatchContrastiveLoss(
                margin=args.margin,
                variant=args.variant,
                distance=args.distance,
                average=args.average,
            )
        model.compile(keras.optimizers.Adam(args.lr), loss=loss, **compile_options(args))
    callbacks = [CollapseMonitor(probe_images(fit_part), encoder=encoder)]
    if explicit and args.hard_fraction > 0:
        callbacks.append(HardMiningCallback(pairs, encoder))

    # === Training ===
    result = train(
        model,
        dataset,
        args,
        recipe="siamese",
        base_lr=args.lr,
        callbacks=callbacks,
        config={
            "pairs": args.pairs,
            "variant": args.variant,
            "margin": args.margin,
            "average": args.average,
            "hard_fraction": args.hard_fraction if explicit else None,
            "holdout_classes": args.holdout_classes,
            "data": train_data.source,
        },
    )

    # === Evaluation and export ===
    return evaluate_plot_export(
        encoder,
        parts,
        args,
        result.run.path,
        class_names=train_data.class_names,
        title=f"siamese ({args.variant} contrastive) test embeddings",
        export_name="siamese_embedding",
        sample=test_data.images[:8],
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
