"""DCGAN: loss golden values, shapes and ranges, one training step, save/load, pretraining in one
call, the sample grid, class coverage, argument checks, and that it learns."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.ssl.gan import (
    GAN,
    GANSampleGrid,
    build_gan,
    class_coverage,
    discriminator_loss,
    generator_loss,
)
from zoo.ssl.model import build_ssl_encoder
from zoo.ssl.pretrain import SSL_METHODS, pretrain_encoder


def tiny_encoder(shape=(12, 12, 1), width=4):
    """The zoo's encoder at a tiny width: images 0–255 → (B, D) features (D = 2·width at 12 px)."""
    return build_ssl_encoder(shape, width=width)


def images(n=8, shape=(12, 12, 1), seed=0):
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype("float32")


def tiny_gan(shape=(12, 12, 1), **kwargs):
    options = {"latent_dim": 8, "generator_width": 4, **kwargs}
    return build_gan(tiny_encoder(shape), shape, **options)


def _bce(logits, target):
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


# === Losses ===


def test_losses_match_the_cross_entropy_formulas():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=7) * 3, rng.normal(size=7) * 3
    want_d = _bce(real, 1.0).mean() + _bce(fake, 0.0).mean()
    np.testing.assert_allclose(discriminator_loss(real, fake), want_d, rtol=1e-5)
    smoothed = _bce(real, 0.9).mean() + _bce(fake, 0.0).mean()
    np.testing.assert_allclose(discriminator_loss(real, fake, 0.1), smoothed, rtol=1e-5)
    np.testing.assert_allclose(generator_loss(fake), _bce(fake, 1.0).mean(), rtol=1e-5)
    # D = ½ everywhere: 2 ln 2 and ln 2
    assert float(discriminator_loss([0.0], [0.0])) == pytest.approx(2 * np.log(2))
    assert float(generator_loss([0.0, 0.0])) == pytest.approx(np.log(2))
    # stable for saturated logits: a fooled discriminator costs |logit|
    assert float(generator_loss([-200.0])) == pytest.approx(200.0)
    assert float(discriminator_loss([200.0], [-200.0])) == pytest.approx(0.0, abs=1e-6)


# === Model ===


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3), (12, 20, 3)])
def test_shapes_ranges_and_features(shape):
    gan = tiny_gan(shape)
    samples = gan.generate(3, seed=1)
    assert samples.shape == (3, *shape) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 255.0
    np.testing.assert_array_equal(samples, gan.generate(3, seed=1))
    assert gan(samples).shape == (3, 1)
    # the discriminator's features are the encoder's output
    x = images(2, shape)
    features = gan.encoder(x).numpy()
    assert features.shape == (2, gan.encoder.output_shape[-1])
    np.testing.assert_allclose(gan(x).numpy(), gan.head(features).numpy(), atol=1e-5)
    assert gan.generator.output_shape == (None, *shape)


@pytest.mark.slow
def test_one_training_step_is_finite_and_the_keras_file_round_trips(tmp_path):
    gan = tiny_gan(label_smoothing=0.1)
    gan.compile()
    assert float(gan.optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(gan.optimizer.beta_1) == pytest.approx(0.5)
    # the generator trains 5x faster than the discriminator
    assert float(gan.generator_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(gan.generator_optimizer.beta_1) == pytest.approx(0.5)
    encoder_before = [v.numpy().copy() for v in gan.encoder.trainable_variables]
    generator_before = [v.numpy().copy() for v in gan.generator.trainable_variables]
    x = images(8)
    history = gan.fit(x, batch_size=8, epochs=1, verbose=0).history
    assert set(history) == {"loss", "d_loss", "g_loss", "d_real_acc", "d_fake_acc"}
    assert history["loss"] == history["d_loss"]  # the encoder's objective, as every method logs
    assert all(np.isfinite(v[0]) for v in history.values())
    # one step from a random discriminator: both losses near their D = ½ values
    assert 0.3 < history["d_loss"][0] < 5.0 and 0.1 < history["g_loss"][0] < 5.0
    for before, variables in (
        (encoder_before, gan.encoder.trainable_variables),
        (generator_before, gan.generator.trainable_variables),
    ):
        assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, variables, strict=True))

    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, GAN)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        gan.get_config(), sort_keys=True
    )
    np.testing.assert_allclose(loaded(x).numpy(), gan(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(loaded.generate(4, seed=3), gan.generate(4, seed=3), atol=1e-4)
    np.testing.assert_allclose(loaded.encoder(x).numpy(), gan.encoder(x).numpy(), atol=1e-5)
    # both optimizers come back with their state, so training resumes
    assert int(loaded.optimizer.iterations) == 1
    assert int(loaded.generator_optimizer.iterations) == 1
    logs = loaded.train_on_batch(x, return_dict=True)
    assert np.isfinite(logs["d_loss"]) and np.isfinite(logs["g_loss"])


@pytest.mark.slow
def test_train_step_takes_a_dataset_of_image_batches():
    gan = tiny_gan()
    gan.compile(keras.optimizers.Adam(5e-4))  # the generator keeps its own default
    assert float(gan.optimizer.learning_rate) == pytest.approx(5e-4)
    assert float(gan.generator_optimizer.learning_rate) == pytest.approx(1e-3)
    ds = tf.data.Dataset.from_tensor_slices(images(4).astype("uint8")).batch(4)
    logs = gan.train_on_batch(next(iter(ds)), return_dict=True)
    assert np.isfinite(logs["d_loss"]) and np.isfinite(logs["g_loss"])
    assert 0.0 <= logs["d_real_acc"] <= 1.0 and 0.0 <= logs["d_fake_acc"] <= 1.0


def test_training_before_compile_raises():
    with pytest.raises(ValueError, match="compile"):
        tiny_gan().train_step(images(2))


# === Pretraining in one call ===


@pytest.mark.slow
def test_pretrain_encoder_returns_the_discriminator_feature_tower(monkeypatch):
    import zoo.training.batchnorm as batchnorm

    assert "gan" in SSL_METHODS
    calls = []
    real = batchnorm.recalibrate_batchnorm
    monkeypatch.setattr(
        batchnorm,
        "recalibrate_batchnorm",
        lambda model, x, **kw: calls.append((model, len(x))) or real(model, x, **kw),
    )
    x = images(16).astype("uint8")
    result = pretrain_encoder(
        "gan",
        x,
        minutes=5.0,  # never reached: one epoch of two steps
        batch_size=8,
        max_epochs=1,
        encoder_options={"width": 4},
        options={"latent_dim": 8, "generator_width": 4},
    )
    assert isinstance(result.model, GAN) and result.model.encoder is result.encoder
    assert result.encoder(x[:3].astype("float32")).shape == (3, 8)
    assert result.steps == 2 and set(result.history) >= {"d_loss", "g_loss"}
    assert all(np.isfinite(v).all() for v in result.history.values())
    # the paper's optimizer for the discriminator unless a rate is given, 5x for the generator
    assert float(result.model.optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(result.model.optimizer.beta_1) == pytest.approx(0.5)
    assert float(result.model.generator_optimizer.learning_rate) == pytest.approx(1e-3)
    # batch-norm statistics re-estimated on the real images
    assert calls == [(result.encoder, 16)]


# === Sample grid ===


@pytest.mark.slow
def test_sample_grid_writes_pngs_every_few_epochs_and_at_the_end(tmp_path):
    gan = tiny_gan()
    gan.compile()
    grid = GANSampleGrid(tmp_path / "samples", every=2, num_images=6, seed=1)
    gan.fit(images(8), batch_size=8, epochs=3, verbose=0, callbacks=[grid])
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == ["samples_epoch002.png", "samples_epoch003.png"]
    assert [p.name for p in grid.paths] == names
    for path in grid.paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


# === Class coverage ===


def test_class_coverage_counts_the_predicted_classes():
    # a hand-made classifier: the class is the image's mean pixel // 50 (4 classes)
    def classifier(batch):
        means = np.asarray(batch).reshape(len(batch), -1).mean(axis=1)
        return np.eye(4)[np.minimum(means // 50, 3).astype(int)]

    levels = [10.0] * 5 + [60.0] * 3 + [110.0] * 2  # classes 0, 1, 2; none of class 3
    samples = np.stack([np.full((4, 4, 1), v, np.float32) for v in levels])
    shares = class_coverage(samples, classifier, batch_size=3)  # batches of 3, 3, 3, 1
    np.testing.assert_allclose(shares, [0.5, 0.3, 0.2, 0.0])
    np.testing.assert_allclose(class_coverage(samples, classifier, num_classes=4), shares)
    assert shares.sum() == pytest.approx(1.0)


def test_class_coverage_with_a_keras_classifier():
    inputs = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(inputs)
    # logits (−mean, +mean): class 1 for bright images, class 0 for dark ones
    mean = keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)(flat)
    logits = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant([[-1.0, 1.0]]), bias_initializer="zeros"
    )(keras.layers.Rescaling(1 / 16, offset=-127.5)(mean))
    classifier = keras.Model(inputs, logits)
    samples = np.concatenate([np.full((3, 4, 4, 1), 20.0), np.full((1, 4, 4, 1), 240.0)])
    np.testing.assert_allclose(class_coverage(samples, classifier), [0.75, 0.25])


# === Argument checks ===


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"generator_width": 0}, "generator_width"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"seed": "0"}, "seed"),
        ({"input_shape": (12, 12)}, "input_shape"),
        ({"input_shape": (16, 16, 1)}, "encoder takes images of shape"),
    ],
)
def test_build_gan_bad_arguments(kwargs, match):
    args = {"input_shape": (12, 12, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        build_gan(tiny_encoder(), **args)


def test_bad_arguments_of_the_coverage_and_the_grid():
    def two_classes(batch):
        return np.zeros((len(batch), 2))

    with pytest.raises(ValueError, match="non-empty"):
        class_coverage(np.zeros((0, 4, 4, 1)), two_classes)
    with pytest.raises(ValueError, match="callable"):
        class_coverage(np.zeros((2, 4, 4, 1)), "classifier")
    with pytest.raises(ValueError, match=r"\(batch, num_classes\)"):
        class_coverage(np.zeros((2, 4, 4, 1)), lambda b: np.zeros(len(b)))
    with pytest.raises(ValueError, match="num_classes=3"):
        class_coverage(np.zeros((2, 4, 4, 1)), two_classes, num_classes=3)
    with pytest.raises(ValueError, match="every"):
        GANSampleGrid("unused", every=0)
    with pytest.raises(ValueError, match="method must be one of"):
        pretrain_encoder("gans", images(2))


# === Learning ===


def _two_mode_images(n, seed):
    """12×12 images: a bright (200) top or bottom half on a dark (30) background, plus noise."""
    rng = np.random.default_rng(seed)
    x = np.full((n, 12, 12, 1), 30.0)
    top = rng.random(n) < 0.5
    x[top, :6] = 200.0
    x[~top, 6:] = 200.0
    return np.clip(x + rng.normal(0, 10, x.shape), 0, 255).astype("float32")


def _halves(images):
    """Per image: (top − bottom mean) / the image's pixel std, a contrast that no brightness or
    scale change alters (about ±2 for the data above, near 0 for a featureless image)."""
    diff = images[:, :6].mean(axis=(1, 2, 3)) - images[:, 6:].mean(axis=(1, 2, 3))
    return diff / (images.reshape(len(images), -1).std(axis=1) + 1e-3)


@pytest.mark.slow
def test_a_few_hundred_steps_learn_the_data():
    keras.utils.set_random_seed(0)
    real = _two_mode_images(256, 0)
    gan = build_gan(tiny_encoder(width=16), (12, 12, 1), latent_dim=16, generator_width=16)
    gan.compile()  # the defaults: Adam(2e-4, 0.5) for D, Adam(1e-3, 0.5) for G
    before = _halves(gan.generate(256, seed=1))
    ds = tf.data.Dataset.from_tensor_slices(real).shuffle(256, seed=0).repeat().batch(32)
    history = gan.fit(ds, steps_per_epoch=300, epochs=1, verbose=0, shuffle=False).history
    assert all(np.isfinite(v).all() for v in history.values())
    after = _halves(gan.generate(256, seed=1))
    # the samples take the data's structure (one half bright: |contrast| about 2) ...
    assert np.median(np.abs(before)) < 0.4
    assert np.median(np.abs(after)) > 0.8
    # ... in both of its modes (top and bottom), not one
    assert 0.2 < np.mean(after > 0) < 0.8
