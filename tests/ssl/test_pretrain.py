"""pretrain_encoder: every method trains the encoder it is given; options are routed right."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.ssl.model import build_ssl_encoder
from zoo.ssl.pretrain import (
    PRETEXT_AUGMENT,
    SSL_METHODS,
    pretext_augmentation,
    pretrain_encoder,
    sample_rows,
    split_task_options,
)


def _images(channels, n=32, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size, channels)).astype(np.uint8)


def test_split_task_options_routes_head_and_loss_options():
    transform, model, loss = split_task_options("jigsaw", {"num_permutations": 10})
    assert transform["num_permutations"] == 10 and model == {"num_permutations": 10, "tiles": False}
    assert loss == {}
    _, model, loss = split_task_options("colorization", {"mode": "quantized", "bin_size": 20})
    from zoo.ssl import ab_bins

    assert model == {"mode": "quantized", "num_bins": len(ab_bins(20))}
    assert loss == {"mode": "quantized"}
    with pytest.raises(ValueError, match="nope"):
        split_task_options("rotation", {"nope": 1})


def test_split_task_options_leaves_the_stream_augmentation_out():
    transform, _, _ = split_task_options("rotation", {"augment": None})
    assert "augment" not in transform


def test_pretext_augmentation_defaults_and_choices():
    assert PRETEXT_AUGMENT == {"rotation": {"flip": True, "max_shift": 0.1}}
    assert callable(pretext_augmentation("rotation"))
    assert pretext_augmentation("jigsaw") is None
    assert pretext_augmentation("rotation", None) is None
    assert pretext_augmentation("rotation", False) is None

    def fn(x):
        return x

    assert pretext_augmentation("denoising", fn) is fn
    # flips only: every output is the image or its mirror
    images = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5, 1)
    out = np.asarray(pretext_augmentation("rotation", {"flip": True, "max_shift": 0.0})(images))
    for x, y in zip(images, out, strict=True):
        assert np.array_equal(y, x) or np.array_equal(y, x[:, ::-1])

    # the default is deterministic for a seed, batch after batch in a tf.data map
    def stream(seed):
        fn = pretext_augmentation("rotation", seed=seed)
        ds = tf.data.Dataset.from_tensor_slices(_images(1, n=24)).batch(8)
        return np.stack([b.numpy() for b in ds.map(lambda x: fn(tf.cast(x, tf.float32)))])

    first = stream(3)
    assert np.array_equal(first, stream(3)) and not np.array_equal(first, stream(4))
    with pytest.raises(ValueError, match="unknown keys \\['zoom'\\]"):
        pretext_augmentation("rotation", {"zoom": 0.2})
    with pytest.raises(ValueError, match="augment='yes'"):
        pretext_augmentation("rotation", "yes")


def test_bad_method_and_budget():
    with pytest.raises(ValueError, match="method='mae'"):
        pretrain_encoder("mae", _images(1))
    with pytest.raises(ValueError, match="minutes=0"):
        pretrain_encoder("rotation", _images(1), minutes=0)


OPTIONS = {
    "jigsaw": {"num_permutations": 8},
    "deepcluster": {"k": 4, "pca_dim": 8, "kmeans_iterations": 3},
    "vae": {"latent_dim": 4},
    "simclr": {"projection_dim": 8},
}


@pytest.mark.slow
@pytest.mark.parametrize("method", SSL_METHODS)
def test_every_method_trains_the_encoder_and_shows_samples(method):
    channels = 3 if method == "colorization" else 1
    images = _images(channels)
    encoder = build_ssl_encoder(images.shape[1:], width=8)
    before = [w.copy() for w in encoder.get_weights()]
    result = pretrain_encoder(
        method, images, encoder=encoder, minutes=0.005, batch_size=8, options=OPTIONS.get(method)
    )
    assert result.encoder is encoder and result.steps >= 1
    assert np.all(np.isfinite(result.history["loss"]))
    moved = [not np.allclose(a, b) for a, b in zip(before, encoder.get_weights(), strict=True)]
    assert any(moved)
    rows, columns, labels = sample_rows(
        result, method, images, options=OPTIONS.get(method), count=3
    )
    assert 1 <= len(rows) <= 3 and all(len(r) >= 1 for r in rows)
    if columns is not None:
        assert all(len(r) == len(columns) for r in rows)
    if labels is not None:
        assert len(labels) == len(rows)


@pytest.mark.slow
def test_on_device_labels_train_the_same_model():
    images = _images(1)
    encoder = build_ssl_encoder(images.shape[1:], width=8)
    before = [w.copy() for w in encoder.get_weights()]
    result = pretrain_encoder(
        "rotation", images, encoder=encoder, minutes=0.005, batch_size=8, on_device=True
    )
    assert type(result.model).__name__ == "OnDevicePretext"
    assert any(not np.allclose(a, b) for a, b in zip(before, encoder.get_weights(), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("on_device", [False, True])
def test_the_stream_augmentation_is_applied_before_labelling(on_device):
    images = _images(1)
    seen = []

    def augment(x):
        seen.append((x.dtype, tuple(x.shape)))  # runs when tf.data traces the map
        return 255.0 - x

    result = pretrain_encoder(
        "rotation",
        images,
        encoder=build_ssl_encoder(images.shape[1:], width=8),
        minutes=0.005,
        batch_size=8,
        on_device=on_device,
        options={"augment": augment},
    )
    assert seen and seen[0] == (tf.float32, (8, 16, 16, 1))
    assert np.all(np.isfinite(result.history["loss"]))


@pytest.mark.slow
def test_deepcluster_takes_an_optimizer_and_counts_its_steps():
    import keras

    images = _images(1, n=48)
    encoder = build_ssl_encoder(images.shape[1:], width=8)
    optimizer = keras.optimizers.SGD(0.01)
    result = pretrain_encoder(
        "deepcluster",
        images,
        encoder=encoder,
        minutes=0.005,
        batch_size=8,
        options={**OPTIONS["deepcluster"], "optimizer": optimizer, "num_samples": 16},
    )
    model = result.model
    assert type(model).__name__ == "DeepCluster" and model.encoder is encoder
    assert model.optimizer is optimizer and result.steps == int(optimizer.iterations) >= 1
    # the measured defaults: augmented batches and a warmed-up head
    assert model.augment_options == {
        "crop_scale": [0.5, 1.0],
        "grayscale_prob": 0.0,
        "blur_prob": 0.0,
    }
    assert np.all(np.isfinite(result.history["head_warmup_loss"]))
    assert {"nmi_previous", "inertia", "nonempty_clusters"} <= set(result.history)
    # sample rows of images that were not trained on: grouped by the head's pseudo-class
    rows, _, labels = sample_rows(result, "deepcluster", images[:5], count=3)
    assert sum(len(r) for r in rows) <= 9 and len(labels) == len(rows) >= 1
