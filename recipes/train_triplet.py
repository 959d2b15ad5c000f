"""Triplet network: an image embedding trained with online triplet mining on P×K batches.

Description: a small CNN tower (``zoo.build_embedding_model``) learns a unit-norm embedding
    with ``zoo.metric_learning.TripletLoss`` (batch-all, batch-hard or FaceNet semi-hard mining) on
    class-balanced P×K batches; `--model triplet-inputs` trains ``zoo.build_triplet`` (the
    same tower on anchor, positive and negative inputs) with ``TripletMarginLoss`` on explicit
    triplets from ``TripletGenerator``, a share of them mined offline at the start of every
    epoch. A collapse of the embeddings stops the run with one line. The recipe then evaluates retrieval (recall@1/2/4/8 of test
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
    about 0.92 against raw pixels' 0.85; with 10 training minutes semi-hard 0.925, `--mining hard`
    0.878, `--model triplet-inputs` 0.863 (benchmarks/RESULTS.md). Zero-shot
    (`--holdout-classes`): the embedding's unseen-class recall falls the longer the tower trains
    on the seen classes; the report's `readout` row (the tower's second-block feature map,
    `feature_readout`) is what transfers, above raw pixels (docs/metric_learning.md).
Runtime: about 4 minutes on a 2-core CPU with the defaults; `--smoke` well under a minute.

    python recipes/train_triplet.py                          # train, evaluate, plot, export
    python recipes/train_triplet.py --mining hard --margin 0.3
    python recipes/train_triplet.py --model triplet-inputs       # explicit triplets
    python recipes/train_triplet.py --holdout-classes 5,6,7,8,9
    python recipes/train_triplet.py --smoke                  # the CI check
"""

from __future__ import annotations

import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from zoo.metric_learning.collapse import CollapseMonitor  # noqa: E402
from zoo.metric_learning.loss import MINING_MODES, TripletLoss, TripletMarginLoss  # noqa: E402
from zoo.metric_learning.model import build_embedding_model, build_triplet  # noqa: E402
from zoo.metric_learning.sampling import (  # noqa: E402
    HardMiningCallback,
    TripletGenerator,
)
from zoo.metric_learning.workflow import (  # noqa: E402
    SMOKE_SUBSETS,
    TRIPLET_DEFAULTS,
    add_offline_mining_flags,
    evaluate_plot_export,
    holdout_splits,
    load_embedding_data,
    metric_learning_parser,
    probe_images,
    training_batches,
    triplet_distance,
)
from zoo.training import compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least  # noqa: E402

# === Hyperparameters ===
# Every default lives in zoo.metric_learning.TRIPLET_DEFAULTS (the benchmark reads it too):
# batch_size = P x K (P classes, K = --k examples each); image_size None = the data's own size.
DEFAULTS = TRIPLET_DEFAULTS
SMOKE = {"epochs": 1, "batch_size": 16, "image_size": None, "steps_per_epoch": 2, **SMOKE_SUBSETS}


MODELS = ("online", "triplet-inputs")


def build_arg_parser():
    parser = metric_learning_parser(__doc__.splitlines()[0], DEFAULTS, SMOKE)
    parser.add_argument(
        "--model",
        choices=MODELS,
        default=DEFAULTS["model"],
        help="online: the tower on P x K batches, triplets mined in the batch (--mining); "
        "triplet-inputs: build_triplet on explicit (anchor, positive, negative) triplets mined "
        "offline each epoch (--hard-fraction, --mining-pool; --batch-size triplets per step). "
        "Default: %(default)s",
    )
    parser.add_argument("--mining", choices=MINING_MODES, default=DEFAULTS["mining"])
    parser.add_argument(
        "--k", type=int_at_least(2), default=DEFAULTS["k"], help="examples per class in a batch (K)"
    )
    parser.add_argument(
        "--hard-warmup-steps",
        type=int_at_least(0),
        default=DEFAULTS["hard_warmup_steps"],
        help="--mining hard: semi-hard mining for the first N steps. Default: %(default)s",
    )
    add_offline_mining_flags(parser, DEFAULTS)
    return parser


def parse_args(argv=None):
    return parse_flags(build_arg_parser(), argv)


def main(argv=None):
    args = parse_args(argv)
    args.distance = triplet_distance(args.mining, args.distance)
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
    triplet_inputs = args.model == "triplet-inputs"
    dataset, generator, p = training_batches(
        args, fit_part, TripletGenerator if triplet_inputs else None, target_key="embeddings"
    )
    k = None if triplet_inputs else args.k

    # === Model ===
    with strategy.scope():
        encoder = build_embedding_model(
            train_data.image_shape,
            embedding_dim=args.embedding_dim,
            width=args.width,
            dropout=args.dropout,
            name="triplet_embedding",
        )
        if triplet_inputs:  # anchor, positive, negative through the one tower
            model = build_triplet(encoder, distance=args.distance)
            loss = {
                "embeddings": TripletMarginLoss(
                    margin=args.margin, distance=args.distance, average=DEFAULTS["triplet_average"]
                )
            }
        else:
            model = encoder
            loss = TripletLoss(
                margin=args.margin,
                mining=args.mining,
                distance=args.distance,
                warmup_steps=args.hard_warmup_steps if args.mining == "hard" else 0,
            )
        model.compile(keras.optimizers.Adam(args.lr), loss=loss, **compile_options(args))
    callbacks = [
        CollapseMonitor(
            probe_images(fit_part),
            # a mean over the active triplets (batch-all, the triplet network's) sits near the
            # margin while it trains: only the spread is checked there
            margin=None if triplet_inputs or args.mining == "all" else args.margin,
            encoder=encoder,
        )
    ]
    if triplet_inputs and args.hard_fraction > 0:
        callbacks.append(HardMiningCallback(generator, encoder))

    # === Training ===
    result = train(
        model,
        dataset,
        args,
        recipe="triplet",
        base_lr=args.lr,
        callbacks=callbacks,
        config={
            "model": args.model,
            "mining": "offline" if triplet_inputs else args.mining,
            "hard_fraction": args.hard_fraction if triplet_inputs else None,
            "margin": args.margin,
            "p": p,
            "k": k,
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
        title=f"triplet ({'offline mining' if triplet_inputs else args.mining}) test embeddings",
        export_name="triplet_embedding",
        sample=test_data.images[:8],
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
