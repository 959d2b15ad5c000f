"""VAE: KL and reconstruction golden values, shapes, sampling, one training step, save/load."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.ssl.vae import VAE, build_vae, kl_divergence, reconstruction_loss


def tiny_encoder(shape=(12, 12, 1), name="tiny_encoder"):
    """A stand-in for build_ssl_encoder: images 0–255 → (B, 6) features."""
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, strides=2, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(6),
        ],
        name=name,
    )


def images(n=4, shape=(12, 12, 1), seed=0):
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype("float32")


# === Loss terms ===


def test_kl_matches_the_closed_form_in_numpy():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(5, 4))
    log_var = rng.normal(size=(5, 4))
    var = np.exp(log_var)
    # KL(N(μ, σ²) ‖ N(0, 1)) = log(1/σ) + (σ² + μ²)/2 − 1/2, summed over the dimensions
    want = np.sum(-0.5 * log_var + 0.5 * (var + mu**2) - 0.5, axis=1)
    got = kl_divergence(mu.astype("float32"), log_var.astype("float32")).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert float(kl_divergence([[1.0]], [[0.0]])[0]) == pytest.approx(0.5)
    np.testing.assert_allclose(kl_divergence(np.zeros((2, 3)), np.zeros((2, 3))), 0.0)


def test_kl_agrees_with_a_monte_carlo_estimate():
    rng = np.random.default_rng(1)
    mu, log_var = np.array([0.7, -1.2]), np.array([-0.5, 0.8])
    sigma = np.exp(0.5 * log_var)
    z = mu + sigma * rng.normal(size=(400_000, 2))
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + log_var + np.log(2 * np.pi))
    log_p = -0.5 * (z**2 + np.log(2 * np.pi))
    estimate = np.mean(np.sum(log_q - log_p, axis=1))
    exact = float(kl_divergence(mu[None].astype("float32"), log_var[None].astype("float32"))[0])
    assert exact == pytest.approx(estimate, abs=0.01)


def test_reconstruction_losses_match_numpy():
    rng = np.random.default_rng(2)
    targets = rng.random((3, 4, 4, 2)).astype("float32")
    logits = rng.normal(size=(3, 4, 4, 2)).astype("float32") * 3
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    bce = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).reshape(3, -1).sum(1)
    mse = ((p - targets) ** 2).reshape(3, -1).sum(1)
    np.testing.assert_allclose(reconstruction_loss(targets, logits, "bce"), bce, rtol=1e-5)
    np.testing.assert_allclose(reconstruction_loss(targets, logits, "mse"), mse, rtol=1e-5)
    # stable for saturated logits
    big = reconstruction_loss(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), -200.0), "bce")
    np.testing.assert_allclose(big, 800.0, rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        reconstruction_loss(targets, logits, "l1")


# === Model ===


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (12, 20, 3)])
def test_shapes_ranges_and_probe_features(shape):
    vae = build_vae(tiny_encoder(shape), shape, latent_dim=3, decoder_width=4)
    x = images(2, shape)
    out = vae(x).numpy()
    assert out.shape == (2, *shape) and out.min() >= 0 and out.max() <= 1
    samples = vae.sample(3, seed=1)
    assert samples.shape == (3, *shape) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, vae.sample(3, seed=1))
    mean = vae.features(x).numpy()
    assert mean.shape == (2, 3)
    z_mean, _ = vae.encode(x)
    np.testing.assert_allclose(mean, z_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(vae.reconstruct(x), out, atol=1e-6)
    np.testing.assert_allclose(vae.decoder(z_mean).numpy(), out, atol=1e-6)


def test_reparameterisation_uses_the_seed_generator():
    vae = build_vae(tiny_encoder(), (12, 12, 1), latent_dim=4, seed=5)
    mu = np.ones((3, 4), "float32")
    a = vae.reparameterize(mu, np.zeros((3, 4), "float32")).numpy()
    b = vae.reparameterize(mu, np.zeros((3, 4), "float32")).numpy()
    assert not np.allclose(a, b)  # the generator advances
    again = build_vae(tiny_encoder(), (12, 12, 1), latent_dim=4, seed=5)
    np.testing.assert_allclose(again.reparameterize(mu, np.zeros((3, 4), "float32")), a)
    # σ → 0 collapses z onto the mean
    tight = vae.reparameterize(mu, np.full((3, 4), -40.0, "float32")).numpy()
    np.testing.assert_allclose(tight, mu, atol=1e-6)


@pytest.mark.slow
def test_one_training_step_is_finite_and_moves_the_encoder(tmp_path):
    encoder = tiny_encoder()
    vae = build_vae(encoder, (12, 12, 1), latent_dim=3, beta=2.0, decoder_width=4)
    vae.compile(keras.optimizers.Adam(1e-2))
    before = [v.numpy().copy() for v in encoder.trainable_variables]
    x = images(8)
    history = vae.fit(x, batch_size=8, epochs=1, verbose=0).history
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss"}
    assert all(np.isfinite(v[0]) for v in history.values())
    assert history["loss"][0] == pytest.approx(
        history["reconstruction_loss"][0] + 2.0 * history["kl_loss"][0], rel=1e-5
    )
    # BCE summed over 144 pixels of random targets: about 144 · 0.69 at the start
    assert 50 < history["reconstruction_loss"][0] < 300
    assert any(
        not np.allclose(b, a.numpy())
        for b, a in zip(before, encoder.trainable_variables, strict=True)
    )

    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VAE)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        vae.get_config(), sort_keys=True
    )
    np.testing.assert_allclose(loaded(x).numpy(), vae(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(loaded.features(x).numpy(), vae.features(x).numpy(), atol=1e-6)
    encoder_path = str(tmp_path / "encoder.keras")
    vae.encoder.save(encoder_path)
    reloaded = keras.saving.load_model(encoder_path)
    np.testing.assert_allclose(reloaded(x).numpy(), encoder(x).numpy(), atol=1e-6)


@pytest.mark.slow
def test_train_step_on_a_dataset_of_image_batches():
    vae = build_vae(
        tiny_encoder(), (12, 12, 1), latent_dim=2, decoder_width=4, reconstruction="mse"
    )
    vae.compile(keras.optimizers.Adam(1e-3))
    ds = tf.data.Dataset.from_tensor_slices(images(4).astype("uint8")).batch(4)
    logs = vae.train_on_batch(next(iter(ds)), return_dict=True)
    # MSE summed over 144 pixels is at most 144
    assert 0 < logs["reconstruction_loss"] < 144 and np.isfinite(logs["kl_loss"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"beta": -1.0}, "beta"),
        ({"reconstruction": "l1"}, "reconstruction"),
        ({"input_shape": (12, 12)}, "input_shape"),
    ],
)
def test_build_vae_bad_arguments(kwargs, match):
    args = {"input_shape": (12, 12, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        build_vae(tiny_encoder(), **args)
