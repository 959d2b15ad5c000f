"""Self-supervised pretraining of an encoder by any of the zoo's methods, in one call.

``pretrain_encoder(method, images, minutes=...)`` trains ``encoder`` (by default
``zoo.ssl.model.build_ssl_encoder`` at the images' shape) on unlabeled images for a wall-clock
budget and returns it with the training history:

- pretext transforms (``"rotation"``, ``"jigsaw"``, ``"colorization"``, ``"inpainting"``,
  ``"denoising"``): ``zoo.ssl.pretext.make_pretext_dataset`` labels whole batches in tf.data
  (or, with ``on_device=True``, ``OnDevicePretext`` labels them inside the training step),
  ``zoo.ssl.model.build_pretext_model`` adds the task's head, ``zoo.ssl.pretext_loss``;
- ``"simclr"``: ``zoo.ssl.simclr.build_simclr`` (two augmented views, NT-Xent);
- ``"vae"``: ``zoo.ssl.vae.build_vae`` (ELBO; the encoder's features are probed);
- ``"gan"``: ``zoo.ssl.gan.build_gan`` (a DCGAN whose discriminator's feature tower is the
  encoder; its batch-norm statistics are re-estimated on the real images after training);
- ``"deepcluster"``: ``zoo.ssl.deepcluster.DeepCluster`` with its ``DeepClusterCallback``
  (k-means pseudo-labels every epoch, cluster-balanced batches).

The recipe ``recipes/pretrain_ssl.py`` and ``benchmarks/bench_ssl.py`` both call this, so the
benchmark measures exactly what users run.

Example:
    >>> result = pretrain_encoder("rotation", x_unlabeled, minutes=2.0)
    >>> linear_probe(result.encoder, train, test)
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import keras
import numpy as np

__all__ = [
    "PRETEXT_AUGMENT",
    "SSL_METHODS",
    "PretrainResult",
    "pretext_augmentation",
    "pretrain_encoder",
    "sample_rows",
    "split_task_options",
]

TRANSFORM_TASKS = ("rotation", "jigsaw", "colorization", "inpainting", "denoising")
DEEPCLUSTER_EPOCH_SAMPLES = 16384  # images per DeepCluster epoch (cluster-balanced draws)
DEEPCLUSTER_HEAD_WARMUP_STEPS = 300  # head-only steps on the cached features after each reset
# DeepCluster's training augmentation (``simclr_augment`` options): random crops (area 0.5-1),
# flips and SimCLR's colour jitter (p = 0.8); no grayscale or blur.
DEEPCLUSTER_AUGMENT = {"crop_scale": (0.5, 1.0), "grayscale_prob": 0.0, "blur_prob": 0.0}


SSL_METHODS = (*TRANSFORM_TASKS, "simclr", "vae", "deepcluster", "gan")
# Adam's learning rate when ``pretrain_encoder`` is given none: for the GAN the DCGAN paper's
# 2e-4 (``zoo.ssl.gan.GAN_ADAM``, the discriminator's; the generator's is 5x), 1e-3 for every
# other method.
DEFAULT_LEARNING_RATE = 1e-3

# The default augmentation of a pretext task's image stream, before the task labels a batch
# (``zoo.data.classification.make_augmentation`` keyword arguments). Rotation: random
# horizontal flips and shifts of up to 10 %, as RotNet trained on CIFAR (crops and flips); a
# flip never changes which rotation an image gets. Fashion-MNIST, 4 minutes of rotation, then
# the benchmark's 30-second fine-tune on 1 % of the labels, one run each: 0.835, 0.842 and
# 0.840 augmented against 0.829, 0.832 and 0.833 plain; in the full benchmark run 0.832 at 1 %
# (noise), and k-NN 0.835 against 0.801, linear probe at 10 % 0.841 against 0.832. The other
# tasks were not measured with it.
PRETEXT_AUGMENT = {"rotation": {"flip": True, "max_shift": 0.1}}
_TASK_DEFAULT = object()  # "augment" not given: the task's own default


class PretrainResult(NamedTuple):
    """What ``pretrain_encoder`` returns.

    Attributes:
        encoder: the trained encoder (images 0–255 → features), the object passed in if any.
        model: the training model (pretext model, ``SimCLR``, ``VAE``, ``DeepCluster`` or
            ``GAN``), for plots of its outputs.
        history: per-epoch lists (``loss``, ...).
        seconds: wall-clock training time.
        steps: optimisation steps taken.
    """

    encoder: Any
    model: Any
    history: dict
    seconds: float
    steps: int


def split_task_options(task, options):
    """Transform options → (transform, model, loss) keyword dicts for a pretext task.

    The transform takes every option (see ``zoo.ssl.pretext``); the head needs the number
    of jigsaw permutations / tiles flag and the colorization mode and bin count; the loss needs
    the colorization mode. ``augment`` belongs to the image stream (``pretrain_encoder``), not
    to the transform, and is left out.
    """
    from zoo.ssl import pretext_options

    options = {k: v for k, v in (options or {}).items() if k != "augment"}
    transform = pretext_options(task, **options)
    model, loss = {}, {}
    if task == "jigsaw":
        model = {"num_permutations": transform["num_permutations"], "tiles": transform["tiles"]}
    elif task == "colorization":
        model = {"mode": transform["mode"]}
        loss = {"mode": transform["mode"]}
        if transform["mode"] == "quantized":
            from zoo.ssl import ab_bins

            model["num_bins"] = int(len(ab_bins(transform["bin_size"])))
    return transform, model, loss


def pretext_augmentation(task, augment=_TASK_DEFAULT, seed=0):
    """The batch augmentation of a pretext task's image stream: ``fn(float32 images) -> images``.

    Args:
        task: a pretext task (``TRANSFORM_TASKS``).
        augment: not given: the task's default (``PRETEXT_AUGMENT``; none for most tasks);
            ``None`` / ``False``: none; a dict of ``make_augmentation`` keyword arguments
            (``flip``, ``max_shift``); or a callable ``fn(images (B, H, W, C) float32 0-255)``.
            (DeepCluster's own ``augment`` option is a different one: ``fn(images, seed)``,
            applied to its training batches.)
        seed: the augmentation's seed (the same seed gives the same stream).

    Returns:
        The callable, or ``None`` for no augmentation.
    """
    if augment is _TASK_DEFAULT:
        augment = PRETEXT_AUGMENT.get(task)
    if augment is None or augment is False:
        return None
    if callable(augment):
        return augment
    if isinstance(augment, dict):
        import inspect

        from zoo.data.classification import make_augmentation

        keys = [k for k in inspect.signature(make_augmentation).parameters if k != "seed"]
        unknown = sorted(set(augment) - set(keys))
        if unknown:
            raise ValueError(
                f"augment takes the keys {keys} (make_augmentation's). Received: unknown keys "
                f"{unknown}"
            )
        return make_augmentation(**augment, seed=seed)
    raise ValueError(
        "augment must be None, a dict of make_augmentation arguments or a callable. "
        f"Received: augment={augment!r}"
    )


def _check_images(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"images must be a non-empty (N, H, W, C) array. Received: shape={images.shape}"
        )
    return images


def _image_stream(images, seed):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images)
    return ds.shuffle(min(len(images), 60000), seed=seed).repeat()


def _budget_callbacks(minutes, callbacks, verbose):
    from zoo.training.callbacks import TimeBudget

    return [TimeBudget(minutes, verbose=verbose), *(callbacks or [])]


def pretrain_encoder(
    method,
    images,
    *,
    encoder=None,
    minutes=2.0,
    batch_size=128,
    learning_rate=None,
    seed=0,
    labels=None,
    options=None,
    encoder_options=None,
    on_device=False,
    max_epochs=1000,
    callbacks=None,
    verbose=0,
):
    """Pretrain an encoder on unlabeled ``images`` by ``method`` for ``minutes`` of wall clock.

    Args:
        method: one of ``SSL_METHODS``.
        images: uint8 / float32 ``(N, H, W, C)`` pixels 0–255 (labels are never used, except
            ``labels`` below for DeepCluster's NMI log).
        encoder: a ``keras.Model`` images → ``(B, D)`` to train in place; ``None`` builds
            ``build_ssl_encoder(images.shape[1:], **encoder_options)``.
        minutes: training budget (``zoo.training.callbacks.TimeBudget``).
        batch_size: images per batch.
        learning_rate: Adam learning rate; ``None``: 1e-3, and for the GAN the DCGAN paper's
            2e-4. For the GAN it is the discriminator's (the encoder's); the generator's is 5x
            it unless ``options={"generator_learning_rate": ...}``, and Adam's ``beta_1`` is
            0.5 for both. DeepCluster uses it too (pass ``options={"optimizer":
            keras.optimizers.SGD(0.05, momentum=0.9)}`` for the paper's). DeepCluster epochs
            draw ``min(N, DEEPCLUSTER_EPOCH_SAMPLES)`` images unless ``num_samples`` is given;
            they train on random crops, flips and colour jitter (``DEEPCLUSTER_AUGMENT``) and warm
            the new head up for ``DEEPCLUSTER_HEAD_WARMUP_STEPS`` steps unless
            ``augment_options`` / ``head_warmup_steps`` say otherwise.
        seed: data order, transforms, augmentation and head initialisation.
        labels: optional true classes, only for DeepCluster's per-epoch NMI.
        options: method options: the transform's for a pretext task (``num_permutations``,
            ``mode``, ``mask``, ``noise``, …, and ``augment``, the image stream's augmentation
            before labelling: see ``pretext_augmentation``; rotation flips and shifts by
            default, ``augment=None`` turns it off), ``build_simclr`` / ``build_vae`` /
            ``build_gan`` keyword arguments otherwise (and ``generator_learning_rate`` for the
            GAN), and for DeepCluster those of ``DeepCluster`` (``k``, ``hidden_units``,
            ``augment_options``), ``compile`` (``optimizer``, ``head_optimizer``) and
            ``DeepClusterCallback`` (``pca_dim``, ``every``, …).
        encoder_options: ``build_ssl_encoder`` keyword arguments when ``encoder`` is None.
        on_device: pretext tasks only: label batches inside the training step
            (``OnDevicePretext``) instead of in tf.data.
        max_epochs: epoch cap (an epoch is one pass over ``images``).
        callbacks: extra Keras callbacks.
        verbose: Keras verbosity.

    Returns:
        ``PretrainResult``.
    """
    if method not in SSL_METHODS:
        raise ValueError(f"method must be one of {SSL_METHODS}. Received: method={method!r}")
    if not minutes > 0:
        raise ValueError(f"minutes must be > 0. Received: minutes={minutes!r}")
    images = _check_images(images)
    if learning_rate is None and method == "gan":
        from zoo.ssl.gan import GAN_ADAM

        learning_rate = GAN_ADAM["learning_rate"]
    elif learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATE
    keras.utils.set_random_seed(seed)
    if encoder is None:
        from zoo.ssl.model import build_ssl_encoder

        encoder = build_ssl_encoder(images.shape[1:], **(encoder_options or {}))
    batch_size = int(min(batch_size, len(images)))
    steps_per_epoch = max(1, len(images) // batch_size)
    options = dict(options or {})
    start = time.monotonic()
    if method == "deepcluster":
        model, clusters = _deepcluster(
            encoder, images, labels, batch_size, learning_rate, seed, options, verbose
        )
        fit = model.fit(
            clusters.dataset(batch_size),
            epochs=max_epochs,
            callbacks=[clusters, *_budget_callbacks(minutes, callbacks, verbose)],
            verbose=verbose,
            shuffle=False,  # the callback draws the order
        )
        history, steps = fit.history, int(model.optimizer.iterations)
    else:
        model, data = _keras_method(
            method, encoder, images, batch_size, learning_rate, seed, options, on_device
        )
        fit = model.fit(
            data,
            epochs=max_epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=_budget_callbacks(minutes, callbacks, verbose),
            verbose=verbose,
            shuffle=False,  # the stream is shuffled in tf.data
        )
        history = fit.history
        # the optimizer's count: a time budget can stop training within an epoch
        steps = int(model.optimizer.iterations)
        if method == "gan":
            # the moving statistics followed real and generated batches in turn: the probed
            # features are those of real images
            from zoo.training.batchnorm import recalibrate_batchnorm

            recalibrate_batchnorm(encoder, images, seed=seed)
    return PretrainResult(encoder, model, history, time.monotonic() - start, steps)


def _keras_method(method, encoder, images, batch_size, learning_rate, seed, options, on_device):
    import tensorflow as tf

    stream = _image_stream(images, seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    if method == "simclr":
        from zoo.ssl.simclr import build_simclr

        model = build_simclr(encoder, seed=seed, **options)
        model.compile(optimizer)
        return model, stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if method == "vae":
        from zoo.ssl.vae import build_vae

        model = build_vae(encoder, images.shape[1:], seed=seed, **options)
        model.compile(optimizer)
        return model, stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if method == "gan":
        from zoo.ssl.gan import GAN_ADAM, GAN_GENERATOR_ADAM, build_gan

        options = dict(options)
        ratio = GAN_GENERATOR_ADAM["learning_rate"] / GAN_ADAM["learning_rate"]
        generator_lr = options.pop("generator_learning_rate", ratio * learning_rate)
        model = build_gan(encoder, images.shape[1:], seed=seed, **options)
        model.compile(
            keras.optimizers.Adam(**{**GAN_ADAM, "learning_rate": learning_rate}),
            keras.optimizers.Adam(**{**GAN_GENERATOR_ADAM, "learning_rate": generator_lr}),
        )
        return model, stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    from zoo.ssl import OnDevicePretext, make_pretext_dataset, pretext_transform
    from zoo.ssl.loss import pretext_loss
    from zoo.ssl.model import build_pretext_model

    augment = pretext_augmentation(method, options.get("augment", _TASK_DEFAULT), seed)
    transform, model_options, loss_options = split_task_options(method, options)
    batches = stream.batch(batch_size, drop_remainder=True)
    if augment is not None:
        batches = batches.map(lambda x: augment(tf.cast(x, tf.float32)))
    sample_inputs, _ = pretext_transform(
        method, images[:1].astype(np.float32), tf.constant([seed, 0], tf.int64), **transform
    )
    model = build_pretext_model(
        encoder, method, input_shape=tuple(sample_inputs.shape[1:]), **model_options
    )
    loss = pretext_loss(method, **loss_options)
    if on_device:
        wrapper = OnDevicePretext(model, method, seed=seed, **transform)
        wrapper.compile(optimizer, loss)
        return wrapper, batches.prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer, loss)
    data = make_pretext_dataset(batches, method, None, seed=seed, **transform)
    return model, data


def _deepcluster(encoder, images, labels, batch_size, learning_rate, seed, options, verbose):
    """The compiled ``DeepCluster`` model and its ``DeepClusterCallback`` (put first in ``fit``'s
    callbacks, so that ``TimeBudget`` counts the clustering between epochs)."""
    from zoo.ssl.deepcluster import DeepCluster, DeepClusterCallback

    options = dict(options)
    k = options.pop("k", 10 * int(np.max(labels) + 1) if labels is not None else 100)
    model_options = {
        key: options.pop(key) for key in ("hidden_units", "augment_options") if key in options
    }
    # Short budgets: Adam, and an epoch of at most EPOCH_SAMPLES images so that the k-means
    # reassignment happens several times (Fashion-MNIST, 1.5 min: SGD(0.01, 0.9) on full epochs
    # ran 1 epoch, linear probe 0.792; SGD on 16k-image epochs 0.743; Adam on them 0.793).
    optimizer = options.pop("optimizer", None) or keras.optimizers.Adam(learning_rate)
    head_optimizer = options.pop("head_optimizer", None)
    options.setdefault("num_samples", min(len(images), DEEPCLUSTER_EPOCH_SAMPLES))
    # Random crops, flips and brightness/contrast jitter, and a head fitted to the new
    # pseudo-labels before the encoder trains on them (Fashion-MNIST, 3 minutes, linear probe;
    # random init 0.823): plain 0.791; crops (area 0.5-1) + flips 0.812; + 300 head warm-up
    # steps 0.821; + colour jitter 0.847 (without it k-means can group by overall intensity).
    # With crops + flips, lr 3e-4 gave 0.774, k = 30 0.793, a 512-unit MLP under the head 0.812.
    model_options.setdefault("augment_options", DEEPCLUSTER_AUGMENT)
    options.setdefault("head_warmup_steps", DEEPCLUSTER_HEAD_WARMUP_STEPS)
    options.setdefault("warmup_batch_size", batch_size)
    clusters = DeepClusterCallback(images, labels=labels, seed=seed, verbose=verbose, **options)
    model = DeepCluster(encoder, k, len(images), seed=seed, **model_options)
    model.compile(optimizer, head_optimizer=head_optimizer)
    return model, clusters


def sample_rows(result, method, images, seed=0, options=None, count=6):
    """What the pretext looks like: rows of images for ``zoo.metrics.plots.image_grid``.

    Args:
        result: ``PretrainResult`` of ``method``.
        method: the method it was trained with.
        images: a few ``(N, H, W, C)`` images 0–255 (``count`` are used).
        seed: transform / augmentation seed.
        options: the method options used for training.
        count: rows.

    Returns:
        ``(rows, columns, row_labels)``: per method, e.g. denoising → (noisy, denoised, clean);
        inpainting → (masked, filled in, original); colorization → (L input, predicted colour,
        true colour); rotation / jigsaw → (input, original) labelled "true / predicted";
        VAE → (image, reconstruction); SimCLR → (view 1, view 2); GAN → (a real image, three
        generated ones, from ``seed``); DeepCluster → one row per cluster with its members.
    """
    import tensorflow as tf

    images = _check_images(images).astype(np.float32)
    seed_t = tf.constant([seed, 0], tf.int64)
    options = dict(options or {})
    if method == "deepcluster":
        return _cluster_rows(result.model, images, count)
    images = images[:count]
    if method == "vae":
        recon = np.asarray(result.model.reconstruct(images))
        return (
            [[x, r] for x, r in zip(images, recon, strict=True)],
            ["image", "reconstruction"],
            None,
        )
    if method == "gan":
        generated = result.model.generate(3 * len(images), seed=seed).reshape(
            len(images), 3, *images.shape[1:]
        )
        rows = [[x / 255.0, *(g / 255.0)] for x, g in zip(images, generated, strict=True)]
        return rows, ["real", "generated", "generated", "generated"], None
    if method == "simclr":
        from zoo.ssl.simclr import simclr_augment

        v1 = simclr_augment(images, seed_t).numpy()
        v2 = simclr_augment(images, seed_t + 1).numpy()
        return [list(p) for p in zip(v1, v2, strict=True)], ["view 1", "view 2"], None

    from zoo.ops import lab_to_rgb
    from zoo.ssl import pretext_transform

    transform, _, _ = split_task_options(method, options)
    inputs, targets = pretext_transform(method, images, seed_t, **transform)
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    predictions = np.asarray(result.model(inputs, training=False))
    if method in ("rotation", "jigsaw"):
        labels = [f"{t} / {p}" for t, p in zip(targets, predictions.argmax(-1), strict=True)]
        return [[x, o] for x, o in zip(inputs, images, strict=True)], ["input", "original"], labels
    if method == "denoising":
        rows = zip(inputs, predictions, targets, strict=True)
        return [list(r) for r in rows], ["noisy", "denoised", "clean"], None
    if method == "inpainting":
        channels = images.shape[-1]
        clean, mask = targets[..., :channels], targets[..., channels:]
        filled = np.where(mask > 0.5, predictions, inputs / 255.0)
        rows = zip(inputs, filled, clean, strict=True)
        return [list(r) for r in rows], ["masked", "filled in", "original"], None
    # colorization: L (0-255) + predicted ab -> RGB
    lightness = inputs[..., :1] / 2.55
    if transform["mode"] == "quantized":
        from zoo.ssl import ab_bins

        bins = np.asarray(ab_bins(transform["bin_size"]), np.float32)
        probs = tf.nn.softmax(predictions, axis=-1).numpy()
        ab = probs @ bins
    else:
        ab = predictions * 128.0
    rgb = np.asarray(lab_to_rgb(np.concatenate([lightness, ab], -1).astype(np.float32))) / 255.0
    rows = zip(inputs, rgb, images, strict=True)
    return [list(r) for r in rows], ["L input", "predicted colour", "true colour"], None


def _cluster_rows(model, images, count):
    if len(images) == model.num_examples:  # the training images: their last clustering
        assignments = np.asarray(model.pseudo_labels)
    else:  # other images: the pseudo-class the head predicts
        assignments = np.argmax(model.predict(images, verbose=0), axis=-1)
    sizes = np.bincount(assignments, minlength=model.k)
    rows, labels = [], []
    for cluster in np.argsort(-sizes)[:count]:
        members = np.flatnonzero(assignments == cluster)[:count]
        if not len(members):
            break
        rows.append(list(images[members]))
        labels.append(f"cluster {cluster} ({sizes[cluster]})")
    return rows, None, labels
