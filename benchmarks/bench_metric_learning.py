"""Metric-learning benchmark: loss speed, Fashion-MNIST retrieval/verification, zero-shot split.

Sections (all printed; ``--json`` also writes the numbers):

1. Speed. Semi-hard triplet loss, forward + backward, on a 256 x 128-d batch (32 classes x 8):
   ``zoo.metric_learning.TripletLoss`` (sort + batched binary search) against a faithful re-implementation
   of tensorflow-addons' ``TripletSemiHardLoss`` algorithm (B x B tiled to B² x B masks; the addon
   itself no longer installs with Keras 3), and against the embedding tower's own training step
   on 256 images of the same batch. Both losses are checked to give the same value first
   (``semi_hard_fallback="easiest"``, L2 distance, margin 1: the addon's definition).
2. Fashion-MNIST, all 10 classes: raw-pixel nearest neighbour and the ``--models`` (triplet
   batch-all, batch-hard, semi-hard; Siamese/contrastive on every pair of a P x K batch, its
   Hadsell variant, on explicit mined pairs; the triplet network on explicit triplets mined
   offline), each with its recipe's defaults, trained for ``--minutes`` of wall clock, with a
   ``CollapseMonitor`` whose verdict is printed. Retrieval:
   recall@1/2/4/8 of test queries against the train gallery (the k-NN protocol: raw pixels give
   about 0.85), MAP@R leave-one-out on the test split; verification on 20000 test pairs:
   LFW-protocol accuracy, ROC AUC, VAL@FAR=1e-3.
3. Zero-shot: each of ``--models`` trained on classes 0-4 only (``--zero-shot-minutes``, default
   ``--minutes``), seen (0-4) and unseen (5-9) classes against raw pixels and the untrained
   network, and for each network its second block's flattened feature map
   (``feature_readout``). Unseen-class queries search the gallery of
   unseen-class train images (never trained on), plus the leave-one-out test protocol.

    python benchmarks/bench_metric_learning.py                 # full: ~8 x --minutes (10)
    python benchmarks/bench_metric_learning.py --models siamese,triplet-network
    python benchmarks/bench_metric_learning.py --minutes 3     # shorter training
    python benchmarks/bench_metric_learning.py --quick         # a couple of minutes, smoke check

4. Zero-shot defaults study: variants of the recipe defaults (augmentation, margin, embedding
   size), ``--study-minutes`` each on classes 0-4, and the default's seen/unseen recall@1 during
   training (would early stopping on unseen classes help?).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.data.classification import (  # noqa: E402
    load_classification_data,
    make_augmentation,
    split_classes,
    subsample,
)
from zoo.metric_learning.collapse import CollapseMonitor  # noqa: E402
from zoo.metric_learning.loss import (  # noqa: E402
    BatchContrastiveLoss,
    ContrastiveLoss,
    TripletLoss,
    TripletMarginLoss,
    triplet_loss,
)
from zoo.metric_learning.model import (  # noqa: E402
    build_embedding_model,
    build_siamese,
    build_triplet,
    feature_readout,
)
from zoo.metric_learning.sampling import (  # noqa: E402
    HardMiningCallback,
    PairGenerator,
    TripletGenerator,
    pk_batches,
)
from zoo.metric_learning.workflow import (  # noqa: E402
    METRIC_KEYS,
    SIAMESE_DEFAULTS,
    TRIPLET_DEFAULTS,
    probe_images,
    raw_pixels,
    triplet_distance,
)
from zoo.metrics.retrieval import (  # noqa: E402
    compute_embeddings,
    evaluate_encoder,
    retrieval_metrics,
)
from zoo.ops.distances import DISTANCES  # noqa: E402
from zoo.training import BudgetLRSchedule, TimeBudget  # noqa: E402
from zoo.training.cli import run_cli
from zoo.training.flags import (  # noqa: E402
    comma_list,
    int_at_least,
    non_negative_float,
    positive_float,
)
from zoo.training.run_dir import write_json  # noqa: E402

# The recipe defaults (zoo.metric_learning.TRIPLET_DEFAULTS / SIAMESE_DEFAULTS, read by
# recipes/train_triplet.py and recipes/train_siamese.py); --set overrides TOWER and TRIPLET here.
TOWER = {key: TRIPLET_DEFAULTS[key] for key in ("embedding_dim", "width")}
TRIPLET = {
    "margin": TRIPLET_DEFAULTS["margin"],
    "distance": TRIPLET_DEFAULTS["distance"],
    "p": TRIPLET_DEFAULTS["batch_size"] // TRIPLET_DEFAULTS["k"],
    "k": TRIPLET_DEFAULTS["k"],
    "lr": TRIPLET_DEFAULTS["lr"],
}
SIAMESE = {
    key: SIAMESE_DEFAULTS[key]
    for key in (
        "pairs",
        "margin",
        "distance",
        "variant",
        "average",
        "batch_size",
        "k",
        "hard_fraction",
        "mining_pool",
        "offline_mining",
        "lr",
    )
}
TRIPLET_NETWORK = {
    key: TRIPLET_DEFAULTS[key]
    for key in ("batch_size", "hard_fraction", "mining_pool", "offline_mining", "triplet_average")
}
TRIPLET_NETWORK["average"] = TRIPLET_NETWORK.pop("triplet_average")

# === tensorflow-addons' semi-hard algorithm, re-derived (for the speed comparison) ===


def _addons_pairwise_l2(e):
    sq = tf.reduce_sum(tf.square(e), axis=1, keepdims=True)
    d2 = tf.maximum(sq + tf.transpose(sq) - 2.0 * tf.matmul(e, e, transpose_b=True), 0.0)
    zero = tf.less_equal(d2, 0.0)
    d = tf.sqrt(d2 + tf.cast(zero, tf.float32) * 1e-16) * tf.cast(tf.logical_not(zero), tf.float32)
    n = tf.shape(e)[0]
    return d * (tf.ones([n, n]) - tf.eye(n))


def _row_min_where(data, mask):
    """Row minimum over ``mask`` entries (shift by the row max so masked-out zeros never win)."""
    top = tf.reduce_max(data, axis=1, keepdims=True)
    return tf.reduce_min((data - top) * mask, axis=1, keepdims=True) + top


def _row_max_where(data, mask):
    bottom = tf.reduce_min(data, axis=1, keepdims=True)
    return tf.reduce_max((data - bottom) * mask, axis=1, keepdims=True) + bottom


def addons_semi_hard_loss(labels, embeddings, margin=1.0):
    """The addon's algorithm: for every (anchor a, positive p) row of a B² x B tiled matrix,
    mask the negatives n of a with d(a, n) > d(a, p), take the smallest (else the LARGEST
    negative distance of a), and average ``max(0, m + d(a,p) - d(a,n))`` over all positive pairs.
    """
    labels = tf.reshape(labels, [-1, 1])
    d = _addons_pairwise_l2(embeddings)
    same = tf.equal(labels, tf.transpose(labels))
    different = tf.logical_not(same)
    n = tf.size(labels)
    tiled = tf.tile(d, [n, 1])  # row p*B + a holds d(a, .)
    farther = tf.logical_and(
        tf.tile(different, [n, 1]), tf.greater(tiled, tf.reshape(tf.transpose(d), [-1, 1]))
    )
    has_farther = tf.transpose(tf.reshape(tf.reduce_any(farther, axis=1), [n, n]))  # [a, p]
    outside = tf.transpose(tf.reshape(_row_min_where(tiled, tf.cast(farther, tf.float32)), [n, n]))
    inside = tf.tile(_row_max_where(d, tf.cast(different, tf.float32)), [1, n])
    chosen = tf.where(has_farther, outside, inside)
    positives = tf.cast(same, tf.float32) - tf.eye(n)
    terms = tf.maximum((margin + d - chosen) * positives, 0.0)
    return tf.reduce_sum(terms) / tf.reduce_sum(positives)


# What each --set key accepts: its parser (from zoo.training.flags) and what it means.
OVERRIDES = {
    "embedding_dim": int_at_least(1),
    "width": int_at_least(1),
    "p": int_at_least(2),
    "k": int_at_least(2),
    "margin": non_negative_float,
    "lr": positive_float,
    "distance": lambda text: text if text in DISTANCES else _bad_distance(text),
}


def _bad_distance(text):
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(DISTANCES)} (got {text!r})")


def apply_override(parser, item):
    """``KEY=VALUE`` into ``TOWER`` or ``TRIPLET``, parsed and range-checked (``OVERRIDES``)."""
    key, sep, value = item.partition("=")
    target = TOWER if key in TOWER else TRIPLET if key in TRIPLET else None
    if not sep or target is None:
        parser.error(f"--set {item!r}: expected KEY=VALUE with KEY in {sorted({*TOWER, *TRIPLET})}")
    try:
        target[key] = OVERRIDES[key](value)
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(f"--set {item!r}: {error}")


def median_ms(fn, reps):
    fn()  # trace / warm up
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def bench_speed(images, reps):
    rng = np.random.default_rng(0)
    labels = tf.constant(np.repeat(np.arange(32), 8))
    e = rng.normal(size=(256, 128)).astype("float32")
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    variable = tf.Variable(e)

    def step(loss_fn):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                value = loss_fn(labels, variable)
            return value, tape.gradient(value, variable)

        return lambda: [t.numpy() for t in run()]

    ours = step(lambda y, x: triplet_loss(y, x, 0.2, "semi-hard", "squared_l2"))
    ours_addons_def = step(
        lambda y, x: triplet_loss(y, x, 1.0, "semi-hard", "l2", semi_hard_fallback="easiest")
    )
    addons = step(lambda y, x: addons_semi_hard_loss(y, x, 1.0))
    value_ours, grad_ours = ours_addons_def()
    value_addons, grad_addons = addons()
    agree = {
        "loss_abs_diff": float(abs(value_ours - value_addons)),
        "grad_max_abs_diff": float(np.max(np.abs(grad_ours - grad_addons))),
    }
    timings = {
        "zoo_semi_hard_ms": median_ms(ours, reps),
        "zoo_semi_hard_addons_definition_ms": median_ms(ours_addons_def, reps),
        "addons_algorithm_ms": median_ms(addons, reps),
    }
    encoder = build_embedding_model(images.shape[1:], embedding_dim=128, width=TOWER["width"])
    encoder.compile(keras.optimizers.Adam(1e-3), TripletLoss(0.2, "semi-hard"))
    batch = images[:256].astype("float32")
    y = labels.numpy()
    timings["encoder_train_step_ms"] = median_ms(
        lambda: encoder.train_on_batch(batch, y), max(3, reps // 5)
    )
    timings["speedup_vs_addons"] = timings["addons_algorithm_ms"] / timings["zoo_semi_hard_ms"]
    timings["loss_share_of_train_step"] = (
        timings["zoo_semi_hard_ms"] / timings["encoder_train_step_ms"]
    )
    timings.update(agree)
    return timings


# === Training under a wall-clock budget ===


def fit_for(model, dataset, minutes, lr, callbacks=(), steps=100):
    budget = TimeBudget(minutes, verbose=0)
    schedule = BudgetLRSchedule(lr, warmup=0.02, time_fraction=budget.progress)
    start = time.monotonic()
    history = model.fit(
        dataset,
        epochs=100_000,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[schedule, *callbacks, budget],
    )
    epochs = len(history.history.get("loss", []))
    return {
        "train_seconds": time.monotonic() - start,
        "steps": epochs * steps,
        "final_loss": float(history.history["loss"][-1]),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }


def triplet_encoder(
    train,
    mining,
    minutes,
    seed,
    augment=True,
    max_shift=TRIPLET_DEFAULTS["shift"],
    tower=None,
    triplet=None,
    callbacks=(),
):
    tower = {**TOWER, **(tower or {})}
    triplet = {**TRIPLET, **(triplet or {})}
    keras.utils.set_random_seed(seed)
    encoder = build_embedding_model(train.image_shape, **tower)
    warmup = TRIPLET_DEFAULTS["hard_warmup_steps"] if mining == "hard" else 0
    encoder.compile(
        keras.optimizers.Adam(triplet["lr"]),
        TripletLoss(
            triplet["margin"],
            mining,
            triplet_distance(mining, triplet["distance"]),
            warmup_steps=warmup,
        ),
    )
    p = min(triplet["p"], len(np.unique(train.labels)))
    ds = pk_batches(
        train.images,
        train.labels,
        p=p,
        k=triplet["k"],
        seed=seed,
        augment=make_augmentation(max_shift=max_shift, seed=seed) if augment else None,
    )
    margin = None if mining == "all" else triplet["margin"]  # batch-all: a mean of active terms
    callbacks = [*callbacks, _collapse_monitor(train, encoder, margin)]
    info = fit_for(encoder, ds, minutes, triplet["lr"], callbacks)
    return encoder, _with_collapse(info, callbacks)


# Zero-shot study: which defaults keep unseen-class recall from dropping (train on 0-4).
STUDY = {
    "default (flip, dim 64, margin 0.2)": {},
    "no augmentation": {"augment": False},
    "flip + 10% shift": {"max_shift": 0.1},
    "margin 0.5": {"triplet": {"margin": 0.5}},
    "embedding 128": {"tower": {"embedding_dim": 128}},
}


def zero_shot_study(seen_train, seen_test, unseen_test, minutes, seed, curve_every=10):
    """Each ``STUDY`` variant trained ``minutes`` on the seen classes; recall@1 leave-one-out on
    seen and unseen test images; the default also logs both every ``curve_every`` epochs (100
    steps each), to show whether stopping early would have kept more unseen-class recall."""
    rows, curve = {}, None
    for name, variant in STUDY.items():
        callbacks = []
        if not variant:
            callbacks = [
                _recall_logger(seen_test, "seen_", curve_every),
                _recall_logger(unseen_test, "unseen_", curve_every),
            ]
        encoder, info = triplet_encoder(
            seen_train, "semi-hard", minutes, seed, callbacks=callbacks, **variant
        )
        rows[name] = {
            part: retrieval_metrics(
                compute_embeddings(encoder, te.images), te.labels, ks=(1,), map_at_r=False
            )["recall@1"]
            for part, te in (("seen", seen_test), ("unseen", unseen_test))
        }
        rows[name]["steps"] = info["steps"]
        if callbacks:
            curve = info["history"]
    return rows, curve


def _recall_logger(data, prefix, every):
    from zoo.metrics.retrieval import RetrievalMetricsCallback

    class OfTheTrainedModel(RetrievalMetricsCallback):
        def on_train_begin(self, logs=None):
            self.encoder = self.model  # the tower being trained

    return OfTheTrainedModel(None, data.images, data.labels, prefix=prefix, every=every)


def siamese_encoder(train, minutes, seed, variant=None, pairs=None, callbacks=()):
    """The Siamese recipe's defaults: the contrastive formula on every pair of a P x K batch
    (``pairs="in-batch"``) or ``build_siamese`` on ``PairGenerator`` pairs (``"explicit"``)."""
    config = {**SIAMESE, **({"variant": variant} if variant else {})}
    config["pairs"] = pairs or config["pairs"]
    keras.utils.set_random_seed(seed)
    encoder = build_embedding_model(train.image_shape, **TOWER)
    augment = make_augmentation(max_shift=SIAMESE_DEFAULTS["shift"], seed=seed)
    callbacks = [*callbacks, _collapse_monitor(train, encoder)]
    if config["pairs"] == "in-batch":
        encoder.compile(
            keras.optimizers.Adam(config["lr"]),
            BatchContrastiveLoss(
                config["margin"], config["variant"], config["distance"], config["average"]
            ),
        )
        p = min(config["batch_size"] // config["k"], len(np.unique(train.labels)))
        ds = pk_batches(train.images, train.labels, p, config["k"], seed=seed, augment=augment)
        model = encoder
    else:
        model = build_siamese(encoder, distance=config["distance"])
        loss = ContrastiveLoss(
            config["margin"], variant=config["variant"], average=config["average"]
        )
        model.compile(keras.optimizers.Adam(config["lr"]), loss={"distance": loss})
        generator = PairGenerator(
            train.images,
            train.labels,
            config["batch_size"],
            hard_fraction=config["hard_fraction"],
            pool_size=config["mining_pool"],
            seed=seed,
            mining=config["offline_mining"],
        )
        ds = generator.dataset(augment=augment, target_key="distance")
        callbacks.append(HardMiningCallback(generator, encoder))
    info = fit_for(model, ds, minutes, config["lr"], callbacks)
    return encoder, _with_collapse(info, callbacks)


def triplet_network_encoder(train, minutes, seed, callbacks=()):
    """``build_triplet`` on explicit triplets with offline mining each epoch (the triplet
    recipe's ``--model triplet-inputs``)."""
    keras.utils.set_random_seed(seed)
    encoder = build_embedding_model(train.image_shape, **TOWER)
    distance = triplet_distance("offline", TRIPLET["distance"])
    model = build_triplet(encoder, distance=distance)
    model.compile(
        keras.optimizers.Adam(TRIPLET["lr"]),
        loss={
            "embeddings": TripletMarginLoss(
                TRIPLET["margin"], distance, average=TRIPLET_NETWORK["average"]
            )
        },
    )
    generator = TripletGenerator(
        train.images,
        train.labels,
        TRIPLET_NETWORK["batch_size"],
        hard_fraction=TRIPLET_NETWORK["hard_fraction"],
        pool_size=TRIPLET_NETWORK["mining_pool"],
        seed=seed,
        mining=TRIPLET_NETWORK["offline_mining"],
    )
    augment = make_augmentation(max_shift=TRIPLET_DEFAULTS["shift"], seed=seed)
    ds = generator.dataset(augment=augment, target_key="embeddings")
    callbacks = [
        *callbacks,
        HardMiningCallback(generator, encoder),
        _collapse_monitor(train, encoder),  # a mean over active triplets: spread only
    ]
    info = fit_for(model, ds, minutes, TRIPLET["lr"], callbacks)
    return encoder, _with_collapse(info, callbacks)


def _collapse_monitor(train, encoder, margin=None):
    return CollapseMonitor(probe_images(train), margin=margin, on_collapse="warn", encoder=encoder)


def _with_collapse(info, callbacks):
    monitor = next(c for c in callbacks if isinstance(c, CollapseMonitor))
    return {**info, "collapse": monitor.collapsed, "embedding_spread": monitor.spreads[-1:]}


# The models of section 2 (and of the zero-shot rows): name -> fn(train, minutes, seed).
MODELS = {
    "triplet-all": lambda tr, m, s: triplet_encoder(tr, "all", m, s),
    "triplet-hard": lambda tr, m, s: triplet_encoder(tr, "hard", m, s),
    "triplet-semi-hard": lambda tr, m, s: triplet_encoder(tr, "semi-hard", m, s),
    "siamese": lambda tr, m, s: siamese_encoder(tr, m, s),
    "siamese-hadsell": lambda tr, m, s: siamese_encoder(tr, m, s, variant="hadsell"),
    "siamese-explicit": lambda tr, m, s: siamese_encoder(tr, m, s, pairs="explicit"),
    "triplet-network": triplet_network_encoder,
}


def _model_name(text):
    if text not in MODELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(MODELS)} (got {text!r})")
    return text


DEFAULT_MODELS = "triplet-all,triplet-hard,triplet-semi-hard,siamese,triplet-network"


# === Report ===


def table(title, rows):
    print(f"\n{title}")
    short = {
        "verification_accuracy": "ver_acc",
        "verification_roc_auc": "ver_auc",
        "verification_val@far=0.001": "val@far1e-3",
    }
    width = max(28, *(len(name) + 2 for name in rows))
    header = f"{'':<{width}}" + "".join(f"{short.get(k, k):>13}" for k in METRIC_KEYS)
    print(header)
    for name, metrics in rows.items():
        print(
            f"{name:<{width}}"
            + "".join(f"{metrics.get(k, float('nan')):>13.4f}" for k in METRIC_KEYS)
        )


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=positive_float,
        default=10.0,
        help="training wall clock per model (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run: data subsets, 0.2 min per model, fewer repetitions",
    )
    parser.add_argument(
        "--models",
        type=comma_list(_model_name),
        default=DEFAULT_MODELS,
        help=f"models of section 2, comma-separated, from {', '.join(MODELS)}. "
        "Default: %(default)s",
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--skip-all-classes",
        action="store_true",
        help="skip section 2 (the models trained and scored on all ten classes)",
    )
    parser.add_argument("--skip-zero-shot", action="store_true")
    parser.add_argument(
        "--zero-shot-minutes",
        type=positive_float,
        default=None,
        help="training per model of the zero-shot section (default: --minutes)",
    )
    parser.add_argument(
        "--study-minutes",
        type=non_negative_float,
        default=2.5,
        help="training per variant of the zero-shot defaults study (0 skips it; default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a recipe default for this run, e.g. p=10 embedding_dim=128; keys: "
        f"{', '.join(sorted({*TOWER, *TRIPLET}))}",
    )
    parser.add_argument("--eval-pairs", type=int_at_least(1), default=20000)
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    return parser


def main(argv=None):
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    for item in args.set:
        apply_override(parser, item)
    minutes = 0.2 if args.quick else args.minutes
    reps = 10 if args.quick else 50
    pairs = 2000 if args.quick else args.eval_pairs

    train, test = load_classification_data(seed=args.seed)
    if args.quick:
        train, test = subsample(train, 3000, args.seed), subsample(test, 1000, args.seed)
    print(
        f"data: {train.source} train {len(train)}, test {len(test)}, "
        f"image {train.image_shape}; {minutes:g} min of training per model; "
        f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs\n"
        f"tower {TOWER}, triplet {TRIPLET}"
    )
    results = {"minutes": minutes, "quick": args.quick, "tower": TOWER, "triplet": TRIPLET}

    # 1. speed
    if not args.skip_speed:
        speed = bench_speed(train.images, reps)
        results["speed"] = speed
        print("\n1. semi-hard triplet loss, forward + backward, 256 x 128-d (median ms)")
        print(f"  zoo TripletLoss(semi-hard)           {speed['zoo_semi_hard_ms']:8.2f} ms")
        print(
            f"  zoo, the addon's definition          "
            f"{speed['zoo_semi_hard_addons_definition_ms']:8.2f} ms"
        )
        print(f"  tensorflow-addons algorithm          {speed['addons_algorithm_ms']:8.2f} ms")
        print(f"  tower training step, 256 images      {speed['encoder_train_step_ms']:8.2f} ms")
        print(
            f"  speed-up vs addons: {speed['speedup_vs_addons']:.1f}x; loss = "
            f"{100 * speed['loss_share_of_train_step']:.1f}% of the training step; "
            f"same values: |dloss| = {speed['loss_abs_diff']:.2e}, "
            f"max |dgrad| = {speed['grad_max_abs_diff']:.2e}"
        )

    models = args.models if isinstance(args.models, list) else args.models.split(",")
    options = {"num_pairs": pairs, "seed": args.seed}
    # 2. all classes
    if not args.skip_all_classes:
        quality = {
            "raw pixels (kNN)": evaluate_encoder(
                raw_pixels, test.images, test.labels, train.images, train.labels, **options
            )
        }
        runs = {}
        for name in models:
            encoder, info = MODELS[name](train, minutes, args.seed)
            quality[name] = evaluate_encoder(
                encoder, test.images, test.labels, train.images, train.labels, **options
            )
            runs[name] = info
        results["all_classes"] = quality
        results["training"] = runs
        table(
            "2. all classes (recall@k: test queries vs train gallery; map@r: test leave-one-out)",
            quality,
        )
        for name, info in runs.items():
            print(
                f"  {name}: {info['steps']} steps in {info['train_seconds']:.0f} s, "
                f"final loss {info['final_loss']:.4f}, embedding spread "
                f"{info['embedding_spread'][-1]:.3f}; collapse: {info['collapse'] or 'none'}"
            )

    # 3. zero-shot: every model trained on classes 0-4, scored on 5-9
    if not args.skip_zero_shot:
        holdout = [5, 6, 7, 8, 9]
        seen_train, unseen_train = split_classes(train, holdout)
        seen_test, unseen_test = split_classes(test, holdout)
        zs_minutes = minutes if args.zero_shot_minutes is None else args.zero_shot_minutes
        keras.utils.set_random_seed(args.seed)
        encoders = {
            "raw pixels": raw_pixels,
            "untrained net": build_embedding_model(train.image_shape, **TOWER),
        }
        zero_runs = {}
        for name in models:
            encoders[name], zero_runs[name] = MODELS[name](seen_train, zs_minutes, args.seed)
        # the second block's feature map, flattened (feature_readout): what transfers
        for name in ["untrained net", *models]:
            encoders[f"{name}, block-2 readout"] = feature_readout(encoders[name])
        zero, loo = {}, {}
        for who, enc in encoders.items():
            for part, (tr, te) in (
                ("seen 0-4", (seen_train, seen_test)),
                ("unseen 5-9", (unseen_train, unseen_test)),
            ):
                zero[f"{who} | {part}"] = evaluate_encoder(
                    enc, te.images, te.labels, tr.images, tr.labels, **options
                )
                emb = compute_embeddings(enc, te.images)
                loo[f"{who} | {part}"] = retrieval_metrics(emb, te.labels, ks=(1,), map_at_r=False)[
                    "recall@1"
                ]
        results["zero_shot"] = zero
        results["zero_shot_minutes"] = zs_minutes
        results["zero_shot_training"] = zero_runs
        results["zero_shot_leave_one_out_recall@1"] = loo
        table(f"3. zero-shot: trained {zs_minutes:g} min on classes 0-4", zero)
        print(
            "  (recall@k vs the train gallery of the same classes; map@r and verification "
            "within the test split)"
        )
        print(
            "  recall@1 leave-one-out within the test split: "
            + "; ".join(f"{k} {v:.4f}" for k, v in loo.items())
        )

    # 4. which defaults keep unseen-class recall
    if args.study_minutes > 0:
        study_minutes = 0.1 if args.quick else args.study_minutes
        seen_train, _ = split_classes(train, [5, 6, 7, 8, 9])
        seen_test, unseen_test = split_classes(test, [5, 6, 7, 8, 9])
        study, curve = zero_shot_study(
            seen_train, seen_test, unseen_test, study_minutes, args.seed, curve_every=10
        )
        results["zero_shot_study"] = {"minutes": study_minutes, "rows": study}
        print(
            f"\n4. zero-shot defaults study: semi-hard on classes 0-4, {study_minutes:g} min each; "
            "recall@1 leave-one-out within the test split"
        )
        print(f"{'':<36}{'seen 0-4':>10}{'unseen 5-9':>12}{'steps':>8}")
        for name, row in study.items():
            print(f"{name:<36}{row['seen']:>10.4f}{row['unseen']:>12.4f}{row['steps']:>8d}")
        points = sorted(
            {
                (i + 1) * 100: (curve["seen_recall@1"][i], curve["unseen_recall@1"][i])
                for i in range(len(curve["loss"]))
                if i == 0 or (i + 1) % 10 == 0
            }.items()
        )
        results["zero_shot_study"]["curve"] = points
        print(
            "  default, during training (step: seen / unseen): "
            + "; ".join(f"{step}: {a:.3f} / {b:.3f}" for step, (a, b) in points)
        )

    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
