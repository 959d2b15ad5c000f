"""Siamese network: one shared tower trained on image pairs with the contrastive loss.

Description: two images go through ONE embedding tower (``zoo.build_siamese``: shared
    weights); ``zoo.metric_learning.ContrastiveLoss`` (the squared-margin formula by default, LABEL 0 = SIMILAR
    pair) pulls similar pairs together and pushes dissimilar ones beyond the margin. Pairs come
    from ``PairGenerator``: half similar, half dissimilar, and with ``--hard-fraction`` a share of
    hard pairs (farthest positive / closest negative under the current model) mined again at the
    start of every epoch by ``HardMiningCallback``. Evaluation, plot and export are the triplet
    recipe's: retrieval and verification next to raw pixels, a t-SNE PNG, the tower exported as
    a SavedModel (image -> embedding) and a `.tflite`, checked with `verify_export`.
Data: as recipes/train_triplet.py (Fashion-MNIST, digits when it is absent, `--data FOLDER`;
    `--holdout-classes` for zero-shot).
Expected result: Fashion-MNIST, default flags: test recall@1 about 0.85-0.9; see
    benchmarks/bench_metric_learning.py.
Runtime: about 5 minutes on a 2-core CPU with the defaults; `--smoke` well under a minute.

    python recipes/train_siamese.py
    python recipes/train_siamese.py --variant hadsell --margin 1.0 --hard-fraction 0
    python recipes/train_siamese.py --smoke
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
from train_triplet import (  # noqa: E402  (the shared metric-learning recipe pieces)
    SMOKE_EXTRA,
    add_metric_learning_flags,
    finish_run,
    load_data,
    splits,
)

from zoo.data.classification import (  # noqa: E402
    HardMiningCallback,
    PairGenerator,
    make_augmentation,
)
from zoo.metric_learning.loss import CONTRASTIVE_VARIANTS, ContrastiveLoss
from zoo.metric_learning.model import build_embedding_model, build_siamese
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402

# === Hyperparameters ===
# batch_size = pairs per step (2 images each).
DEFAULTS = {"epochs": 12, "batch_size": 64, "image_size": None, "steps_per_epoch": 200}
SMOKE = {"epochs": 2, "batch_size": 16, "image_size": None, "steps_per_epoch": 2}


def parse_args(argv=None):
    parser = build_parser(
        __doc__.splitlines()[0], defaults=DEFAULTS, smoke_defaults={**SMOKE, **SMOKE_EXTRA}
    )
    # distance "l2" is the D of the contrastive formula; margin is on D² (the squared variant).
    add_metric_learning_flags(parser, margin=1.0, distance="l2")
    parser.add_argument("--variant", choices=CONTRASTIVE_VARIANTS, default="squared")
    parser.add_argument(
        "--hard-fraction",
        type=float,
        default=0.5,
        help="share of each batch taken from mined hard pairs (0 = random pairs only)",
    )
    parser.add_argument("--mining-pool", type=int, default=4000, help="examples mined per epoch")
    return parse_flags(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, test_data = load_data(args)
    parts = splits(train_data, test_data, args.holdout_classes)
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

    return finish_run(
        encoder,
        parts,
        args,
        result.run.path,
        train_data,
        test_data,
        tower="siamese_embedding",
        title=f"siamese ({args.variant} contrastive) test embeddings",
    )


if __name__ == "__main__":
    main()
