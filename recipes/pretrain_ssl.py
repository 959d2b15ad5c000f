"""Self-supervised pretraining: learn an encoder from unlabeled images, then probe it.

Description: pretrains `zoo.build_ssl_encoder` with one self-supervised method (`--task`:
    rotation, jigsaw, colorization, inpainting, denoising, deepcluster, simclr, vae, gan) on the
    UNLABELED training images for `--time-budget` minutes (`zoo.ssl.pretrain_encoder`), then
    measures what it learned against the same network at random init: a linear probe
    (logistic regression on frozen features) and a weighted k-NN probe with all labels, and, for
    each `--label-fractions` (1 % and 10 % by default), a linear probe and fine-tuning with only
    that share of the labels (`--finetune-minutes` each). Writes metrics.json, the loss curve,
    the probe accuracies and sample pretext inputs / outputs as PNG, saves the encoder
    (`encoder.keras`) and exports it (SavedModel images -> features, `.tflite`) with
    `verify_export`. A GAN also writes a grid of generated images every `--sample-every`
    epochs (`gan_samples/`).
Data: scikit-learn digits by default (always available), `--data fashion_mnist` (the Debian
    package's IDX files), `--data shapes` (RGB, generated in code), `--data shapes_by_class`
    (the same with each shape's hue set by its class and its lightness not: the default for
    colorization, whose colours must be predictable from the grayscale image), or an image
    folder (one sub-folder per class).
Expected result: every pretext beats random init on the linear probe; see
    benchmarks/bench_ssl.py for the measured comparison on Fashion-MNIST.
Runtime: --time-budget (3 minutes) + probes (about 2 minutes); `--smoke` under a minute.

    python recipes/pretrain_ssl.py --task rotation
    python recipes/pretrain_ssl.py --task simclr --data fashion_mnist --time-budget 10
    python recipes/pretrain_ssl.py --task inpainting --option mask=irregular
    python recipes/pretrain_ssl.py --task gan --data fashion_mnist --time-budget 5
    python recipes/pretrain_ssl.py --task colorization --smoke
"""

from __future__ import annotations

import json
import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo.data.classification import load_classification_data, subsample  # noqa: E402
from zoo.export import export_encoder  # noqa: E402
from zoo.metrics.plots import image_grid, plot_bars, plot_history  # noqa: E402
from zoo.ssl.gan import GANSampleGrid
from zoo.ssl.model import build_ssl_encoder
from zoo.ssl.pretrain import SSL_METHODS, pretrain_encoder, sample_rows
from zoo.training import build_parser, configure, parse_flags  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import comma_list, float_in, int_at_least, positive_float  # noqa: E402
from zoo.training.probes import probe_encoder
from zoo.training.run_dir import create_run_dir, write_json  # noqa: E402

# === Hyperparameters ===
DEFAULTS = {"batch_size": 128, "time_budget": 3.0}
SMOKE = {"batch_size": 32, "time_budget": 0.1}
SMOKE_EXTRA = {
    "max_train": 256,
    "max_test": 128,
    "finetune_minutes": 0.05,
    "label_fractions": [0.1],
}


def _option(text):
    """``key=value`` with the value parsed as JSON when it can be (numbers, true/false)."""
    if "=" not in text:
        raise ValueError(f"--option must be key=value. Received: {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


_fractions = comma_list(float_in(0, 1, low_open=True))


def build_arg_parser():
    parser = build_parser(
        __doc__.splitlines()[0], defaults=DEFAULTS, smoke_defaults={**SMOKE, **SMOKE_EXTRA}
    )
    group = parser.add_argument_group("self-supervised pretraining")
    group.add_argument("--task", choices=SSL_METHODS, default="rotation", help="%(default)s")
    group.add_argument(
        "--option",
        type=_option,
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="method options (e.g. mask=irregular, mode=quantized, noise=masking, "
        "num_permutations=30, temperature=0.2, latent_dim=32, k=100, label_smoothing=0.1; "
        "augment=null turns off rotation's default flips and shifts)",
    )
    group.add_argument("--backbone", default="small_cnn", help="build_ssl_encoder backbone")
    group.add_argument(
        "--width", type=int_at_least(1), default=32, help="encoder width (first stage)"
    )
    group.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="Adam learning rate (default 1e-3; gan: the discriminator's, default 2e-4 with "
        "beta_1 0.5 as in the DCGAN paper, and the generator's is 5x it unless "
        "--option generator_learning_rate=...)",
    )
    group.add_argument(
        "--sample-every",
        type=int_at_least(1),
        default=5,
        help="gan: epochs between grids of generated images (gan_samples/)",
    )
    group.add_argument("--on-device", action="store_true", help="label batches in the model")
    group.add_argument(
        "--label-fractions", type=_fractions, default=[0.01, 0.1], help="low-label probes"
    )
    group.add_argument(
        "--finetune-minutes",
        type=positive_float,
        default=0.5,
        help="fine-tuning budget per fraction",
    )
    group.add_argument(
        "--max-train", type=int_at_least(1), default=None, help="subsample the train split"
    )
    group.add_argument(
        "--max-test", type=int_at_least(1), default=None, help="subsample the test split"
    )
    group.add_argument("--export-dir", default="saved_models", help="TF Serving model root")
    group.add_argument("--no-export", action="store_true", help="skip export and verification")
    return parser


def parse_args(argv=None):
    return parse_flags(build_arg_parser(), argv)


def load_data(args):
    source = args.data
    if source is None and args.task == "colorization":
        source = "shapes_by_class"
        print(
            "colorization needs images whose colour the grayscale predicts: using the RGB "
            "shapes set with class colours (--data shapes_by_class)"
        )
    if source is None:
        source = "digits"
    train, test = load_classification_data(source, seed=args.seed)
    if args.task == "colorization" and train.image_shape[-1] != 3:
        raise SystemExit(
            f"--task colorization needs RGB images; {train.source} has "
            f"{train.image_shape[-1]} channel(s). Use --data shapes_by_class or an RGB image folder."
        )
    return subsample(train, args.max_train, args.seed), subsample(test, args.max_test, args.seed)


def main(argv=None):
    args = parse_args(argv)
    configure(args)
    train, test = load_data(args)
    options = dict(args.option)
    run = create_run_dir(
        args.output, args.name, config={**vars(args), "option": options}, prefix=args.task
    )
    print(
        f"{args.task}: {len(train)} unlabeled training images {train.image_shape}, run {run.path}"
    )

    # === Model ===
    encoder_options = {"backbone": args.backbone, "width": args.width}
    random_encoder = build_ssl_encoder(train.image_shape, **encoder_options, name="random_init")
    encoder = build_ssl_encoder(train.image_shape, **encoder_options, name="ssl_encoder")

    # === Pretraining (labels unused) ===
    callbacks = [keras.callbacks.CSVLogger(str(run.path / "history.csv"))]
    if args.task == "gan":
        callbacks.append(GANSampleGrid(run.path / "gan_samples", every=args.sample_every))
    result = pretrain_encoder(
        args.task,
        train.images,
        encoder=encoder,
        minutes=args.time_budget,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        labels=train.labels if args.task == "deepcluster" else None,
        options=options,
        on_device=args.on_device,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    print(f"pretrained {result.steps} steps in {result.seconds:.0f} s")
    encoder.save(run.path / "encoder.keras")

    # === Probes: pretrained vs random init ===
    metrics = {
        "task": args.task,
        "options": options,
        "data": train.source,
        "pretrain_seconds": result.seconds,
        "pretrain_steps": result.steps,
        "history": {k: [float(v) for v in vs] for k, vs in result.history.items()},
        **{
            name: probe_encoder(
                model, train, test, args.label_fractions, args.finetune_minutes, args.seed
            )
            for name, model in (("pretrained", encoder), ("random_init", random_encoder))
        },
    }
    for name in ("pretrained", "random_init"):
        print(f"{name:<12}", " ".join(f"{k}={v:.4f}" for k, v in metrics[name].items()))

    # === Plots ===
    if any(result.history.values()):
        plot_history(result.history, run.path / "loss.png", title=f"{args.task} pretraining")
    plot_bars(
        {
            k: {"random init": metrics["random_init"][k], args.task: v}
            for k, v in metrics["pretrained"].items()
        },
        run.path / "probes.png",
        title=f"{args.task}: probes on {train.source}",
        ylim=(0, 1),
    )
    rows, columns, labels = sample_rows(result, args.task, test.images[:64], args.seed, options)
    image_grid(
        rows,
        run.path / "samples.png",
        columns=columns,
        row_labels=labels,
        title=f"{args.task} (rows: true / predicted label)" if labels else args.task,
    )

    # === Export ===
    if not args.no_export:
        saved, _ = export_encoder(
            encoder,
            args.export_dir,
            f"ssl_{args.task}",
            test.images[:8].astype(np.float32),
            class_names=list(train.class_names),
            metrics={k: v for k, v in metrics["pretrained"].items()},
            config={
                "task": args.task,
                "options": options,
                "image_shape": list(train.image_shape),
                "input": "float32 pixels 0-255",
                "output": "pooled features of the last conv stage",
            },
        )
        metrics["export"] = str(saved)
    write_json(run.path / "metrics.json", metrics)
    print(f"wrote {run.path / 'metrics.json'}, loss.png, probes.png, samples.png")
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))
