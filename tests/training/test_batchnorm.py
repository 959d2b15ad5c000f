import keras
import numpy as np
import pytest

from zoo.training.batchnorm import batchnorm_layers, recalibrate_batchnorm


def _model(momentum=0.99):
    inner = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(momentum=momentum),
        ]
    )
    inputs = keras.Input((3,))
    x = inner(inputs)
    outputs = keras.layers.BatchNormalization(name="outer_bn")(keras.layers.Dense(2)(x))
    return keras.Model(inputs, outputs)


def test_finds_nested_layers():
    assert len(batchnorm_layers(_model())) == 2


def test_moving_statistics_equal_the_mean_of_batch_statistics():
    keras.utils.set_random_seed(0)
    model = _model()
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(96, 3)).astype("float32")
    weights = [w.numpy().copy() for w in model.trainable_weights]
    assert recalibrate_batchnorm(model, x, batch_size=32) == 2
    inner_bn = batchnorm_layers(model)[0]
    dense = model.layers[1].layers[0]
    h = x @ dense.kernel.numpy() + dense.bias.numpy()
    chunks = [h[i : i + 32] for i in range(0, 96, 32)]
    np.testing.assert_allclose(
        inner_bn.moving_mean.numpy(), np.mean([c.mean(0) for c in chunks], 0), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        inner_bn.moving_variance.numpy(),
        np.mean([c.var(0) for c in chunks], 0),
        rtol=1e-4,
        atol=1e-5,
    )
    # trainable weights untouched, momentum restored
    for before, after in zip(weights, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    assert inner_bn.momentum == 0.99


def test_frozen_batchnorm_is_recalibrated_and_stays_frozen():
    model = _model()
    bn = batchnorm_layers(model)[0]
    bn.trainable = False
    before = bn.moving_mean.numpy().copy()
    recalibrate_batchnorm(model, np.full((8, 3), 5.0, "float32"))
    assert not np.allclose(bn.moving_mean.numpy(), before)
    assert bn.trainable is False


def test_no_batchnorm_and_bad_input():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert recalibrate_batchnorm(plain, np.zeros((4, 3))) == 0
    with pytest.raises(ValueError, match="at least one image"):
        recalibrate_batchnorm(_model(), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        recalibrate_batchnorm(_model(), np.zeros((4, 3)), batch_size=0)
