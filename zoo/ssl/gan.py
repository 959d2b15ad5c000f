"""A DCGAN (Radford et al. 2016) whose discriminator's features are probed.

``build_gan(encoder, input_shape)`` makes the encoder the discriminator's feature tower: the
discriminator is ``encoder`` followed by one ``Dense(1)`` logit (layer ``"discriminator_logit"``),
so after training the encoder is probed exactly like every other method's. The generator maps
``z ~ N(0, I)`` (``latent_dim``, 100 as in the paper) through
``Dense → BN → ReLU → Reshape → [Conv2DTranspose(4×4, stride 2) → BN → ReLU]×(n−1) →
Conv2DTranspose(C, stride 2) → tanh`` to ``(H, W, C)`` (n = 2 below 32 pixels, else 3; cropped to
the input size), then ``127.5·(tanh + 1)``: pixels 0–255, the range the encoder and every other
pretext take. Its kernels start from N(0, 0.02²), as in the paper.

Losses (Goodfellow et al. 2014, the non-saturating generator loss), binary cross-entropy on the
discriminator's logits ``l``, batch means:

    d_loss = BCE(l_real, 1 − s) + BCE(l_fake, 0),   g_loss = BCE(l_fake, 1)

with ``s`` the one-sided label smoothing (Salimans et al. 2016; 0 by default). At equilibrium
(``D = ½`` everywhere) ``d_loss = 2 ln 2`` and ``g_loss = ln 2``.

Each train step draws ``z`` with the model's ``SeedGenerator``, runs the discriminator on the
real batch and on the generated batch SEPARATELY (the DCGAN recipe: the encoder is the zoo's
conv-BN-ReLU network, and its batch norm then never mixes real and generated images) and updates
both networks from those passes with their own optimizers (simultaneous gradient steps).

Defaults and why (Fashion-MNIST, ``build_ssl_encoder((28, 28, 1))``, 250 steps of batch 128,
about two minutes on a 2-core CPU; the share of 1,000 samples that a 0.88-accurate classifier
puts in its rarest class):

- ``compile()``: the discriminator (the encoder being pretrained) trains with the paper's
  ``Adam(2e-4, beta_1=0.5)`` (``GAN_ADAM``), the generator five times faster
  (``GAN_GENERATOR_ADAM``, ``Adam(1e-3, beta_1=0.5)``; two time-scales, Heusel et al. 2017). At
  2e-4 for both the generator drew blurry stripes (rarest class 0.1 %); at 1e-3 it drew
  trousers, shoes, bags and shirts (rarest class 1.0 %, mean / std of the pixels 68 / 88 in
  training mode against the data's 73 / 90).
- separate real and generated batches: one mixed batch through the encoder's batch norm let the
  discriminator win at once (it got 100 % of the fakes right for 250 steps) and the generator
  drew dark blobs on grey (2e-4) or blotchy shapes whose rarest class held 0.5 % (1e-3).
- no label smoothing (``label_smoothing=0.1`` is the usual one-sided value); 0.2 did not help
  the 2e-4 generator (rarest class 0 %).

The discriminator's own DCGAN choices (LeakyReLU 0.2, no batch norm on its first layer) are not
applied: its feature tower is whatever encoder is passed in, so that the probed network is the
same for every method. Metrics: ``d_loss``, ``g_loss``, ``d_real_acc`` and ``d_fake_acc`` (the
share of real / generated images the discriminator gets right), and ``loss``, the same as
``d_loss``: the objective of the network being pretrained, under the name every other method
logs it (so ``history["loss"]``, NaN checks and loss plots work unchanged).

The encoder's batch-norm moving statistics are gathered on real and generated batches in turn;
``zoo.ssl.pretrain_encoder("gan", ...)`` re-estimates them on the real images after training
(``zoo.training.batchnorm.recalibrate_batchnorm``), so the probed features are those of real
data.

Plots and checks: ``gan.generate(n)`` returns images as pixels 0–255; ``GANSampleGrid`` writes
a PNG grid of them (a fixed ``z``) every few epochs; ``class_coverage(samples, classifier)``
is the share of each class a classifier predicts among generated samples (a collapsed generator
covers few classes).

Example:
    >>> encoder = build_ssl_encoder((28, 28, 1))
    >>> gan = build_gan(encoder, (28, 28, 1))
    >>> gan.compile()                                  # D: Adam(2e-4, 0.5), G: Adam(1e-3, 0.5)
    >>> gan.fit(images_ds, epochs=10, callbacks=[GANSampleGrid("run/gan_samples")])
    >>> features = gan.encoder.predict(images)         # the discriminator's features

Reference:
    Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks" (DCGAN), ICLR 2016; Goodfellow et al., "Generative
    Adversarial Nets", NeurIPS 2014; Salimans et al., "Improved Techniques for Training GANs",
    NeurIPS 2016; Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
    Local Nash Equilibrium", NeurIPS 2017.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.ops.checks import check_int, encoder_feature_dim
from zoo.ssl.base import EncoderTaskModel

__all__ = [
    "GAN",
    "GAN_ADAM",
    "GAN_GENERATOR_ADAM",
    "GANSampleGrid",
    "build_gan",
    "class_coverage",
    "discriminator_loss",
    "generator_loss",
]

# The discriminator's optimizer, the paper's: Adam, learning rate 2e-4, beta_1 0.5 (beta_1 0.9
# "resulted in training oscillation and instability"). The generator's: the same, 5x faster
# (see the module docstring for the measurement).
GAN_ADAM = {"learning_rate": 2e-4, "beta_1": 0.5}
GAN_GENERATOR_ADAM = {"learning_rate": 1e-3, "beta_1": 0.5}


# === Losses ===


def _bce_with_logits(targets, logits):
    """max(l, 0) − l·t + log(1 + exp(−|l|)): the stable sigmoid cross-entropy, elementwise."""
    return ops.relu(logits) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """``BCE(real_logits, 1 − label_smoothing) + BCE(fake_logits, 0)``, each a batch mean.

    Args:
        real_logits, fake_logits: the discriminator's logits on real / generated images.
        label_smoothing: one-sided smoothing of the real target, in ``[0, 1)``.

    Returns:
        A float32 scalar.

    Example:
        >>> float(discriminator_loss([0.0], [0.0]))        # 2 ln 2
        1.3862943649291992
    """
    real = ops.cast(ops.convert_to_tensor(real_logits), "float32")
    fake = ops.cast(ops.convert_to_tensor(fake_logits), "float32")
    real_loss = ops.mean(_bce_with_logits(1.0 - float(label_smoothing), real))
    return real_loss + ops.mean(_bce_with_logits(0.0, fake))


def generator_loss(fake_logits):
    """The non-saturating generator loss ``BCE(fake_logits, 1) = mean(−log D(G(z)))``.

    Example:
        >>> float(generator_loss([0.0]))                   # ln 2
        0.6931471824645996
    """
    fake = ops.cast(ops.convert_to_tensor(fake_logits), "float32")
    return ops.mean(_bce_with_logits(1.0, fake))


# === Model ===


def _check_input_shape(input_shape):
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_shape must be (height, width, channels). Received: input_shape={input_shape!r}"
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            "input_shape must be (height, width, channels) with positive sizes. Received: "
            f"input_shape={input_shape!r}"
        )
    return shape


def _build_generator(latent_dim, input_shape, width, name):
    """``z → (H, W, C)`` pixels 0–255 (see the module docstring)."""
    height, width_px, channels = input_shape
    steps = 2 if min(height, width_px) < 32 else 3
    h0, w0 = math.ceil(height / 2**steps), math.ceil(width_px / 2**steps)
    filters = width * 2 ** (steps - 1)

    def init():
        return keras.initializers.RandomNormal(stddev=0.02)

    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(
        h0 * w0 * filters, use_bias=False, kernel_initializer=init(), name="generator_dense"
    )(z)
    x = keras.layers.BatchNormalization(name="generator_dense_bn")(x)
    x = keras.layers.ReLU(name="generator_dense_relu")(x)
    x = keras.layers.Reshape((h0, w0, filters), name="generator_reshape")(x)
    for i in range(steps - 1):
        x = keras.layers.Conv2DTranspose(
            max(1, filters // 2 ** (i + 1)),
            4,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=init(),
            name=f"generator_deconv{i}",
        )(x)
        x = keras.layers.BatchNormalization(name=f"generator_bn{i}")(x)
        x = keras.layers.ReLU(name=f"generator_relu{i}")(x)
    x = keras.layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", kernel_initializer=init(), name="generator_out"
    )(x)
    extra_h, extra_w = h0 * 2**steps - height, w0 * 2**steps - width_px
    if extra_h or extra_w:
        x = keras.layers.Cropping2D(
            ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
            name="generator_crop",
        )(x)
    x = keras.layers.Activation("tanh", dtype="float32", name="generator_tanh")(x)
    pixels = keras.layers.Rescaling(127.5, offset=127.5, dtype="float32", name="pixels")(x)
    return keras.Model(z, pixels, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class GAN(EncoderTaskModel):
    """A DCGAN whose discriminator is ``encoder`` + a 1-logit head; build it with ``build_gan``.

    Every constructor argument is an attribute and is returned by ``get_config`` (the encoder
    serialised inside), so ``.keras`` files round-trip (the optimizers too, once compiled).

    Args:
        encoder: a built ``keras.Model``: float32 images 0–255 → ``(B, D)`` features; the
            discriminator's feature tower, trained in place.
        input_shape: ``(H, W, C)`` of the images.
        latent_dim: size of ``z`` (100, the paper's).
        generator_width: filters of the generator's last hidden transposed conv (doubled per
            earlier one; the paper's generator is wider, this one is sized for a CPU).
        label_smoothing: one-sided smoothing of the real label, in ``[0, 1)`` (0: none).
        seed: seed of the ``SeedGenerator`` that draws ``z``.
        name: model name.

    Call:
        ``model(images)`` → the discriminator's logits ``(B, 1)`` (real > 0).
    """

    def __init__(
        self,
        encoder,
        input_shape,
        latent_dim=100,
        generator_width=64,
        label_smoothing=0.0,
        seed=0,
        name="gan",
        **kwargs,
    ):
        super().__init__(name, **kwargs)
        # === Config ===
        feature_dim = encoder_feature_dim(encoder)
        input_shape = _check_input_shape(input_shape)
        encoder_shape = tuple(encoder.input_shape[1:])
        if len(encoder_shape) != 3 or any(
            e is not None and e != s for e, s in zip(encoder_shape, input_shape, strict=True)
        ):
            raise ValueError(
                f"encoder takes images of shape {encoder_shape}, not input_shape={input_shape}"
            )
        if (
            isinstance(label_smoothing, bool)
            or not isinstance(label_smoothing, (int, float))
            or not 0.0 <= label_smoothing < 1.0
        ):
            raise ValueError(
                f"label_smoothing must be in [0, 1). Received: label_smoothing={label_smoothing!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
        self.encoder = encoder
        self.image_shape = input_shape
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.generator_width = check_int("generator_width", generator_width)
        self.label_smoothing = float(label_smoothing)
        self.seed = seed
        # === Layers ===
        self.head = keras.layers.Dense(1, dtype="float32", name="discriminator_logit")
        self.head.build((None, feature_dim))
        self.generator = _build_generator(
            self.latent_dim, input_shape, self.generator_width, f"{name}_generator"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        # === Functional view (shares the layers above) ===
        images = keras.Input(input_shape, name="images")
        self.discriminator = keras.Model(
            images, self.head(self.encoder(images)), name=f"{name}_discriminator"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")  # = d_loss, the encoder's objective
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_acc_tracker = keras.metrics.Mean(name="d_real_acc")
        self.d_fake_acc_tracker = keras.metrics.Mean(name="d_fake_acc")
        self.generator_optimizer = None
        self.built = True  # every layer is built above (saving and optimizer loading need it)

    def build(self, input_shape=None):
        self.built = True

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.d_loss_tracker,
            self.g_loss_tracker,
            self.d_real_acc_tracker,
            self.d_fake_acc_tracker,
        ]

    def call(self, images, training=False):
        return self.discriminator(images, training=training)

    def generate(self, n, seed=None, batch_size=256):
        """``n`` generated images, float32 pixels 0–255 ``(n, H, W, C)`` (NumPy).

        Args:
            n: number of images.
            seed: an int for a reproducible draw; ``None`` uses the model's SeedGenerator.
            batch_size: images per generator call.
        """
        n = check_int("n", n)
        generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        z = keras.random.normal((n, self.latent_dim), seed=generator)
        out = [
            ops.convert_to_numpy(self.generator(z[i : i + batch_size], training=False))
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(out, axis=0)

    # === Training ===

    def compile(self, optimizer=None, generator_optimizer=None, **kwargs):
        """``optimizer`` trains the discriminator (encoder and head), default
        ``Adam(**GAN_ADAM)`` (2e-4); ``generator_optimizer`` the generator, default
        ``Adam(**GAN_GENERATOR_ADAM)`` (1e-3), whatever ``optimizer`` is."""
        optimizer = keras.optimizers.get(optimizer or keras.optimizers.Adam(**GAN_ADAM))
        if generator_optimizer is None:
            generator_optimizer = keras.optimizers.Adam(**GAN_GENERATOR_ADAM)
        super().compile(optimizer=optimizer, **kwargs)
        self.generator_optimizer = keras.optimizers.get(generator_optimizer)
        self.optimizer.build(self.discriminator.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self._optimizers = {
            "optimizer": optimizer,
            "generator_optimizer": self.generator_optimizer,
        }

    def get_compile_config(self):
        if not self.compiled:
            return None
        return keras.saving.serialize_keras_object(self._optimizers)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def compute_loss_terms(self, images, training=False):
        """``(d_loss, g_loss, real_logits, fake_logits)`` for a batch of real images and as many
        generated ones (a discriminator pass over each)."""
        real = ops.cast(images, "float32")
        z = keras.random.normal((ops.shape(real)[0], self.latent_dim), seed=self.seed_generator)
        fake = self.generator(z, training=training)
        real_logits = ops.reshape(
            ops.cast(self.discriminator(real, training=training), "float32"), (-1,)
        )
        fake_logits = ops.reshape(
            ops.cast(self.discriminator(fake, training=training), "float32"), (-1,)
        )
        d_loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
        g_loss = generator_loss(fake_logits)
        return d_loss, g_loss, real_logits, fake_logits

    def _update_metrics(self, d_loss, g_loss, real_logits, fake_logits):
        self.loss_tracker.update_state(d_loss)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_acc_tracker.update_state(ops.mean(ops.cast(real_logits > 0, "float32")))
        self.d_fake_acc_tracker.update_state(ops.mean(ops.cast(fake_logits < 0, "float32")))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        if self.generator_optimizer is None:
            raise ValueError("compile() the model before training it.")
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        replicas = float(tf.distribute.get_strategy().num_replicas_in_sync)
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            d_loss, g_loss, real_logits, fake_logits = self.compute_loss_terms(
                images, training=True
            )
            d_objective = d_loss
            if self.discriminator.losses:  # weight regularisers of the encoder / head
                d_objective = d_objective + tf.add_n(
                    [tf.cast(v, tf.float32) for v in self.discriminator.losses]
                )
            g_objective = g_loss
            if self.generator.losses:
                g_objective = g_objective + tf.add_n(
                    [tf.cast(v, tf.float32) for v in self.generator.losses]
                )
            # per-replica mean → the gradient summed over replicas is the global mean's
            d_scaled = self.optimizer.scale_loss(d_objective / replicas)
            g_scaled = self.generator_optimizer.scale_loss(g_objective / replicas)
        d_gradients = d_tape.gradient(d_scaled, d_vars)
        g_gradients = g_tape.gradient(g_scaled, g_vars)
        self.optimizer.apply_gradients(zip(d_gradients, d_vars, strict=True))
        self.generator_optimizer.apply_gradients(zip(g_gradients, g_vars, strict=True))
        return self._update_metrics(d_loss, g_loss, real_logits, fake_logits)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_metrics(*self.compute_loss_terms(images, training=False))

    # === Config ===

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "input_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "generator_width": self.generator_width,
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
        }


def build_gan(
    encoder,
    input_shape,
    latent_dim=100,
    generator_width=64,
    label_smoothing=0.0,
    seed=0,
    name="gan",
):
    """A ``GAN`` whose discriminator's feature tower is ``encoder`` (see ``GAN`` for the
    arguments).

    Returns:
        An uncompiled ``GAN``; ``compile()`` (no loss: the GAN losses are built in; defaults
        ``Adam(2e-4, beta_1=0.5)`` for the discriminator, ``Adam(1e-3, beta_1=0.5)`` for the
        generator) and ``fit(dataset_of_image_batches)``.

    Example:
        >>> gan = build_gan(build_ssl_encoder((28, 28, 1)), (28, 28, 1))
        >>> gan.compile()
        >>> gan.fit(images_ds, epochs=1)
        >>> samples = gan.generate(16, seed=0)            # (16, 28, 28, 1), pixels 0–255
    """
    return GAN(
        encoder,
        input_shape,
        latent_dim=latent_dim,
        generator_width=generator_width,
        label_smoothing=label_smoothing,
        seed=seed,
        name=name,
    )


# === Sample grid ===


class GANSampleGrid(keras.callbacks.Callback):
    """Write a PNG grid of generated images every ``every`` epochs and when training ends.

    The same ``z`` (drawn once from ``seed``) is decoded every time, so successive grids show
    how the generator changes. Files: ``directory/samples_epoch{E:03d}.png`` (``E`` counted from
    1), plus one for the last epoch when it was not a multiple of ``every``.

    Args:
        directory: output folder (created).
        every: epochs between grids.
        num_images: images per grid (a square-ish grid, ``ceil(sqrt(n))`` columns).
        seed: seed of the fixed ``z``.

    Attributes:
        paths: the PNG files written so far.
    """

    def __init__(self, directory, every=2, num_images=64, seed=0):
        super().__init__()
        self.directory = Path(directory)
        self.every = check_int("every", every)
        self.num_images = check_int("num_images", num_images)
        self.seed = seed
        self.paths = []
        self._z = None
        self._last_epoch = None
        self._last_written = None

    def write(self, epoch):
        """Write the grid of epoch ``epoch`` (counted from 1); returns its path."""
        from zoo.metrics.plots import image_grid

        if self._z is None:
            self._z = keras.random.normal(
                (self.num_images, self.model.latent_dim),
                seed=keras.random.SeedGenerator(self.seed),
            )
        images = ops.convert_to_numpy(self.model.generator(self._z, training=False)) / 255.0
        columns = math.ceil(math.sqrt(len(images)))
        rows = [list(images[i : i + columns]) for i in range(0, len(images), columns)]
        path = image_grid(
            rows,
            self.directory / f"samples_epoch{epoch:03d}.png",
            title=f"{self.model.name}: generated images, epoch {epoch}",
        )
        self.paths.append(path)
        self._last_written = epoch
        return path

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch + 1
        if (epoch + 1) % self.every == 0:
            self.write(epoch + 1)

    def on_train_end(self, logs=None):
        if self._last_epoch is not None and self._last_written != self._last_epoch:
            self.write(self._last_epoch)


# === Collapse check ===


def class_coverage(generator_samples, classifier, num_classes=None, batch_size=256):
    """The share of each class that ``classifier`` predicts among generated samples.

    A generator that collapsed onto a few modes covers few classes: on a 10-class set every
    share should be near 0.1, and the smallest one is the collapse check.

    Args:
        generator_samples: ``(N, H, W, C)`` images in the classifier's input range (for the
            zoo's classifiers: pixels 0–255, what ``GAN.generate`` returns).
        classifier: a callable (e.g. a ``keras.Model``) mapping a batch of images to
            ``(B, num_classes)`` scores (logits or probabilities); the prediction is the argmax.
        num_classes: number of classes; ``None`` takes the classifier's output width.
        batch_size: images per classifier call.

    Returns:
        ``(num_classes,)`` float64 shares summing to 1.

    Example:
        >>> shares = class_coverage(gan.generate(1000, seed=0), classifier)
        >>> shares.min()                                   # every class >= 0.03: no collapse
    """
    samples = np.asarray(generator_samples, dtype=np.float32)
    if samples.ndim < 2 or len(samples) == 0:
        raise ValueError(
            "generator_samples must be a non-empty batch of images (N, H, W, C). Received: "
            f"shape={samples.shape}"
        )
    if not callable(classifier):
        raise ValueError(
            "classifier must be callable: images -> (batch, num_classes) scores. Received: "
            f"classifier={classifier!r}"
        )
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes)
    batch_size = check_int("batch_size", batch_size)
    predictions = []
    for start in range(0, len(samples), batch_size):
        scores = np.asarray(ops.convert_to_numpy(classifier(samples[start : start + batch_size])))
        if scores.ndim != 2:
            raise ValueError(
                "classifier must return (batch, num_classes) scores. Received: output of shape "
                f"{scores.shape}"
            )
        if num_classes is None:
            num_classes = scores.shape[1]
        elif scores.shape[1] != num_classes:
            raise ValueError(
                f"classifier returns {scores.shape[1]} scores per image, not "
                f"num_classes={num_classes}"
            )
        predictions.append(np.argmax(scores, axis=1))
    counts = np.bincount(np.concatenate(predictions), minlength=num_classes)
    return counts / float(len(samples))
