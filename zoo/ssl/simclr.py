"""SimCLR: two augmented views, one shared encoder, an MLP projection head and the NT-Xent loss.

``simclr_augment(images, seed, ...)`` is SimCLR's augmentation written as ONE batched function of
stateless TF ops (every image gets its own random draw, all derived from ``seed``), so it runs in
``tf.data`` or inside the training step on the accelerator, and the same ``seed`` always gives
the same views. Steps, in order (Chen et al. 2020, appendix A):

1. random resized crop (area fraction in ``crop_scale``, log-uniform aspect ratio in
   ``crop_ratio``; a box larger than the image is clipped to it instead of being re-drawn as
   torchvision does), resized back to the input size (or ``output_size``) bilinearly;
2. horizontal flip with probability 0.5;
3. colour jitter with probability ``jitter_prob``, in the fixed order brightness (multiplicative
   factor in ``[1 − b, 1 + b]``, SimCLR v2), contrast (blend with the per-channel image mean,
   factor in ``[1 − c, 1 + c]``), saturation (blend with the grey image, torchvision's) and hue
   (shift of ``[−h, h]`` turns in HSV); a 1-channel image gets brightness and contrast only;
4. grayscale with probability ``grayscale_prob`` (3 channels only);
5. Gaussian blur with probability ``blur_prob`` (σ uniform in ``blur_sigma`` pixels, kernel
   ≈ 10 % of the image side, odd, ≥ 3). Off by default, as SimCLR on CIFAR-10.

``SimCLR`` / ``build_simclr`` wrap any encoder (images → ``(B, D)`` features): ``fit`` takes a
dataset of image batches (no labels); each train step draws two views of the batch with seeds
``stateless_fold_in([seed, 0], optimizer.iterations)``, encodes both with the SAME encoder (one
call on the concatenated ``2B`` batch, so batch-norm statistics span both views), projects them
with ``Dense(hidden) → BN → ReLU → Dense(projection_dim)`` and minimises NT-Xent
(``zoo.ssl.contrastive``). ``.encoder`` is the trained encoder to probe or fine-tune.
The custom ``train_step`` uses ``tf.GradientTape`` (the zoo runs Keras on the TF backend).

Example:
    >>> encoder = build_ssl_encoder((28, 28, 1))
    >>> simclr = build_simclr(encoder, projection_dim=64, temperature=0.5)
    >>> simclr.compile(keras.optimizers.Adam(1e-3))
    >>> simclr.fit(unlabeled_images.batch(256), epochs=10)
    >>> features = simclr.encoder.predict(images)

Reference:
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR), ICML 2020.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from zoo.ops.checks import check_fraction, check_int, encoder_feature_dim
from zoo.ops.random import low_bits, split_seed, uniform
from zoo.ssl.base import EncoderTaskModel
from zoo.ssl.contrastive import NTXentLoss, _check_temperature

__all__ = ["AUGMENT_DEFAULTS", "SimCLR", "build_simclr", "crop_and_resize", "simclr_augment"]

# SimCLR's colour jitter strength 0.5 (its CIFAR-10 setting): 0.8·s, 0.8·s, 0.8·s, 0.2·s.
AUGMENT_DEFAULTS = {
    "crop_scale": (0.2, 1.0),
    "crop_ratio": (3.0 / 4.0, 4.0 / 3.0),
    "flip": True,
    "brightness": 0.4,
    "contrast": 0.4,
    "saturation": 0.4,
    "hue": 0.1,
    "jitter_prob": 0.8,
    "grayscale_prob": 0.2,
    "blur_prob": 0.0,
    "blur_sigma": (0.1, 2.0),
}

_LUMA = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale's weights


# === Augmentation ===


def _check_range(name, value, low=0.0, high=None):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max). Received: {name}={value!r}") from None
    if not (low <= a <= b) or (high is not None and b > high):
        raise ValueError(
            f"{name} must satisfy {low} <= min <= max{'' if high is None else f' <= {high}'}. "
            f"Received: {name}={value!r}"
        )
    return a, b


def _bernoulli(seed, batch, p):
    return uniform([batch], seed) < p


def _per_image(x):
    return tf.reshape(x, [-1, 1, 1, 1])


def _grayscale(x):
    return tf.reduce_sum(x * tf.constant(_LUMA, tf.float32), axis=-1, keepdims=True)


def _random_resized_crop(x, seed, scale, ratio, size):
    batch = tf.shape(x)[0]
    height = tf.cast(tf.shape(x)[1], tf.float32)
    width = tf.cast(tf.shape(x)[2], tf.float32)
    s = split_seed(seed, 4)
    area = uniform([batch], s[0], scale[0], scale[1])
    log_ratio = uniform([batch], s[1], math.log(ratio[0]), math.log(ratio[1]))
    aspect = tf.exp(log_ratio)  # width / height in pixels
    # fractions of the image side: (h·H)·(w·W) = area·H·W and (w·W)/(h·H) = aspect
    h = tf.minimum(tf.sqrt(area * width / (aspect * height)), 1.0)
    w = tf.minimum(tf.sqrt(area * aspect * height / width), 1.0)
    y0 = uniform([batch], s[2], 0.0, 1.0) * (1.0 - h)
    x0 = uniform([batch], s[3], 0.0, 1.0) * (1.0 - w)
    boxes = tf.stack([y0, x0, y0 + h, x0 + w], axis=1)
    return crop_and_resize(x, boxes, size)


def _sample_axis(x, start, end, length, out, axis):
    """Bilinear resampling of one axis at ``out`` points spanning ``[start, end]`` (fractions)."""
    last = tf.cast(length - 1, tf.float32)
    if out > 1:
        steps = tf.range(out, dtype=tf.float32) / float(out - 1)
        pos = (start[:, None] + (end - start)[:, None] * steps[None, :]) * last
    else:  # one sample: the centre of the box, as tf.image.crop_and_resize
        pos = 0.5 * (start + end)[:, None] * last
    pos = tf.clip_by_value(pos, 0.0, last)
    low = tf.floor(pos)
    frac = pos - low
    low = tf.cast(low, tf.int32)
    high = tf.minimum(low + 1, length - 1)
    a = tf.gather(x, low, axis=axis, batch_dims=1)
    b = tf.gather(x, high, axis=axis, batch_dims=1)
    shape = [-1, 1, 1, 1]
    shape[axis] = out
    return a + (b - a) * tf.reshape(frac, shape)


def crop_and_resize(images, boxes, size):
    """``tf.image.crop_and_resize`` (bilinear, box ``i`` from image ``i``) made of gathers.

    The same numbers as the TF op for boxes inside the image, but it compiles with XLA
    (``CropAndResize`` has no XLA kernel, and Keras compiles ``fit`` with XLA on GPUs by default).

    Args:
        images: ``(B, H, W, C)`` float32.
        boxes: ``(B, 4)`` normalised ``[y1, x1, y2, x2]`` within ``[0, 1]``.
        size: ``(height, width)`` of the crops.

    Returns:
        ``(B, height, width, C)`` float32.
    """
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows = _sample_axis(images, boxes[:, 0], boxes[:, 2], height, int(size[0]), axis=1)
    return _sample_axis(rows, boxes[:, 1], boxes[:, 3], width, int(size[1]), axis=2)


def _color_jitter(x, seed, brightness, contrast, saturation, hue):
    batch = tf.shape(x)[0]
    channels = x.shape[-1]
    s = split_seed(seed, 4)
    if brightness > 0:
        factor = uniform([batch], s[0], max(0.0, 1.0 - brightness), 1.0 + brightness)
        x = tf.clip_by_value(x * _per_image(factor), 0.0, 1.0)
    if contrast > 0:
        factor = uniform([batch], s[1], max(0.0, 1.0 - contrast), 1.0 + contrast)
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        x = tf.clip_by_value((x - mean) * _per_image(factor) + mean, 0.0, 1.0)
    if channels == 3 and saturation > 0:
        factor = uniform([batch], s[2], max(0.0, 1.0 - saturation), 1.0 + saturation)
        gray = _grayscale(x)
        x = tf.clip_by_value((x - gray) * _per_image(factor) + gray, 0.0, 1.0)
    if channels == 3 and hue > 0:
        shift = uniform([batch], s[3], -hue, hue)
        hsv = tf.image.rgb_to_hsv(x)
        h = tf.math.floormod(hsv[..., 0] + tf.reshape(shift, [-1, 1, 1]), 1.0)
        x = tf.clip_by_value(tf.image.hsv_to_rgb(tf.stack([h, hsv[..., 1], hsv[..., 2]], -1)), 0, 1)
    return x


def _gaussian_blur(x, seed, sigma_range):
    batch = tf.shape(x)[0]
    side = min(x.shape[1], x.shape[2])
    radius = max(1, int(round(0.1 * side)) // 2)
    sigma = uniform([batch], seed, sigma_range[0], sigma_range[1])
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-tf.square(offsets)[None, :] / (2.0 * tf.square(sigma)[:, None]))
    kernel = kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)  # (B, K)
    mode = "REFLECT" if radius < side else "SYMMETRIC"
    padded = tf.pad(x, [[0, 0], [radius, radius], [0, 0], [0, 0]], mode=mode)
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    x = tf.add_n(
        [_per_image(kernel[:, k]) * padded[:, k : k + height] for k in range(2 * radius + 1)]
    )
    padded = tf.pad(x, [[0, 0], [0, 0], [radius, radius], [0, 0]], mode=mode)
    return tf.add_n(
        [_per_image(kernel[:, k]) * padded[:, :, k : k + width] for k in range(2 * radius + 1)]
    )


def simclr_augment(
    images,
    seed,
    crop_scale=AUGMENT_DEFAULTS["crop_scale"],
    crop_ratio=AUGMENT_DEFAULTS["crop_ratio"],
    flip=AUGMENT_DEFAULTS["flip"],
    brightness=AUGMENT_DEFAULTS["brightness"],
    contrast=AUGMENT_DEFAULTS["contrast"],
    saturation=AUGMENT_DEFAULTS["saturation"],
    hue=AUGMENT_DEFAULTS["hue"],
    jitter_prob=AUGMENT_DEFAULTS["jitter_prob"],
    grayscale_prob=AUGMENT_DEFAULTS["grayscale_prob"],
    blur_prob=AUGMENT_DEFAULTS["blur_prob"],
    blur_sigma=AUGMENT_DEFAULTS["blur_sigma"],
    output_size=None,
):
    """One SimCLR view of every image of a batch (see the module docstring for the steps).

    Args:
        images: ``(B, H, W, C)`` uint8 or float in 0–255, ``C`` = 1 or 3.
        seed: shape-[2] int32/int64 tensor; all randomness is ``tf.random.stateless_*``.
        crop_scale: range of the crop's area fraction (SimCLR on ImageNet: ``(0.08, 1)``; the
            default ``(0.2, 1)`` suits 28–32 pixel images, as in MoCo v2 / SimSiam on CIFAR).
        crop_ratio: range of the crop's aspect ratio (width / height).
        flip: random horizontal flips.
        brightness, contrast, saturation, hue: jitter strengths (0 turns one off; ``hue`` ≤ 0.5).
        jitter_prob: probability that an image is colour-jittered.
        grayscale_prob: probability that a 3-channel image is turned grey.
        blur_prob: probability of a Gaussian blur; ``blur_sigma``: its σ range in pixels.
        output_size: ``(height, width)`` of the views; default the input size.

    Returns:
        ``(B, H', W', C)`` float32 in 0–255.

    Example:
        >>> view = simclr_augment(images, tf.constant([1, 2]))
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "images must be (batch, height, width, channels) with 1 or 3 channels. Received "
            f"shape {tuple(images.shape)}"
        )
    seed = tf.convert_to_tensor(seed)
    if seed.shape != (2,) or not seed.dtype.is_integer:
        raise ValueError(
            f"seed must be a shape-[2] int32/int64 tensor. Received {seed.dtype.name} {seed.shape}"
        )
    crop_scale = _check_range("crop_scale", crop_scale, high=1.0)
    crop_ratio = _check_range("crop_ratio", crop_ratio)
    if crop_scale[0] <= 0 or crop_ratio[0] <= 0:
        raise ValueError(
            f"crop_scale and crop_ratio must be > 0. Received: crop_scale={crop_scale}, "
            f"crop_ratio={crop_ratio}"
        )
    brightness = check_fraction("brightness", brightness, high=10.0)
    contrast = check_fraction("contrast", contrast, high=10.0)
    saturation = check_fraction("saturation", saturation, high=10.0)
    hue = check_fraction("hue", hue, high=0.5)
    jitter_prob = check_fraction("jitter_prob", jitter_prob)
    grayscale_prob = check_fraction("grayscale_prob", grayscale_prob)
    blur_prob = check_fraction("blur_prob", blur_prob)
    blur_sigma = _check_range("blur_sigma", blur_sigma)
    if blur_prob > 0 and blur_sigma[0] <= 0:
        raise ValueError(f"blur_sigma must be > 0. Received: blur_sigma={blur_sigma}")
    if output_size is None:
        if images.shape[1] is None or images.shape[2] is None:
            raise ValueError("images need a static height and width (or pass output_size).")
        output_size = (int(images.shape[1]), int(images.shape[2]))
    output_size = tuple(int(v) for v in output_size)

    seeds = split_seed(low_bits(seed), 7)
    x = tf.cast(images, tf.float32) / 255.0
    batch = tf.shape(x)[0]
    x = _random_resized_crop(x, seeds[0], crop_scale, crop_ratio, output_size)
    if flip:
        x = tf.where(_per_image(_bernoulli(seeds[1], batch, 0.5)), tf.reverse(x, axis=[2]), x)
    if jitter_prob > 0 and max(brightness, contrast, saturation, hue) > 0:
        jittered = _color_jitter(x, seeds[2], brightness, contrast, saturation, hue)
        x = tf.where(_per_image(_bernoulli(seeds[3], batch, jitter_prob)), jittered, x)
    if x.shape[-1] == 3 and grayscale_prob > 0:
        gray = tf.tile(_grayscale(x), [1, 1, 1, 3])
        x = tf.where(_per_image(_bernoulli(seeds[4], batch, grayscale_prob)), gray, x)
    if blur_prob > 0:
        blurred = _gaussian_blur(x, seeds[5], blur_sigma)
        x = tf.where(_per_image(_bernoulli(seeds[6], batch, blur_prob)), blurred, x)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


# === Model ===


def _check_augment_options(options):
    options = dict(options or {})
    unknown = sorted(set(options) - set(AUGMENT_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown augment options {unknown}; known: {sorted(AUGMENT_DEFAULTS)}. "
            f"Received: augment_options={options!r}"
        )
    for key, value in options.items():  # JSON-friendly (tuples → lists after a round trip)
        if isinstance(value, (tuple, list)):
            options[key] = [float(v) for v in value]
    return options


@keras.saving.register_keras_serializable(package="zoo")
class SimCLR(EncoderTaskModel):
    """SimCLR around an encoder; build it with ``build_simclr``.

    Every constructor argument is an attribute and is returned by ``get_config`` (the encoder
    serialised inside), so ``.keras`` files round-trip.

    Args:
        encoder: a built ``keras.Model``: float32 images 0–255 → ``(B, D)`` features.
        projection_dim: output size of the projection head.
        hidden_dim: hidden units of the projection head (default ``D``, as SimCLR).
        temperature: NT-Xent ``τ``.
        augment_options: overrides of ``AUGMENT_DEFAULTS`` passed to ``simclr_augment``.
        seed: base seed of the views (step ``t`` uses ``fold_in([seed, 0], t)``).
        name: model name.

    Call:
        ``model(images)`` → ``(B, projection_dim)`` projections of the (un-augmented) images.
        ``model.views(images, seed)`` → the two augmented views used by a training step.
    """

    def __init__(
        self,
        encoder,
        projection_dim=64,
        hidden_dim=None,
        temperature=0.5,
        augment_options=None,
        seed=0,
        name="simclr",
        **kwargs,
    ):
        super().__init__(name, **kwargs)
        # === Config ===
        feature_dim = encoder_feature_dim(encoder)
        self.encoder = encoder
        self.projection_dim = check_int("projection_dim", projection_dim)
        self.hidden_dim = check_int("hidden_dim", feature_dim if hidden_dim is None else hidden_dim)
        self.temperature = _check_temperature(temperature)
        self.augment_options = _check_augment_options(augment_options)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
        self.seed = seed
        # === Layers ===
        self.projection_head = keras.Sequential(
            [
                keras.layers.Dense(self.hidden_dim, use_bias=False, name="projection_dense_0"),
                keras.layers.BatchNormalization(name="projection_bn_0"),
                keras.layers.ReLU(name="projection_relu_0"),
                keras.layers.Dense(self.projection_dim, name="projection_dense_1"),
            ],
            name="projection_head",
        )
        self.projection_head.build((None, feature_dim))
        self.loss_fn = NTXentLoss(self.temperature)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        self.built = True  # every layer is built above (saving and optimizer loading need it)

    def build(self, input_shape=None):
        self.built = True

    def call(self, images, training=False):
        return self.projection_head(self.encoder(images, training=training), training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def views(self, images, seed):
        """The two augmented views of ``images`` for a shape-[2] ``seed``: ``(view1, view2)``."""
        seed1, seed2 = tf.unstack(split_seed(low_bits(seed), 2))
        return (
            simclr_augment(images, seed1, **self.augment_options),
            simclr_augment(images, seed2, **self.augment_options),
        )

    def _step_loss(self, images, seed, training):
        view1, view2 = self.views(images, seed)
        z = self(tf.concat([view1, view2], axis=0), training=training)
        z1, z2 = tf.split(tf.cast(z, tf.float32), 2, axis=0)
        loss = self.loss_fn(None, tf.stack([z1, z2], axis=1))
        return loss, z1, z2

    def _update_metrics(self, loss, z1, z2):
        # top-1 "contrastive accuracy": the positive is the most similar of the 2N - 1 others
        u = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
        n2 = tf.shape(u)[0]
        sim = tf.matmul(u, u, transpose_b=True) - 2.0 * tf.eye(n2)
        positive = (tf.range(n2) + n2 // 2) % n2
        hit = tf.cast(tf.equal(tf.argmax(sim, axis=1, output_type=tf.int32), positive), tf.float32)
        self.loss_tracker.update_state(_unscale(loss))
        self.accuracy_tracker.update_state(tf.reduce_mean(hit))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        base = tf.constant([self.seed, 0], tf.int64)
        seed = tf.random.experimental.stateless_fold_in(
            base, tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        )
        with tf.GradientTape() as tape:
            loss, z1, z2 = self._step_loss(images, seed, training=True)
            total = loss
            if self.losses:  # weight regularisers of the encoder / head
                total = total + tf.add_n([tf.cast(v, tf.float32) for v in self.losses])
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._update_metrics(loss, z1, z2)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        seed = tf.constant([self.seed, 1], tf.int64)  # the same views at every evaluation
        loss, z1, z2 = self._step_loss(images, seed, training=False)
        return self._update_metrics(loss, z1, z2)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "projection_dim": self.projection_dim,
            "hidden_dim": self.hidden_dim,
            "temperature": self.temperature,
            "augment_options": self.augment_options,
            "seed": self.seed,
        }


def _unscale(loss):
    """The per-replica loss (scaled by 1/replicas in ``Loss.__call__``) back to the batch mean."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * float(replicas) if replicas > 1 else loss


def build_simclr(
    encoder,
    projection_dim=64,
    hidden_dim=None,
    temperature=0.5,
    augment_options=None,
    seed=0,
    name="simclr",
):
    """SimCLR around ``encoder`` (see ``SimCLR`` for the arguments).

    Returns:
        An uncompiled ``SimCLR``; ``compile(optimizer)`` (no loss: NT-Xent is built in) and
        ``fit(dataset_of_image_batches)``.

    Example:
        >>> simclr = build_simclr(encoder, projection_dim=64, temperature=0.5)
        >>> simclr.compile(keras.optimizers.Adam(1e-3))
        >>> simclr.fit(images_ds, epochs=1)
    """
    return SimCLR(
        encoder,
        projection_dim=projection_dim,
        hidden_dim=hidden_dim,
        temperature=temperature,
        augment_options=augment_options,
        seed=seed,
        name=name,
    )
