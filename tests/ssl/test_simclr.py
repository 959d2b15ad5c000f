"""SimCLR: batched augmentation (determinism, each step checked), training step, save/load."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.ssl.simclr import SimCLR, build_simclr, crop_and_resize, simclr_augment

OFF = {  # every random step off: the view must equal the input
    "crop_scale": (1.0, 1.0),
    "crop_ratio": (1.0, 1.0),
    "flip": False,
    "jitter_prob": 0.0,
    "grayscale_prob": 0.0,
    "blur_prob": 0.0,
}


def tiny_encoder(shape=(12, 12, 3), name="tiny_encoder"):
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


def images(n=4, shape=(12, 12, 3), seed=0, dtype="uint8"):
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype(dtype)


SEED = tf.constant([3, 7], tf.int64)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_augment_shape_dtype_range_and_determinism(channels, dtype):
    x = images(5, (12, 12, channels), dtype=dtype)
    a = simclr_augment(x, SEED, blur_prob=0.5).numpy()
    b = simclr_augment(x, SEED, blur_prob=0.5).numpy()
    c = simclr_augment(x, tf.constant([3, 8], tf.int64), blur_prob=0.5).numpy()
    assert a.shape == (5, 12, 12, channels) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 255.0 and a.max() > 1.0  # 0–255, not 0–1
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # graph mode (tf.data / the train step) gives the same views as eager
    graph = tf.function(lambda t: simclr_augment(t, SEED, blur_prob=0.5))(x).numpy()
    np.testing.assert_allclose(graph, a, atol=1e-3)


@pytest.mark.slow
def test_augment_compiled_with_xla_gives_the_same_views():
    # Keras compiles fit() with XLA on GPUs by default: the augmentation must compile and draw
    # the same numbers there (stateless draws from uint32 bits, low 32 bits of the seed words)
    x = images(3, dtype="float32")
    seed = tf.constant([2**40 + 5, 9], tf.int64)
    compiled = tf.function(lambda t, s: simclr_augment(t, s, blur_prob=0.5), jit_compile=True)
    np.testing.assert_allclose(
        compiled(x, seed).numpy(), simclr_augment(x, seed, blur_prob=0.5).numpy(), atol=1e-2
    )


def test_crop_and_resize_matches_tf_image():
    rng = np.random.default_rng(0)
    x = rng.random((3, 9, 13, 2)).astype("float32") * 255
    corners = np.sort(rng.random((3, 2, 2)).astype("float32"), axis=1)
    boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], 1)
    for size in [(5, 7), (1, 1), (20, 4)]:
        want = tf.image.crop_and_resize(x, boxes, tf.range(3), size).numpy()
        np.testing.assert_allclose(crop_and_resize(x, boxes, size).numpy(), want, atol=1e-3)


def test_augment_inside_tf_data_and_output_size():
    ds = tf.data.Dataset.from_tensor_slices(images(6)).batch(3)
    ds = ds.enumerate().map(
        lambda i, x: simclr_augment(
            x, tf.random.experimental.stateless_fold_in(SEED, i), output_size=(8, 10)
        )
    )
    shapes = [tuple(batch.shape) for batch in ds]
    assert shapes == [(3, 8, 10, 3), (3, 8, 10, 3)]


def test_augment_with_every_step_off_is_the_identity():
    x = images(3, dtype="float32")
    np.testing.assert_allclose(simclr_augment(x, SEED, **OFF).numpy(), x, atol=1e-3)


def test_flip_mirrors_some_images_and_leaves_the_others():
    x = images(16, dtype="float32")
    out = simclr_augment(x, SEED, **{**OFF, "flip": True}).numpy()
    flipped = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, x, strict=True)]
    kept = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 16


def test_crop_zooms_in():
    # a horizontal ramp: a crop covering a fraction of the width has a smaller value range
    ramp = np.tile(np.linspace(0, 255, 16, dtype="float32")[None, :, None], (16, 1, 3))[None]
    out = simclr_augment(np.repeat(ramp, 4, 0), SEED, **{**OFF, "crop_scale": (0.25, 0.25)})
    spans = out.numpy()[..., 0].max(axis=(1, 2)) - out.numpy()[..., 0].min(axis=(1, 2))
    assert np.all(spans < 0.8 * 255)
    # rows stay identical (crop + resize of a horizontal ramp is a horizontal ramp)
    np.testing.assert_allclose(out.numpy()[:, 0], out.numpy()[:, -1], atol=1e-3)


def test_grayscale_and_brightness_jitter():
    x = images(6, dtype="float32")
    gray = simclr_augment(x, SEED, **{**OFF, "grayscale_prob": 1.0}).numpy()
    np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-4)
    options = {**OFF, "jitter_prob": 1.0, "contrast": 0, "saturation": 0, "hue": 0}
    dark = x * 0.5  # no clipping: the output is the input times one factor per image
    out = simclr_augment(dark, SEED, **options, brightness=0.4).numpy()
    ratio = out / np.maximum(dark, 1e-3)
    mask = dark > 1.0
    for r, m in zip(ratio, mask, strict=True):
        assert np.ptp(r[m]) < 1e-2 and 0.6 - 1e-3 <= r[m].mean() <= 1.4 + 1e-3
    assert np.ptp([r[m].mean() for r, m in zip(ratio, mask, strict=True)]) > 1e-3  # factors differ


def test_blur_keeps_constant_images_and_smooths_noise():
    const = np.full((2, 16, 16, 1), 100.0, "float32")
    out = simclr_augment(const, SEED, **{**OFF, "blur_prob": 1.0}).numpy()
    np.testing.assert_allclose(out, const, atol=1e-3)
    noise = images(2, (16, 16, 1), dtype="float32")
    smooth = simclr_augment(noise, SEED, **{**OFF, "blur_prob": 1.0, "blur_sigma": (1.5, 2.0)})
    assert smooth.numpy().std() < 0.8 * noise.std()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crop_scale": (0.5, 1.5)}, "crop_scale"),
        ({"hue": 0.7}, "hue"),
        ({"jitter_prob": 2}, "jitter_prob"),
    ],
)
def test_augment_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simclr_augment(images(1), SEED, **kwargs)
    with pytest.raises(ValueError, match="seed"):
        simclr_augment(images(1), tf.constant([1, 2, 3]))
    with pytest.raises(ValueError, match="channels"):
        simclr_augment(images(1, (8, 8, 2)), SEED)


def test_views_differ_and_share_the_encoder():
    encoder = tiny_encoder()
    model = build_simclr(encoder, projection_dim=5)
    x = images(4)
    v1, v2 = model.views(x, SEED)
    assert v1.shape == v2.shape == (4, 12, 12, 3)
    assert not np.allclose(v1.numpy(), v2.numpy())
    assert model.encoder is encoder
    assert model(x.astype("float32")).shape == (4, 5)
    encoder_ids = {id(v) for v in encoder.trainable_variables}
    assert encoder_ids <= {id(v) for v in model.trainable_variables}


@pytest.mark.slow
def test_one_training_step_is_finite_and_moves_the_encoder(tmp_path):
    encoder = tiny_encoder()
    model = build_simclr(encoder, projection_dim=5, hidden_dim=8, temperature=0.5)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9))  # slots: the optimizer state round-trips
    before = [v.numpy().copy() for v in encoder.trainable_variables]
    ds = tf.data.Dataset.from_tensor_slices(images(8, dtype="float32")).batch(8)
    history = model.fit(ds, epochs=1, verbose=0, shuffle=False).history
    assert set(history) == {"loss", "contrastive_accuracy"}
    loss = history["loss"][0]
    # 8 images → 16 vectors: a random network sits near log(15)
    assert np.isfinite(loss) and 0.5 < loss < 2 * np.log(15)
    after = encoder.trainable_variables
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after, strict=True))
    assert int(model.optimizer.iterations) == 1
    # evaluate uses fixed views: two evaluations agree
    e1 = model.evaluate(ds, verbose=0, return_dict=True)
    e2 = model.evaluate(ds, verbose=0, return_dict=True)
    assert e1["loss"] == pytest.approx(e2["loss"], rel=1e-6)

    # .keras round trip: config and outputs
    path = str(tmp_path / "simclr.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SimCLR)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    x = images(3, dtype="float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        loaded.encoder(x).numpy(), encoder(x, training=False).numpy(), atol=1e-6
    )
    # the encoder alone round-trips too (what probes and exports use)
    encoder_path = str(tmp_path / "encoder.keras")
    model.encoder.save(encoder_path)
    reloaded = keras.saving.load_model(encoder_path)
    np.testing.assert_allclose(reloaded(x).numpy(), encoder(x).numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"projection_dim": 0}, "projection_dim"),
        ({"temperature": 0.0}, "temperature"),
        ({"augment_options": {"zoom": 1}}, "zoom"),
    ],
)
def test_build_simclr_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_simclr(tiny_encoder(), **kwargs)


def test_build_simclr_rejects_a_non_vector_encoder():
    conv = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="features"):
        build_simclr(conv)
