"""The metric-learning workflow around a trained tower: data, splits, evaluation, export.

What the triplet and Siamese recipes (and the metric-learning benchmark) share:

- ``TRIPLET_DEFAULTS`` / ``SIAMESE_DEFAULTS``: every default of the two recipes in one dict
  each, read by the recipes' flags (``metric_learning_parser``) and by the benchmark;
- ``load_embedding_data``: train / test labelled images, subsampled and resized;
- ``holdout_splits``: ``{"all": ...}`` or ``{"seen": ..., "unseen": ...}`` (zero-shot classes);
- ``evaluate_against_pixels``: retrieval + verification of the tower next to raw-pixel nearest
  neighbour on every split, ``metrics_table`` / ``write_metrics`` to report them;
- ``plot_test_embeddings``: a t-SNE PNG of the test embeddings (unseen classes when held out);
- ``evaluate_plot_export``: the recipes' last steps (metrics, plot, export) in one call;
- ``export_tower``: the tower (image -> embedding) as a TF Serving SavedModel and a ``.tflite``,
  checked with ``verify_export``.

Example:
    >>> train, test = load_embedding_data(max_train=2000, max_test=500)
    >>> parts = holdout_splits(train, test, holdout=[5, 6, 7, 8, 9])
    >>> # ... train an encoder on parts["seen"][0] ...
    >>> results = evaluate_against_pixels(encoder, parts, num_pairs=2000)
    >>> print(metrics_table(results))
    >>> export_tower(encoder, "saved_models", "embedding", test.images[:8],
    ...              distance="squared_l2", class_names=train.class_names, results=results)
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from zoo.data.classification import (
    load_classification_data,
    make_augmentation,
    resize_images,
    split_classes,
    subsample,
)
from zoo.export import export_encoder
from zoo.metric_learning.model import DEFAULT_READOUT_LAYER, feature_readout
from zoo.metric_learning.sampling import OFFLINE_MINING, pk_batches
from zoo.metrics.retrieval import compute_embeddings, evaluate_encoder, plot_embeddings
from zoo.ops.distances import DISTANCES
from zoo.training import COMMON_DEFAULTS, build_parser
from zoo.training.flags import (
    comma_list,
    float_in,
    int_at_least,
    non_negative_float,
    positive_float,
)
from zoo.training.run_dir import write_json

__all__ = [
    "METRIC_KEYS",
    "SIAMESE_DEFAULTS",
    "SMOKE_SUBSETS",
    "TRIPLET_DEFAULTS",
    "add_metric_learning_flags",
    "add_offline_mining_flags",
    "evaluate_against_pixels",
    "evaluate_plot_export",
    "export_tower",
    "holdout_splits",
    "load_embedding_data",
    "metric_learning_parser",
    "metrics_table",
    "parse_class_list",
    "plot_test_embeddings",
    "probe_images",
    "training_batches",
    "triplet_distance",
    "raw_pixels",
    "write_metrics",
]

# === Recipe defaults ===

_SHARED_DEFAULTS = {
    # common training flags (zoo.training)
    "epochs": 12,
    "image_size": None,  # None: the data's own size
    "steps_per_epoch": 200,
    # the tower (build_embedding_model)
    "embedding_dim": 64,
    "width": 16,
    "dropout": 0.0,
    "lr": 2e-3,  # Adam, peak
    # data
    "augment": True,  # random horizontal flips
    "shift": 0.0,  # random translation as a fraction of the image (0: flips only)
    "holdout_classes": (),
    "max_train": None,
    "max_test": None,
    # evaluation and export
    "eval_pairs": 20000,
    "plot_points": 2000,
    "export_dir": "saved_models",
}

TRIPLET_DEFAULTS = {
    **_SHARED_DEFAULTS,
    "batch_size": 80,  # P x K: P = batch_size // k classes of K examples each
    "k": 8,
    "mining": "semi-hard",
    "margin": 0.2,
    "distance": None,  # None: by mining, see triplet_distance
    "hard_warmup_steps": 1000,  # batch-hard: semi-hard for the first steps (no collapse)
    # --model triplet-inputs: build_triplet on explicit (anchor, positive, negative) triplets
    "model": "online",
    "hard_fraction": 0.5,
    "mining_pool": 4000,
    "offline_mining": "semi-hard",
    "triplet_average": "active",  # TripletMarginLoss: mean over the triplets with a loss
}
"""``recipes/train_triplet.py``'s defaults (the flag names, with ``_`` for ``-``)."""

SIAMESE_DEFAULTS = {
    **_SHARED_DEFAULTS,
    "pairs": "in-batch",  # every pair of a P x K batch; "explicit": PairGenerator pairs
    "batch_size": 80,  # in-batch: P x K images (P = batch_size // k); explicit: pairs per step
    "k": 8,
    "variant": "squared",
    "margin": 1.0,  # on D², the squared variant's margin
    "distance": "l2",  # the D of the contrastive formula
    "average": "active",  # mean over similar pairs + mean over dissimilar pairs inside the margin
    "hard_fraction": 0.5,
    "mining_pool": 4000,
    "offline_mining": "semi-hard",
}
"""``recipes/train_siamese.py``'s defaults (the flag names, with ``_`` for ``-``)."""

SMOKE_SUBSETS = {"max_train": 600, "max_test": 300, "eval_pairs": 400, "plot_points": 150}
"""What ``--smoke`` sets on top of a recipe's smoke training settings: small data subsets."""

METRIC_KEYS = (
    "recall@1",
    "recall@2",
    "recall@4",
    "recall@8",
    "map@r",
    "verification_accuracy",
    "verification_roc_auc",
    "verification_val@far=0.001",
)
"""The metrics ``metrics_table`` shows, in its column order."""


# === Flags ===


def parse_class_list(text):
    """``"5,6,7"`` -> ``[5, 6, 7]``; an empty text gives ``[]`` (argparse ``type=``); a label
    that is not an integer >= 0 raises ``argparse.ArgumentTypeError``."""
    return _CLASS_LIST(text) if text else []


_CLASS_LIST = comma_list(int_at_least(0), allow_empty=True)


def add_metric_learning_flags(parser, defaults):
    """Add the flags shared by the metric-learning recipes (tower, data, evaluation, export).

    Args:
        parser: an ``argparse.ArgumentParser``.
        defaults: ``TRIPLET_DEFAULTS``, ``SIAMESE_DEFAULTS`` or a dict with the same keys.

    Returns:
        The same parser.
    """
    d = defaults
    group = parser.add_argument_group("metric learning")
    group.add_argument(
        "--embedding-dim",
        type=int_at_least(1),
        default=d["embedding_dim"],
        help="default: %(default)s",
    )
    group.add_argument(
        "--width", type=int_at_least(1), default=d["width"], help="filters of the first conv block"
    )
    group.add_argument(
        "--dropout",
        type=float_in(0, 1, high_open=True),
        default=d["dropout"],
        help="before the embedding layer",
    )
    group.add_argument(
        "--margin", type=non_negative_float, default=d["margin"], help="default: %(default)s"
    )
    group.add_argument(
        "--distance",
        choices=DISTANCES,
        default=d["distance"],
        help="default: %(default)s"
        if d["distance"]
        else "default: l2 for --mining hard, squared_l2 otherwise",
    )
    group.add_argument(
        "--lr", type=positive_float, default=d["lr"], help="Adam learning rate (peak)"
    )
    group.add_argument(
        "--no-augment", dest="augment", action="store_false", help="no random flip / shift"
    )
    group.add_argument(
        "--shift",
        type=float_in(0, 1),
        default=d["shift"],
        help="random translation as a fraction of the image (0 = flips only). Default: %(default)s",
    )
    group.add_argument(
        "--holdout-classes",
        type=parse_class_list,
        default=list(d["holdout_classes"]),
        metavar="C1,C2",
        help="train without these classes; report them separately (zero-shot)",
    )
    group.add_argument(
        "--max-train",
        type=int_at_least(1),
        default=d["max_train"],
        help="subsample the train split",
    )
    group.add_argument(
        "--max-test", type=int_at_least(1), default=d["max_test"], help="subsample the test split"
    )
    group.add_argument(
        "--eval-pairs", type=int_at_least(1), default=d["eval_pairs"], help="verification pairs"
    )
    group.add_argument(
        "--plot-points", type=int_at_least(1), default=d["plot_points"], help="t-SNE points"
    )
    group.add_argument("--export-dir", default=d["export_dir"], help="TF Serving model root")
    group.add_argument("--no-export", action="store_true", help="skip export and verification")
    parser.set_defaults(augment=d["augment"])
    return parser


def triplet_distance(mining, distance=None):
    """The triplet recipe's distance: ``distance`` when given, else ``"l2"`` for batch-hard (as
    Hermans et al.; on squared distances its gradient vanishes as the embeddings draw together)
    and ``"squared_l2"`` (FaceNet's) for the other modes."""
    if distance is not None:
        return distance
    return "l2" if mining == "hard" else "squared_l2"


def add_offline_mining_flags(parser, defaults):
    """``--hard-fraction`` and ``--mining-pool``: offline mining of explicit pairs / triplets
    (``PairGenerator`` / ``TripletGenerator`` refreshed each epoch by ``HardMiningCallback``).

    Returns:
        The same parser.
    """
    group = parser.add_argument_group("offline mining (explicit pairs / triplets)")
    group.add_argument(
        "--hard-fraction",
        type=float_in(0, 1),
        default=defaults["hard_fraction"],
        help="share of each batch taken from the examples mined at the start of every epoch "
        "(0 = random only). Default: %(default)s",
    )
    group.add_argument(
        "--mining-pool",
        type=int_at_least(1),
        default=defaults["mining_pool"],
        help="examples embedded and mined per epoch. Default: %(default)s",
    )
    group.add_argument(
        "--offline-mining",
        choices=OFFLINE_MINING,
        default=defaults["offline_mining"],
        help="hard: the farthest positive and the closest negative of each anchor; semi-hard: "
        "a random positive and the closest negative farther than it. Default: %(default)s",
    )
    return parser


def metric_learning_parser(description, defaults, smoke_defaults=None):
    """A recipe parser: the common flags (``zoo.training``) and the metric-learning flags.

    Args:
        description: the recipe's one-line description.
        defaults: ``TRIPLET_DEFAULTS`` or ``SIAMESE_DEFAULTS``; its common-flag keys (epochs,
            batch size, ...) become the common flags' defaults.
        smoke_defaults: what ``--smoke`` sets (any flag).

    Returns:
        An ``argparse.ArgumentParser``; add the recipe's own flags, then ``parse_flags``.
    """
    common = {key: value for key, value in defaults.items() if key in COMMON_DEFAULTS}
    parser = build_parser(description, defaults=common, smoke_defaults=smoke_defaults)
    return add_metric_learning_flags(parser, defaults)


# === Data ===


def load_embedding_data(source=None, *, image_size=None, max_train=None, max_test=None, seed=0):
    """Train and test labelled images (``zoo.data.classification.load_classification_data``).

    Args:
        source: ``None`` (Fashion-MNIST, else scikit-learn digits), a name or an image folder.
        image_size: resize every image to this side (int) or ``(height, width)``; ``None``
            keeps the data's own size.
        max_train, max_test: subsample each split to about this many images (same fraction of
            every class); ``None`` keeps all.
        seed: split and subsample seed.

    Returns:
        ``(train, test)`` ``ClassificationData``.
    """
    train, test = load_classification_data(source, seed=seed)
    if image_size is not None and np.ndim(image_size) == 0:
        image_size = (int(image_size), int(image_size))
    train = resize_images(subsample(train, max_train, seed), image_size)
    test = resize_images(subsample(test, max_test, seed + 1), image_size)
    return train, test


def training_batches(args, data, generator=None, target_key=None):
    """The recipes' training stream: P×K batches, or explicit pairs / triplets mined offline.

    Args:
        args: parsed flags: ``batch_size``, ``k``, ``augment``, ``shift``, ``seed``; with a
            generator also ``hard_fraction``, ``mining_pool`` and ``offline_mining``.
        data: the ``ClassificationData`` to train on.
        generator: ``None`` for P×K batches (online mining; P = ``batch_size // k``), or
            ``PairGenerator`` / ``TripletGenerator`` (``batch_size`` pairs / triplets a step).
        target_key: the model output the generator's targets go to.

    Returns:
        ``(dataset, generator instance or None, P or None)``.
    """
    augment = make_augmentation(max_shift=args.shift, seed=args.seed) if args.augment else None
    if generator is not None:
        stream = generator(
            data.images,
            data.labels,
            batch_size=args.batch_size,
            hard_fraction=args.hard_fraction,
            pool_size=args.mining_pool,
            seed=args.seed,
            mining=args.offline_mining,
        )
        return stream.dataset(augment=augment, target_key=target_key), stream, None
    p = max(2, min(args.batch_size // args.k, len(np.unique(data.labels))))
    dataset = pk_batches(data.images, data.labels, p=p, k=args.k, seed=args.seed, augment=augment)
    return dataset, None, p


def probe_images(data, count=512):
    """About ``count`` images spread over ``data`` (every n-th): ``CollapseMonitor``'s probe."""
    return data.images[:: max(1, len(data) // count)][:count]


def holdout_splits(train, test, holdout=()):
    """``{name: (train part, test part)}``: ``all``, or ``seen`` and ``unseen`` with a holdout.

    Args:
        train, test: ``ClassificationData``.
        holdout: class labels kept out of training (zero-shot); empty for ``{"all": ...}``.
    """
    holdout = list(holdout)
    if not holdout:
        return {"all": (train, test)}
    seen_train, unseen_train = split_classes(train, holdout)
    seen_test, unseen_test = split_classes(test, holdout)
    return {"seen": (seen_train, seen_test), "unseen": (unseen_train, unseen_test)}


# === Evaluation ===


def raw_pixels(images):
    """The baseline "embedding": the flattened pixels scaled to [0, 1]."""
    images = np.asarray(images)
    return images.reshape(len(images), -1) / 255.0


def _unseen_readout(encoder, layer):
    """``feature_readout(encoder, layer)``, or None where ``encoder`` has no such layer."""
    if layer is None or not isinstance(encoder, keras.Model):
        return None
    if layer not in [item.name for item in encoder.layers]:
        return None
    return feature_readout(encoder, layer)


def evaluate_against_pixels(
    encoder, parts, *, num_pairs=20000, seed=0, readout_layer=DEFAULT_READOUT_LAYER
):
    """Retrieval and verification of ``encoder`` and of raw pixels on every split.

    Test images query the gallery of the same split's train images (recall@k, the k-NN
    protocol); MAP@R and verification run within the test images (``evaluate_encoder``).
    On the ``unseen`` split (classes held out of training) the tower's inner feature map
    (``feature_readout`` of ``readout_layer``) is scored too: it is what transfers to classes
    the embedding never saw (``docs/metric_learning.md``).

    Args:
        encoder: the tower (images -> embeddings), or any function of a float32 batch.
        parts: ``holdout_splits`` output.
        num_pairs: verification pairs per split.
        seed: pair sampling seed.
        readout_layer: the layer read out on unseen classes; None (or a tower without that
            layer) leaves the row out.

    Returns:
        ``{split: {"model": metrics, ["readout": metrics,] "raw_pixels": metrics}}``.
    """
    readout = _unseen_readout(encoder, readout_layer) if "unseen" in parts else None
    results = {}
    for name, (train_part, test_part) in parts.items():
        embeddings = [("model", encoder), ("raw_pixels", raw_pixels)]
        if name == "unseen" and readout is not None:
            embeddings.insert(1, ("readout", readout))
        results[name] = {
            who: evaluate_encoder(
                embed,
                test_part.images,
                test_part.labels,
                train_part.images,
                train_part.labels,
                num_pairs=num_pairs,
                seed=seed,
            )
            for who, embed in embeddings
        }
    return results


def metrics_table(results, keys=METRIC_KEYS):
    """``evaluate_against_pixels`` results as a text table, one row per split and embedding."""
    lines = [
        f"{'split':<8} {'embedding':<11} "
        + " ".join(f"{k.replace('verification_', 'ver_'):>12}" for k in keys)
    ]
    for split, entry in results.items():
        for who, metrics in entry.items():
            lines.append(f"{split:<8} {who:<11} " + " ".join(f"{metrics[k]:>12.4f}" for k in keys))
    return "\n".join(lines)


def write_metrics(results, path):
    """Write ``results`` as indented JSON to ``path`` (parents created, NaN as ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, results)  # strict JSON: NaN -> null


def plot_test_embeddings(
    encoder, parts, path, *, class_names=None, max_points=2000, seed=0, title=None
):
    """t-SNE PNG of the tower's test embeddings: the unseen classes when held out, else all.

    Returns:
        ``pathlib.Path`` of the PNG.
    """
    test_part = parts["unseen" if "unseen" in parts else "all"][1]
    embeddings = compute_embeddings(encoder, test_part.images)
    return plot_embeddings(
        embeddings,
        test_part.labels,
        path,
        class_names=class_names,
        max_points=max_points,
        seed=seed,
        title=title,
    )


# === Export ===


def export_tower(
    encoder,
    root,
    name,
    sample,
    *,
    distance,
    class_names=None,
    results=None,
    version=None,
):
    """The tower (image -> embedding) as a SavedModel + fp32 ``.tflite``, checked against Keras.

    Args:
        encoder: the tower (float32 pixels 0-255 in, embedding out).
        root, name: TF Serving model root and model name (``root/name/<version>/``).
        sample: a few images for the parity check (``verify_export``).
        distance: the distance the embeddings are compared with (recorded in the manifest).
        class_names: recorded in the manifest.
        results: ``evaluate_against_pixels`` output; the tower's metrics go to the manifest
            as ``<split>_<metric>``.
        version: TF Serving version; ``None`` takes the next free one.

    Returns:
        ``(saved_model_dir, verify_export report)``.
    """
    metrics = None
    if results is not None:
        metrics = {
            f"{split}_{key}": value
            for split, entry in results.items()
            for key, value in entry["model"].items()
        }
    return export_encoder(
        encoder,
        root,
        name,
        np.asarray(sample, np.float32),
        version=version,
        class_names=None if class_names is None else list(class_names),
        metrics=metrics,
        config={
            "embedding_dim": int(encoder.output_shape[-1]),
            "distance": distance,
            "image_shape": [int(d) for d in encoder.input_shape[1:]],
            "input": "float32 pixels 0-255",
        },
    )


def evaluate_plot_export(encoder, parts, args, run_dir, *, class_names, title, export_name, sample):
    """A recipe's last steps: metrics against raw pixels, the t-SNE plot, the tower's export.

    Prints ``metrics_table`` and writes ``run_dir/metrics.json`` and ``run_dir/tsne.png``;
    unless ``args.no_export``, exports the tower as ``args.export_dir/export_name``.

    Args:
        encoder, parts: the trained tower and ``holdout_splits`` output.
        args: parsed flags (``eval_pairs``, ``seed``, ``plot_points``, ``no_export``,
            ``export_dir``, ``distance``).
        run_dir: the run's folder.
        class_names: the data's class names (plot legend, manifest).
        title: the plot's title.
        export_name: TF Serving model name.
        sample: a few test images for the export's parity check.

    Returns:
        the ``evaluate_against_pixels`` results.
    """
    results = evaluate_against_pixels(encoder, parts, num_pairs=args.eval_pairs, seed=args.seed)
    print(metrics_table(results))
    metrics_path = write_metrics(results, Path(run_dir) / "metrics.json")
    plot = plot_test_embeddings(
        encoder,
        parts,
        Path(run_dir) / "tsne.png",
        class_names=class_names,
        max_points=args.plot_points,
        seed=args.seed,
        title=title,
    )
    print(f"metrics: {metrics_path}; plot: {plot}")
    if not args.no_export:
        export_tower(
            encoder,
            args.export_dir,
            export_name,
            sample,
            distance=args.distance,
            class_names=class_names,
            results=results,
        )
    return results
