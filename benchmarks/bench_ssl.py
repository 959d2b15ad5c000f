"""Does self-supervised pretraining help? Every method against random init and supervised.

Protocol (fixed in advance; the same for every encoder):

- Data: Fashion-MNIST (the Debian package's IDX files; scikit-learn digits when absent, or
  ``--data``). Pretraining sees the training images only, never a label.
- Encoder: ``build_ssl_encoder(image_shape)`` (``small_cnn``, width 32), the same seed for every
  run. Features probed: the encoder output, i.e. the globally pooled last conv stage
  (128-d), with ``training=False``.
- Each method pretrains for ``--pretrain-minutes`` of wall clock (``pretrain_encoder``, with
  its defaults: e.g. rotation's image stream is flipped and shifted, ``PRETEXT_AUGMENT``).
- Probes: (a) all labels: linear (logistic regression, standardised features) and weighted
  k-NN (k = 20, cosine); (b) low-label regime, for 1 % and 10 % of the training labels
  (class-stratified, the same subset for everyone): linear probe, and fine-tuning of the
  whole network + a fresh soft-max head (``--lp-ft``: the linear probe's, LP-FT) for
  ``--finetune-minutes``, ``--finetune-repeats``
  times with the fine-tune seeds ``seed, seed + 1, …`` (head initialisation and batch order;
  the same encoder and label subset): the column is their mean, the JSON lists every run.
  One run moves by about ±0.5 points at 1 % with the seed alone, and random init's weights are
  the same in every benchmark run, so a single seed is one draw of its baseline, repeated.
- Baselines: the same network from random init through the same probes; fully supervised
  (random init, 100 % of the labels) trained for ``--pretrain-minutes + --finetune-minutes``,
  the time a pretrained-then-fine-tuned encoder costs (one run).
- The GAN (``"gan"``): its discriminator's feature tower is the encoder, probed like every
  other. Collapse check: a small supervised classifier (the same encoder + a soft-max head, all
  labels, ``--coverage-minutes`` of Adam) labels 1,000 generated images, and the smallest
  class's share is reported (``zoo.ssl.gan.class_coverage``).
- Colorization needs colour the grayscale image predicts, so it runs in its own section: on the
  RGB data given, or (grayscale data) on the RGB shapes set with class colours
  (``load_shapes_data(colors="by_class")``: hue set by the shape, lightness not). There every
  encoder (random init, colorization, supervised) takes and is probed on the L* channel only,
  as in the colorization papers: on colour images the class colours would give the class away.

Targets: at 1 % labels the best pretext encoder fine-tunes ≥ 5 points above random init
(the means of the fine-tune runs);
every pretext beats random init on the frozen linear probe; SimCLR ≥ rotation (linear probe);
the GAN's generated images cover every class (each ≥ 3 % of 1,000 samples); the gap to
supervised is reported.

    python benchmarks/bench_ssl.py                          # ~35 min on 2 cores
    python benchmarks/bench_ssl.py --pretrain-minutes 1 --methods rotation simclr
    python benchmarks/bench_ssl.py --quick                  # a few minutes, smoke check
    python benchmarks/bench_ssl.py --methods gan --pretrain-minutes 2 --finetune-repeats 1
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

from zoo.data.classification import (  # noqa: E402
    ClassificationData,
    load_classification_data,
    load_shapes_data,
    subsample,
)
from zoo.ops import rgb_to_lab
from zoo.ssl.gan import class_coverage
from zoo.ssl.model import build_ssl_encoder
from zoo.ssl.pretrain import SSL_METHODS, pretrain_encoder
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least, positive_float  # noqa: E402
from zoo.training.probes import fine_tune, probe_encoder
from zoo.training.run_dir import write_json  # noqa: E402

GRAY_METHODS = [m for m in SSL_METHODS if m != "colorization"]
FRACTIONS = (0.01, 0.1)
COLUMNS = ("linear", "knn", "linear@1%", "finetune@1%", "linear@10%", "finetune@10%")
COVERAGE_SAMPLES = 1000  # generated images the coverage classifier labels
MIN_CLASS_SHARE = 0.03  # the GAN's target: every class at least 3 % of them


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="fashion_mnist (default) | digits | FOLDER")
    parser.add_argument("--methods", nargs="+", choices=SSL_METHODS, default=list(SSL_METHODS))
    parser.add_argument("--pretrain-minutes", type=positive_float, default=1.5)
    parser.add_argument("--finetune-minutes", type=positive_float, default=0.5)
    parser.add_argument(
        "--finetune-repeats",
        type=int_at_least(1),
        default=3,
        help="fine-tune runs per encoder and label fraction, seeds seed..seed+R-1 (mean reported)",
    )
    parser.add_argument(
        "--lp-ft",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="start every fine-tune from the linear probe of the same labels (LP-FT) instead of "
        "a fresh head, for every encoder alike. Default: %(default)s",
    )
    parser.add_argument("--batch-size", type=int_at_least(1), default=128)
    parser.add_argument(
        "--max-train", type=int_at_least(1), default=None, help="subsample the train split"
    )
    parser.add_argument(
        "--max-test", type=int_at_least(1), default=None, help="subsample the test split"
    )
    parser.add_argument(
        "--coverage-minutes",
        type=positive_float,
        default=1.0,
        help="training budget of the classifier that checks the GAN's class coverage",
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks it runs")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    return parser


def parse_args(argv=None):
    args = build_arg_parser().parse_args(argv)
    if args.quick:
        args.pretrain_minutes, args.finetune_minutes, args.finetune_repeats = 0.1, 0.05, 1
        args.coverage_minutes = 0.1
        args.max_train, args.max_test = args.max_train or 2000, args.max_test or 500
    return args


def encoder_for(shape, seed):
    keras.utils.set_random_seed(seed)
    return build_ssl_encoder(shape, backbone="small_cnn", width=32)


def probe(encoder, train, test, args):
    return probe_encoder(
        encoder,
        train,
        test,
        FRACTIONS,
        args.finetune_minutes,
        args.seed,
        args.finetune_repeats,
        lp_ft=args.lp_ft,
    )


def coverage_classifier(train, test, minutes, seed):
    """A quick supervised classifier for the GAN's class coverage: the benchmark's encoder + a
    soft-max head, trained on all labels for ``minutes`` (BN statistics re-estimated after).

    Returns:
        ``(model images 0-255 -> logits, test accuracy)``.
    """
    import tensorflow as tf

    from zoo.training.batchnorm import recalibrate_batchnorm
    from zoo.training.callbacks import TimeBudget

    encoder = encoder_for(train.image_shape, seed)
    inputs = keras.Input(train.image_shape)
    model = keras.Model(inputs, keras.layers.Dense(train.num_classes)(encoder(inputs)))
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ds = tf.data.Dataset.from_tensor_slices((train.images.astype(np.float32), train.labels))
    ds = ds.shuffle(len(train), seed=seed).batch(128).prefetch(tf.data.AUTOTUNE)
    budget = TimeBudget(minutes, count_first_step=False, verbose=False)
    model.fit(ds, epochs=100, callbacks=[budget], verbose=0)
    recalibrate_batchnorm(model, train.images, seed=seed)
    logits = model.predict(test.images.astype(np.float32), batch_size=512, verbose=0)
    return model, float(np.mean(np.argmax(logits, axis=1) == test.labels))


def gan_coverage(gan, classifier, num_classes, seed):
    """Shares of each class the classifier predicts among ``COVERAGE_SAMPLES`` generated
    images (``zoo.ssl.gan.class_coverage``)."""
    samples = gan.generate(COVERAGE_SAMPLES, seed=seed)
    return class_coverage(samples, classifier, num_classes=num_classes)


def lightness(data):
    """The L* channel (x 2.55, 0-255) of RGB data: what a colorization encoder sees."""
    l_star = rgb_to_lab(data.images)[..., :1].numpy() * 2.55
    images = np.clip(np.round(l_star), 0, 255).astype(np.uint8)
    return ClassificationData(images, data.labels, data.class_names, f"{data.source} (L*)")


def run_section(methods, train, test, args, title, pretrain_images=None):
    print(
        f"\n== {title}: {len(train)} train / {len(test)} test, {train.image_shape} ==", flush=True
    )
    rows = {}
    start = time.monotonic()
    rows["random init"] = probe(encoder_for(train.image_shape, args.seed), train, test, args)
    print(f"random init probed ({time.monotonic() - start:.0f} s)", flush=True)
    classifier = None
    if "gan" in methods:
        classifier, accuracy = coverage_classifier(train, test, args.coverage_minutes, args.seed)
        print(f"coverage classifier: test accuracy {accuracy:.4f}", flush=True)
    for method in methods:
        t0 = time.monotonic()
        encoder = encoder_for(train.image_shape, args.seed)
        result = pretrain_encoder(
            method,
            train.images if pretrain_images is None else pretrain_images,
            encoder=encoder,
            minutes=args.pretrain_minutes,
            batch_size=args.batch_size,
            seed=args.seed,
            labels=train.labels if method == "deepcluster" else None,
        )
        rows[method] = probe(encoder, train, test, args)
        rows[method]["pretrain_steps"] = result.steps
        if method == "gan":
            shares = gan_coverage(result.model, classifier, train.num_classes, args.seed)
            rows[method]["class_shares"] = [float(v) for v in shares]
            rows[method]["min_class_share"] = float(shares.min())
            print(
                f"gan: smallest class share among {COVERAGE_SAMPLES} generated images "
                f"{shares.min():.3f} (class {train.class_names[int(shares.argmin())]}); shares "
                + " ".join(f"{v:.3f}" for v in shares),
                flush=True,
            )
        print(
            f"{method}: {result.steps} steps in {result.seconds:.0f} s, probed in "
            f"{time.monotonic() - t0 - result.seconds:.0f} s",
            flush=True,
        )
    supervised = fine_tune(
        encoder_for(train.image_shape, args.seed),
        train,
        test,
        minutes=args.pretrain_minutes + args.finetune_minutes,
        seed=args.seed,
    )
    rows["supervised (100 %)"] = {"finetune@100%": supervised["accuracy"]}
    print_table(rows, title)
    return rows


def print_table(rows, title):
    names = list(rows)
    width = max(len(n) for n in names) + 2
    print(f"\n{title}: test accuracy")
    print(" " * width + "".join(f"{c:>14}" for c in COLUMNS))
    for name in names:
        cells = [rows[name].get(c) for c in COLUMNS]
        text = "".join(f"{v:>14.4f}" if v is not None else f"{'':>14}" for v in cells)
        extra = rows[name].get("finetune@100%")
        print(f"{name:<{width}}{text}" + (f"   fine-tuned on 100 %: {extra:.4f}" if extra else ""))


def check_targets(rows):
    random = rows["random init"]
    pretexts = [m for m in rows if m not in ("random init", "supervised (100 %)")]
    if not pretexts:
        return {}
    best = max(pretexts, key=lambda m: rows[m]["finetune@1%"])
    gain = 100 * (rows[best]["finetune@1%"] - random["finetune@1%"])
    beats = {m: rows[m]["linear"] > random["linear"] for m in pretexts}
    checks = {
        "best_pretext_at_1%": best,
        "finetune@1%_gain_points": gain,
        "finetune@1%_gain>=5": gain >= 5.0,
        "every_pretext_beats_random_linear": all(beats.values()),
        "linear_beats_random": beats,
    }
    if "finetune@1%_runs" in random:  # the gain seed by seed (the same seeds for both)
        checks["finetune@1%_gain_points_by_seed"] = [
            100 * (b - r)
            for b, r in zip(rows[best]["finetune@1%_runs"], random["finetune@1%_runs"], strict=True)
        ]
    if "simclr" in rows and "rotation" in rows:
        checks["simclr>=rotation_linear"] = rows["simclr"]["linear"] >= rows["rotation"]["linear"]
    if "min_class_share" in rows.get("gan", {}):
        share = rows["gan"]["min_class_share"]
        checks["gan_min_class_share"] = share
        checks[f"gan_every_class>={100 * MIN_CLASS_SHARE:g}%"] = share >= MIN_CLASS_SHARE
    supervised = rows["supervised (100 %)"]["finetune@100%"]
    best_linear = max(pretexts, key=lambda m: rows[m]["linear"])
    checks["gap_to_supervised_points"] = {
        "best_linear_probe": (best_linear, 100 * (supervised - rows[best_linear]["linear"])),
        "random_linear_probe": 100 * (supervised - random["linear"]),
    }
    print("\ntargets:")
    for key, value in checks.items():
        print(f"  {key}: {value}")
    return checks


def main(argv=None):
    args = parse_args(argv)
    start = time.monotonic()
    train, test = load_classification_data(args.data, seed=args.seed)
    train = subsample(train, args.max_train, args.seed)
    test = subsample(test, args.max_test, args.seed)
    results = {"config": vars(args)}
    methods = [m for m in args.methods if m != "colorization"]
    if methods:
        results["main"] = run_section(methods, train, test, args, train.source)
        results["targets"] = check_targets(results["main"])
    if "colorization" in args.methods:
        rgb_train, rgb_test = train, test
        if train.image_shape[-1] != 3:
            rgb_train, rgb_test = load_shapes_data(
                num_train=min(6000, args.max_train or 6000),
                num_test=1000,
                seed=args.seed,
                colors="by_class",
            )
        # Every encoder of this section sees and is probed on L* only (colorization's input);
        # colorization pretrains on the colour images, whose ab it learns to predict.
        results["colorization"] = run_section(
            ["colorization"],
            lightness(rgb_train),
            lightness(rgb_test),
            args,
            f"{rgb_train.source}, probed on L* (colorization)",
            pretrain_images=rgb_train.images,
        )
        results["colorization_targets"] = check_targets(results["colorization"])
    results["seconds"] = time.monotonic() - start
    print(f"\ntotal {results['seconds'] / 60:.1f} min")
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
