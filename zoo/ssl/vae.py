"""A small variational autoencoder (Kingma & Welling 2014) whose encoder features are probed.

``build_vae(encoder, input_shape, latent_dim=16)`` puts two dense heads on the encoder's
``(B, D)`` features, the posterior mean ``μ`` (layer ``"z_mean"``) and log-variance
``log σ²`` (``"z_log_var"``), samples ``z = μ + σ·ε`` with ``ε = keras.random.normal(...,
seed=SeedGenerator(seed))`` (the reparameterisation trick) and decodes ``z`` with
``Dense → Reshape → Conv2DTranspose(stride 2)×n → Conv2D(C)`` to ``(H, W, C)`` logits, cropped to
the input size, then a sigmoid (n = 2 below 32 pixels, else 3). The log-variance head starts
with a zero kernel, so training starts from σ ≈ 1 (a stable first step). The loss per image, averaged over the batch:

    reconstruction + β·KL,   KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)

(the closed form of ``KL(N(μ, σ²) ‖ N(0, I))``, ``kl_divergence``), with reconstruction the
binary cross-entropy (``"bce"``, computed from the logits) or the squared error (``"mse"``) between
``images / 255`` and the decoder's output, SUMMED over the pixels (the Bernoulli / Gaussian
log-likelihood up to constants, so β = 1 is the ELBO).

Probing: ``vae.encoder`` is the encoder (train it, save it, fine-tune it); ``vae.features`` is a
functional model ``images → μ`` (the mean vector). Plots: ``vae.reconstruct(images)`` and
``vae.sample(n)`` return images in ``[0, 1]``. ``fit`` takes a dataset of image batches (no
labels). The custom ``train_step`` uses ``tf.GradientTape`` (the zoo runs Keras on the TF backend).

Example:
    >>> vae = build_vae(encoder, (28, 28, 1), latent_dim=16)
    >>> vae.compile(keras.optimizers.Adam(1e-3))
    >>> vae.fit(images_ds, epochs=10)
    >>> grid = vae.sample(16)                        # (16, 28, 28, 1) in [0, 1]

Reference:
    Kingma, Welling, "Auto-Encoding Variational Bayes", ICLR 2014; Higgins et al., "β-VAE", 2017.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from zoo.ops.checks import check_int, encoder_feature_dim
from zoo.ssl.base import EncoderTaskModel

__all__ = ["RECONSTRUCTION_LOSSES", "VAE", "build_vae", "kl_divergence", "reconstruction_loss"]

RECONSTRUCTION_LOSSES = ("bce", "mse")


# === Loss terms ===


def kl_divergence(z_mean, z_log_var):
    """``KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)`` per sample.

    Args:
        z_mean, z_log_var: ``(B, latent_dim)``; ``z_log_var`` is ``log σ²``.

    Returns:
        ``(B,)`` float32.

    Example:
        >>> float(kl_divergence([[1.0]], [[0.0]])[0])    # ½ (1 + 1 − 1 − 0)
        0.5
    """
    mean = ops.cast(ops.convert_to_tensor(z_mean), "float32")
    log_var = ops.cast(ops.convert_to_tensor(z_log_var), "float32")
    return 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - 1.0 - log_var, axis=-1)


def reconstruction_loss(targets, logits, kind="bce"):
    """Per-image reconstruction loss, summed over pixels and channels.

    Args:
        targets: ``(B, H, W, C)`` in ``[0, 1]`` (``images / 255``).
        logits: ``(B, H, W, C)`` decoder logits (the reconstruction is ``sigmoid(logits)``).
        kind: ``"bce"`` (binary cross-entropy, from the logits) or ``"mse"`` (squared error of
            ``sigmoid(logits)``).

    Returns:
        ``(B,)`` float32.
    """
    targets = ops.cast(ops.convert_to_tensor(targets), "float32")
    logits = ops.cast(ops.convert_to_tensor(logits), "float32")
    if kind == "bce":
        # max(x, 0) − x·t + log(1 + exp(−|x|)): the stable sigmoid cross-entropy
        per_pixel = ops.relu(logits) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))
    elif kind == "mse":
        per_pixel = ops.square(ops.sigmoid(logits) - targets)
    else:
        raise ValueError(f"kind must be one of {RECONSTRUCTION_LOSSES}. Received: kind={kind!r}")
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=1)


# === Model ===


def _build_decoder(latent_dim, input_shape, width, name):
    """``z → (H, W, C)`` logits: Dense → Reshape → n stride-2 transposed convs → Conv2D → crop."""
    height, width_px, channels = input_shape
    steps = 2 if min(height, width_px) < 32 else 3
    h0, w0 = math.ceil(height / 2**steps), math.ceil(width_px / 2**steps)
    filters = width * 2 ** (steps - 1)
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(h0 * w0 * filters, activation="relu", name="decoder_dense")(z)
    x = keras.layers.Reshape((h0, w0, filters), name="decoder_reshape")(x)
    for i in range(steps):
        x = keras.layers.Conv2DTranspose(
            max(width, filters // 2**i),
            3,
            strides=2,
            padding="same",
            activation="relu",
            name=f"decoder_deconv{i}",
        )(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", name="decoder_logits_conv")(x)
    extra_h, extra_w = h0 * 2**steps - height, w0 * 2**steps - width_px
    if extra_h or extra_w:
        x = keras.layers.Cropping2D(
            ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
            name="decoder_crop",
        )(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="decoder_logits")(x)
    return keras.Model(z, logits, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(EncoderTaskModel):
    """A VAE on top of an encoder; build it with ``build_vae``.

    Every constructor argument is an attribute and is returned by ``get_config`` (the encoder
    serialised inside), so ``.keras`` files round-trip.

    Args:
        encoder: a built ``keras.Model``: float32 images 0–255 → ``(B, D)`` features.
        input_shape: ``(H, W, C)`` of the images.
        latent_dim: size of ``z``.
        beta: weight of the KL term (1 = the ELBO; > 1 = β-VAE).
        reconstruction: ``"bce"`` (default) or ``"mse"``, summed per image.
        decoder_width: filters of the decoder's last transposed conv (doubled per earlier one).
        seed: seed of the ``SeedGenerator`` that draws ``ε``.
        name: model name.

    Call:
        ``model(images)`` → reconstructions ``(B, H, W, C)`` in ``[0, 1]`` (decoded from ``μ``;
        with ``training=True`` from a sample ``z``).
    """

    def __init__(
        self,
        encoder,
        input_shape,
        latent_dim=16,
        beta=1.0,
        reconstruction="bce",
        decoder_width=32,
        seed=0,
        name="vae",
        **kwargs,
    ):
        super().__init__(name, **kwargs)
        # === Config ===
        feature_dim = encoder_feature_dim(encoder)
        try:
            input_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"input_shape must be (height, width, channels). Received: input_shape={input_shape!r}"
            ) from None
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(
                f"input_shape must be (height, width, channels) with positive sizes. Received: "
                f"input_shape={input_shape!r}"
            )
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
            raise ValueError(f"beta must be a number >= 0. Received: beta={beta!r}")
        if reconstruction not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"reconstruction must be one of {RECONSTRUCTION_LOSSES}. Received: "
                f"reconstruction={reconstruction!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
        self.encoder = encoder
        self.image_shape = input_shape
        self.latent_dim = check_int("latent_dim", latent_dim)
        self.beta = float(beta)
        self.reconstruction = reconstruction
        self.decoder_width = check_int("decoder_width", decoder_width)
        self.seed = seed
        # === Layers ===
        self.z_mean = keras.layers.Dense(self.latent_dim, dtype="float32", name="z_mean")
        self.z_log_var = keras.layers.Dense(
            self.latent_dim, dtype="float32", kernel_initializer="zeros", name="z_log_var"
        )
        self.z_mean.build((None, feature_dim))
        self.z_log_var.build((None, feature_dim))
        self.decoder_logits = _build_decoder(
            self.latent_dim, input_shape, self.decoder_width, "decoder"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        # === Functional views (share the layers above) ===
        images = keras.Input(input_shape, name="images")
        self.features = keras.Model(
            images, self.z_mean(self.encoder(images)), name=f"{name}_features"
        )
        z = keras.Input((self.latent_dim,), name="z")
        self.decoder = keras.Model(
            z,
            keras.layers.Activation("sigmoid", dtype="float32", name="reconstruction")(
                self.decoder_logits(z)
            ),
            name=f"{name}_decoder",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True  # every layer is built above (saving and optimizer loading need it)

    def build(self, input_shape=None):
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def encode(self, images, training=False):
        """``(μ, log σ²)``, each ``(B, latent_dim)`` float32."""
        h = self.encoder(images, training=training)
        return self.z_mean(h), self.z_log_var(h)

    def reparameterize(self, z_mean, z_log_var):
        """``z = μ + exp(½ log σ²)·ε``, ``ε ~ N(0, I)`` drawn with the model's SeedGenerator."""
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def call(self, images, training=False):
        z_mean, z_log_var = self.encode(images, training=training)
        z = self.reparameterize(z_mean, z_log_var) if training else z_mean
        return ops.sigmoid(self.decoder_logits(z, training=training))

    def reconstruct(self, images):
        """Reconstructions of ``images`` (decoded from ``μ``) in ``[0, 1]``, as a NumPy array."""
        return keras.ops.convert_to_numpy(self(ops.convert_to_tensor(images, "float32")))

    def sample(self, n, seed=None):
        """``n`` images decoded from ``z ~ N(0, I)``, in ``[0, 1]`` (NumPy), for plots.

        Args:
            n: number of samples.
            seed: an int for a reproducible draw; ``None`` uses the model's SeedGenerator.
        """
        n = check_int("n", n)
        generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        z = keras.random.normal((n, self.latent_dim), seed=generator)
        return keras.ops.convert_to_numpy(self.decoder(z))

    def compute_loss_terms(self, images, training=False):
        """``(total, reconstruction, kl)`` batch means (float32 scalars) for a batch of images."""
        targets = ops.cast(images, "float32") / 255.0
        z_mean, z_log_var = self.encode(images, training=training)
        z = self.reparameterize(z_mean, z_log_var)
        logits = self.decoder_logits(z, training=training)
        rec = ops.mean(reconstruction_loss(targets, logits, self.reconstruction))
        kl = ops.mean(kl_divergence(z_mean, z_log_var))
        return rec + self.beta * kl, rec, kl

    def _update_metrics(self, total, rec, kl):
        self.loss_tracker.update_state(total)
        self.reconstruction_tracker.update_state(rec)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            total, rec, kl = self.compute_loss_terms(images, training=True)
            objective = total
            if self.losses:  # weight regularisers of the encoder / decoder
                objective = objective + tf.add_n([tf.cast(v, tf.float32) for v in self.losses])
            # per-replica mean → the gradient summed over replicas is the global mean's
            scaled = self.optimizer.scale_loss(objective / float(replicas))
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._update_metrics(total, rec, kl)

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update_metrics(*self.compute_loss_terms(images, training=False))

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "input_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "beta": self.beta,
            "reconstruction": self.reconstruction,
            "decoder_width": self.decoder_width,
            "seed": self.seed,
        }


def build_vae(
    encoder,
    input_shape,
    latent_dim=16,
    beta=1.0,
    reconstruction="bce",
    decoder_width=32,
    seed=0,
    name="vae",
):
    """A ``VAE`` around ``encoder`` (see ``VAE`` for the arguments).

    Returns:
        An uncompiled ``VAE``; ``compile(optimizer)`` (no loss: the ELBO is built in) and
        ``fit(dataset_of_image_batches)``.

    Example:
        >>> vae = build_vae(encoder, (28, 28, 1), latent_dim=16)
        >>> vae.compile(keras.optimizers.Adam(1e-3))
        >>> vae.fit(images_ds, epochs=1)
        >>> mu = vae.features.predict(images)           # (N, 16) probe features
    """
    return VAE(
        encoder,
        input_shape,
        latent_dim=latent_dim,
        beta=beta,
        reconstruction=reconstruction,
        decoder_width=decoder_width,
        seed=seed,
        name=name,
    )
