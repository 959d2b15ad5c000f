"""Pretext losses: golden values vs NumPy, masking properties, serialization, bad arguments."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.ssl.loss import (
    ColorizationQuantizedLoss,
    ColorizationRegressionLoss,
    MaskedReconstructionLoss,
    colorization_class_weights,
    colorization_quantized_loss,
    colorization_regression_loss,
    masked_reconstruction_loss,
    pretext_loss,
)


def _inpainting_batch(rng, batch=3, h=6, w=5, c=3, p_hidden=0.3, per_channel=False):
    clean = rng.random((batch, h, w, c)).astype("float32")
    mask = (rng.random((batch, h, w, c if per_channel else 1)) < p_hidden).astype("float32")
    pred = rng.random((batch, h, w, c)).astype("float32")
    return np.concatenate([clean, mask], -1), pred, clean, mask


def _np_masked(clean, mask, pred, kind="l2"):
    mask = np.broadcast_to(mask, pred.shape)
    err = (pred - clean) ** 2 if kind == "l2" else np.abs(pred - clean)
    out = []
    for b in range(pred.shape[0]):
        hidden = mask[b] > 0
        out.append(err[b][hidden].mean() if hidden.any() else 0.0)
    return np.array(out)


# === Masked reconstruction (inpainting) ===


@pytest.mark.parametrize("kind", ["l2", "l1"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_masked_loss_matches_numpy(kind, per_channel):
    rng = np.random.default_rng(1)
    y_true, pred, clean, mask = _inpainting_batch(rng, per_channel=per_channel)
    got = masked_reconstruction_loss(y_true, pred, kind=kind).numpy()
    np.testing.assert_allclose(got, _np_masked(clean, mask, pred, kind), rtol=1e-5)
    # the class averages the per-example values over the batch
    value = MaskedReconstructionLoss(kind)(y_true, pred).numpy()
    np.testing.assert_allclose(value, _np_masked(clean, mask, pred, kind).mean(), rtol=1e-5)


def test_masked_loss_hand_computed():
    # one hidden pixel of 3 channels: errors 0.5, 0.1, 0.2 -> (0.25 + 0.01 + 0.04) / 3 = 0.1
    clean = np.zeros((1, 2, 2, 3), "float32")
    mask = np.zeros((1, 2, 2, 1), "float32")
    mask[0, 1, 0] = 1.0
    pred = np.full((1, 2, 2, 3), 0.9, "float32")
    pred[0, 1, 0] = [0.5, 0.1, 0.2]
    y_true = np.concatenate([clean, mask], -1)
    np.testing.assert_allclose(masked_reconstruction_loss(y_true, pred), [0.1], rtol=1e-6)
    np.testing.assert_allclose(
        masked_reconstruction_loss(y_true, pred, kind="l1"), [0.8 / 3], rtol=1e-6
    )


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["l2", "l1"]))
def test_masked_loss_ignores_visible_pixels(seed, kind):
    rng = np.random.default_rng(seed)
    y_true, pred, _, mask = _inpainting_batch(rng, batch=2, h=4, w=4, c=2)
    visible = np.broadcast_to(mask, pred.shape) == 0
    other = np.where(visible, rng.random(pred.shape).astype("float32") * 10 - 5, pred)
    base = masked_reconstruction_loss(y_true, pred, kind=kind).numpy()
    np.testing.assert_allclose(
        masked_reconstruction_loss(y_true, other, kind=kind), base, rtol=1e-6
    )
    # and the visible pixels of the target do not count either
    y_other = y_true.copy()
    y_other[..., :2] = np.where(visible, 7.0, y_true[..., :2])
    np.testing.assert_allclose(
        masked_reconstruction_loss(y_other, pred, kind=kind), base, rtol=1e-6
    )


def test_masked_loss_empty_mask_is_zero_with_a_finite_gradient():
    y_true = np.concatenate([np.ones((2, 4, 4, 3)), np.zeros((2, 4, 4, 1))], -1)
    pred = tf.Variable(np.full((2, 4, 4, 3), 0.3, "float32"))
    with tf.GradientTape() as tape:
        value = MaskedReconstructionLoss()(y_true, pred)
    grad = tape.gradient(value, pred)
    assert float(value) == 0.0
    assert grad is not None and np.all(np.isfinite(grad)) and np.all(grad.numpy() == 0)


def test_masked_loss_nan_on_visible_pixels_does_not_leak():
    y_true, pred, _, mask = _inpainting_batch(np.random.default_rng(3), batch=1, c=1)
    mask[...] = 0
    mask[0, 0, 0, 0] = 1
    y_true[..., 1:] = mask
    pred = tf.Variable(np.where(mask > 0, pred, np.nan).astype("float32"))
    with tf.GradientTape() as tape:
        value = masked_reconstruction_loss(y_true, pred)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(tape.gradient(value, pred)))


def test_masked_loss_bad_shapes_and_kind():
    with pytest.raises(ValueError, match="kind='l3'"):
        MaskedReconstructionLoss("l3")
    with pytest.raises(ValueError, match=r"y_true.shape=\(1, 2, 2, 6\)"):
        masked_reconstruction_loss(np.zeros((1, 2, 2, 6)), np.zeros((1, 2, 2, 2)))


# === Colorization ===


@pytest.mark.parametrize("kind, delta", [("l2", 0.1), ("huber", 0.1), ("huber", 0.5)])
def test_colorization_regression_matches_numpy(kind, delta):
    rng = np.random.default_rng(4)
    y_true = rng.uniform(-1, 1, (3, 4, 5, 2)).astype("float32")
    y_pred = rng.uniform(-1, 1, (3, 4, 5, 2)).astype("float32")
    d = y_pred - y_true
    if kind == "l2":
        ref = d**2
    else:
        ref = np.where(np.abs(d) <= delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))
    expected = ref.reshape(3, -1).mean(axis=1)
    got = colorization_regression_loss(y_true, y_pred, kind=kind, delta=delta)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    loss = ColorizationRegressionLoss(kind, delta)
    np.testing.assert_allclose(loss(y_true, y_pred), expected.mean(), rtol=1e-5)


def _np_ce(y, logits):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, y[..., None], -1)[..., 0]


@pytest.mark.parametrize("weighted", [False, True])
def test_colorization_quantized_matches_numpy(weighted):
    rng = np.random.default_rng(5)
    q = 6
    y = rng.integers(0, q, (2, 3, 4)).astype("int32")
    logits = rng.normal(size=(2, 3, 4, q)).astype("float32")
    weights = rng.uniform(0.2, 3.0, q).astype("float32") if weighted else np.ones(q, "float32")
    expected = (_np_ce(y, logits) * weights[y]).reshape(2, -1).mean(1)
    got = colorization_quantized_loss(y, logits, class_weights=weights if weighted else None)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    loss = ColorizationQuantizedLoss(class_weights=weights if weighted else None)
    np.testing.assert_allclose(loss(y, logits), expected.mean(), rtol=1e-5)


def test_colorization_quantized_uniform_logits_give_log_q():
    got = colorization_quantized_loss(np.zeros((1, 2, 2), "int32"), np.zeros((1, 2, 2, 4)))
    np.testing.assert_allclose(got, [np.log(4.0)], rtol=1e-6)


def test_class_weights_golden_and_properties():
    np.testing.assert_allclose(colorization_class_weights([3, 1], mix=0.0), [2 / 3, 2], rtol=1e-6)
    np.testing.assert_allclose(colorization_class_weights([5, 1, 0], mix=1.0), [1, 1, 1])
    counts = np.array([50, 30, 15, 5, 0], "float64")
    w = colorization_class_weights(counts, mix=0.5)
    p = counts / counts.sum()
    np.testing.assert_allclose(np.sum(p * w), 1.0, rtol=1e-6)  # expected weight is 1
    assert np.all(np.diff(w) > 0)  # rarer bins weigh more
    # the paper's formula before normalisation: 1 / (0.5 p + 0.5 / Q)
    raw = 1 / (0.5 * p + 0.5 / 5)
    np.testing.assert_allclose(w / w[0], raw / raw[0], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bin_probabilities": [0, 0]}, r"bin_probabilities=\[0, 0\]"),
        ({"bin_probabilities": [1, -1]}, r"bin_probabilities=\[1, -1\]"),
        ({"bin_probabilities": [1, 2], "mix": 1.5}, "mix=1.5"),
        ({"bin_probabilities": [1, 0], "mix": 0.0}, "mix=0"),
    ],
)
def test_class_weights_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        colorization_class_weights(**kwargs)


def test_colorization_losses_bad_arguments():
    with pytest.raises(ValueError, match="kind='l1'"):
        ColorizationRegressionLoss("l1")
    with pytest.raises(ValueError, match="delta=0"):
        ColorizationRegressionLoss("huber", delta=0)
    with pytest.raises(ValueError, match=r"class_weights=\[\[1, 2\]\]"):
        ColorizationQuantizedLoss(class_weights=[[1, 2]])


# === Serialization ===


@pytest.mark.parametrize(
    "loss",
    [
        MaskedReconstructionLoss("l1", name="inpaint"),
        ColorizationRegressionLoss("huber", delta=0.25),
        ColorizationQuantizedLoss(class_weights=[0.5, 1.5, 1.0]),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_losses_serialize_round_trip(loss):
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"] == f"zoo>{type(loss).__name__}"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert type(restored) is type(loss)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(
        loss.get_config(), sort_keys=True
    )


# === pretext_loss ===


def test_pretext_loss_per_task():
    for task in ("rotation", "jigsaw"):
        loss = pretext_loss(task)
        assert isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
        value = loss(np.array([0]), np.zeros((1, 4), "float32"))
        np.testing.assert_allclose(value, np.log(4.0), rtol=1e-6)
    assert isinstance(pretext_loss("denoising"), keras.losses.MeanSquaredError)
    assert isinstance(pretext_loss("denoising", kind="l1"), keras.losses.MeanAbsoluteError)
    assert pretext_loss("inpainting", kind="l1").kind == "l1"
    assert isinstance(pretext_loss("colorization"), ColorizationRegressionLoss)
    assert pretext_loss("colorization", kind="huber", delta=0.2).delta == 0.2
    quantized = pretext_loss("colorization", mode="quantized", class_weights=[1.0, 2.0])
    assert isinstance(quantized, ColorizationQuantizedLoss)
    assert quantized.class_weights == [1.0, 2.0]


@pytest.mark.parametrize(
    "task, kwargs, match",
    [
        ("rotate", {}, "task='rotate'"),
        ("rotation", {"kind": "l2"}, "kind='l2'"),
        ("denoising", {"kind": "huber"}, "kind='huber'"),
        ("colorization", {"mode": "lab"}, "mode='lab'"),
        ("colorization", {"class_weights": [1.0]}, r"class_weights=\[1.0\]"),
        ("colorization", {"mode": "quantized", "delta": 0.1}, "delta=0.1"),
    ],
)
def test_pretext_loss_bad_arguments(task, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pretext_loss(task, **kwargs)
