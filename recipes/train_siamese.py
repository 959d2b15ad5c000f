"""Siamese network: one shared tower trained on image pairs with the contrastive loss.

Description: two images go through ONE embedding tower (``zoo.build_siamese``: shared
    weights); ``zoo.metric_learning.ContrastiveLoss`` (the squared-margin formula by default,
    LABEL 0 = SIMILAR pair) pulls similar pairs together and pushes dissimilar ones beyond the
    margin. Pairs come from ``zoo.metric_learning.PairGenerator``: half similar, half
    dissimilar, and with ``--hard-fraction`` a share of hard pairs (farthest positive / closest
    negative under the current model) mined again at the start of every epoch by
    ``HardMiningCallback``. Evaluation, plot and export are the triplet recipe's
    (``zoo.metric_learning.workflow``): retrieval and verification next to raw pixels, a t-SNE
    PNG, the tower exported as a SavedModel (image -> embedding) and a `.tflite`, checked with
    `verify_export`.
Data: as recipes/train_triplet.py (Fashion-MNIST, digits when it is absent, `--data FOLDER`;
    `--holdout-classes` for zero-shot).
Expected result: Fashion-MNIST, default flags trained for 10 minutes: test recall@1 about 0.75,
    below raw pixels' 0.85 (benchmarks/RESULTS.md; docs/metric_learning.md, "Known limits").
Runtime: about 5 minutes on a 2-core CPU with the defaults; `--smoke` well under a minute.

    python recipes/train_siamese.py
    python recipes/train_siamese.py --variant hadsell --margin 1.0 --hard-fraction 0
    python recipes/train_siamese.py --smoke
"""

from __future__ import annotations

import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from zoo.data.classification import make_augmentation  # noqa: E402
from zoo.metric_learning.loss import CONTRASTIVE_VARIANTS, ContrastiveLoss  # noqa: E402
from zoo.metric_learning.model import build_embedding_model, build_siamese  # noqa: E402
from zoo.metric_learning.sampling import HardMiningCallback, PairGenerator  # noqa: E402
from zoo.metric_learning.workflow import (  # noqa: E402
    SIAMESE_DEFAULTS,
    SMOKE_SUBSETS,
    evaluate_against_pixels,
    export_tower,
    holdout_splits,
    load_embedding_data,
    metric_learning_parser,
    metrics_table,
    plot_test_embeddings,
)
from zoo.training import compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import float_in, int_at_least  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

# === Hyperparameters ===
# Every default lives in zoo.metric_learning.SIAMESE_DEFAULTS (the benchmark reads it too):
# batch_size = pairs per step (2 images each); distance "l2" is the D of the contrastive
# formula and the margin is on D² (the squared variant).
DEFAULTS = SIAMESE_DEFAULTS
SMOKE = {"epochs": 2, "batch_size": 16, "image_size": None, "steps_per_epoch": 2, **SMOKE_SUBSETS}


def build_arg_parser():
    parser = metric_learning_parser(__doc__.splitlines()[0], DEFAULTS, SMOKE)
    parser.add_argument("--variant", choices=CONTRASTIVE_VARIANTS, default=DEFAULTS["variant"])
    parser.add_argument(
        "--hard-fraction",
        type=float_in(0, 1),
        default=DEFAULTS["hard_fraction"],
        help="share of each batch taken from mined hard pairs (0 = random pairs only)",
    )
    parser.add_argument(
        "--mining-pool",
        type=int_at_least(1),
        default=DEFAULTS["mining_pool"],
        help="examples mined per epoch",
    )
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
    pairs = PairGenerator(
        fit_part.images,
        fit_part.labels,
        batch_size=args.batch_size,
        hard_fraction=args.hard_fraction,
        pool_size=args.mining_pool,
        seed=args.seed,
    )
    augment = make_augmentation(max_shift=args.shift, seed=args.seed) if args.augment else None
    dataset = pairs.dataset(augment=augment, target_key="distance")

    # === Model ===
    with strategy.scope():
        encoder = build_embedding_model(
            train_data.image_shape,
            embedding_dim=args.embedding_dim,
            width=args.width,
            dropout=args.dropout,
            name="siamese_embedding",
        )
        siamese = build_siamese(encoder, distance=args.distance)
        loss = ContrastiveLoss(margin=args.margin, variant=args.variant)  # y = 0: similar
        siamese.compile(
            keras.optimizers.Adam(args.lr), loss={"distance": loss}, **compile_options(args)
        )

    # === Training ===
    callbacks = [HardMiningCallback(pairs, encoder)] if args.hard_fraction > 0 else []
    result = train(
        siamese,
        dataset,
        args,
        recipe="siamese",
        base_lr=args.lr,
        callbacks=callbacks,
        config={
            "variant": args.variant,
            "margin": args.margin,
            "hard_fraction": args.hard_fraction,
            "holdout_classes": args.holdout_classes,
            "data": train_data.source,
        },
    )
    run = result.run.path

    # === Evaluation ===
    results = evaluate_against_pixels(encoder, parts, num_pairs=args.eval_pairs, seed=args.seed)
    print(metrics_table(results))
    metrics_path = write_json(run / "metrics.json", results)
    plot = plot_test_embeddings(
        encoder,
        parts,
        run / "tsne.png",
        class_names=train_data.class_names,
        max_points=args.plot_points,
        seed=args.seed,
        title=f"siamese ({args.variant} contrastive) test embeddings",
    )
    print(f"metrics: {metrics_path}; plot: {plot}")

    # === Export ===
    if not args.no_export:
        export_tower(
            encoder,
            args.export_dir,
            "siamese_embedding",
            test_data.images[:8],
            distance=args.distance,
            class_names=train_data.class_names,
            results=results,
        )
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
