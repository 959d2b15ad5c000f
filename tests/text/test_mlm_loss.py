"""Masked-token loss: golden value, only selected positions count, zero selection, Keras path."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from zoo.text.loss import MaskedTokenLoss, masked_token_loss


def numpy_reference(targets, logits, weights):
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0]
    return (ce * weights).sum() / weights.sum()


def sample(seed=0, batch=3, length=5, vocab=7):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, vocab, size=(batch, length))
    logits = rng.normal(size=(batch, length, vocab)).astype("float32")
    weights = (rng.random((batch, length)) < 0.4).astype("float32")
    weights[0, 0] = 1.0
    return targets, logits, weights


def test_golden_value_against_numpy():
    targets, logits, weights = sample()
    value = float(masked_token_loss(targets, logits, weights))
    np.testing.assert_allclose(value, numpy_reference(targets, logits, weights), rtol=1e-5)
    # Hand-computed: uniform logits over 4 tokens -> ln 4 at each selected position.
    uniform = masked_token_loss([[1, 2]], np.zeros((1, 2, 4), "float32"), [[1.0, 0.0]])
    np.testing.assert_allclose(float(uniform), np.log(4.0), rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(-50, 50))
def test_changing_logits_at_unselected_positions_changes_nothing(seed, scale):
    targets, logits, weights = sample(seed)
    other = logits.copy()
    other[weights == 0] = (
        np.random.default_rng(seed + 1).normal(size=other[weights == 0].shape) * scale
    )
    a = float(masked_token_loss(targets, logits, weights))
    b = float(masked_token_loss(targets, other, weights))
    assert a == pytest.approx(b, rel=1e-6, abs=1e-6)
    # The Keras loss with sample weights: the same.
    c = float(MaskedTokenLoss()(targets, other, sample_weight=weights))
    assert c == pytest.approx(a, rel=1e-5)


def test_changing_a_selected_position_changes_the_loss():
    targets, logits, weights = sample()
    other = logits.copy()
    other[0, 0, targets[0, 0]] += 5.0
    assert float(masked_token_loss(targets, other, weights)) < float(
        masked_token_loss(targets, logits, weights)
    )


def test_no_selected_position_gives_zero_and_finite_gradient():
    targets, logits, _ = sample()
    zeros = np.zeros(targets.shape, "float32")
    assert float(masked_token_loss(targets, logits, zeros)) == 0.0
    assert float(MaskedTokenLoss()(targets, logits, sample_weight=zeros)) == 0.0
    import tensorflow as tf

    z = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = masked_token_loss(targets, z, zeros)
    grad = tape.gradient(loss, z)
    assert np.all(np.isfinite(grad.numpy())) and np.all(grad.numpy() == 0)


def test_mixed_precision_logits_are_cast_to_float32():
    targets, logits, weights = sample()
    half = ops.cast(logits, "float16")
    value = masked_token_loss(targets, half, weights)
    assert value.dtype == "float32"
    np.testing.assert_allclose(float(value), numpy_reference(targets, logits, weights), rtol=2e-3)


def test_fit_uses_the_weights_as_sample_weights():
    """In ``fit``, the logged loss equals the mean over selected positions only."""
    targets, _, weights = sample(batch=4, length=6, vocab=5)
    inputs = keras.Input((6,), dtype="int32")
    logits = keras.layers.Embedding(5, 5, embeddings_initializer="uniform")(inputs)
    model = keras.Model(inputs, logits)
    model.compile("sgd", loss=MaskedTokenLoss())
    ids = targets.astype("int32")
    expected = numpy_reference(targets, ops.convert_to_numpy(model(ids)), weights)
    logged = model.evaluate(ids, targets, sample_weight=weights, batch_size=4, verbose=0)
    np.testing.assert_allclose(logged, expected, rtol=1e-5)


def test_serialization():
    loss = MaskedTokenLoss(name="mlm_loss")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedTokenLoss)
    assert restored.get_config() == loss.get_config()
    assert restored.reduction == "mean_with_sample_weight"
