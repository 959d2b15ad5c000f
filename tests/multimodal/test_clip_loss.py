"""zoo.multimodal.loss: symmetric InfoNCE against a NumPy reference, temperature and its cap."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.multimodal.loss import (
    DEFAULT_LOGIT_SCALE,
    CLIPLoss,
    clip_logits,
    clip_loss,
    clip_loss_from_logits,
)


def reference(a, b, logit_scale, max_scale=100.0):
    """CLIP's pseudo-code (Radford et al. 2021, Fig. 3) in float64 NumPy."""
    scale = min(math.exp(logit_scale), max_scale) if max_scale else math.exp(logit_scale)
    logits = scale * np.asarray(a, np.float64) @ np.asarray(b, np.float64).T
    n = len(logits)

    def ce(rows):
        rows = rows - rows.max(axis=1, keepdims=True)
        log_probs = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        return -log_probs[np.arange(n), np.arange(n)].mean()

    return 0.5 * (ce(logits) + ce(logits.T))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_hand_computed_two_pairs():
    # a = b = identity, scale 1: each row is softmax([1, 0]) -> CE = log(1 + e^-1)
    eye = np.eye(2, dtype=np.float32)
    value = float(clip_loss(eye, eye, logit_scale=0.0))
    assert value == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


@given(
    st.integers(2, 12),
    st.integers(2, 9),
    st.floats(-2.0, 6.0),
    st.integers(0, 2**31 - 1),
)
@settings(max_examples=60, deadline=None)
def test_matches_numpy_reference(batch, dim, logit_scale, seed):
    rng = np.random.default_rng(seed)
    a = unit(rng.normal(size=(batch, dim))).astype(np.float32)
    b = unit(rng.normal(size=(batch, dim))).astype(np.float32)
    got = float(clip_loss(a, b, logit_scale))
    assert got == pytest.approx(reference(a, b, logit_scale), rel=1e-4, abs=1e-4)


def test_temperature_scales_the_logits_and_is_capped_at_100():
    rng = np.random.default_rng(0)
    a, b = unit(rng.normal(size=(6, 4))), unit(rng.normal(size=(6, 4)))
    for scale in (DEFAULT_LOGIT_SCALE, 0.0, 1.0):
        np.testing.assert_allclose(
            np.asarray(clip_logits(a, b, scale)), math.exp(scale) * a @ b.T, rtol=1e-5, atol=1e-5
        )
    capped = np.asarray(clip_logits(a, b, math.log(1000.0)))
    np.testing.assert_allclose(capped, 100.0 * a @ b.T, rtol=1e-5, atol=1e-4)
    uncapped = np.asarray(clip_logits(a, b, math.log(1000.0), max_scale=None))
    np.testing.assert_allclose(uncapped, 1000.0 * a @ b.T, rtol=1e-5, atol=1e-3)
    # the temperature changes the loss: same embeddings, different values, both = reference
    values = [float(clip_loss(a, b, s)) for s in (0.0, DEFAULT_LOGIT_SCALE)]
    assert values[0] != pytest.approx(values[1], rel=1e-3)
    assert values[1] == pytest.approx(reference(a, b, DEFAULT_LOGIT_SCALE), rel=1e-4)


def test_symmetric_and_asymmetric_parts():
    rng = np.random.default_rng(1)
    a, b = unit(rng.normal(size=(5, 3))), unit(rng.normal(size=(5, 3)))
    # swapping the modalities transposes the logits: the symmetric loss is unchanged
    assert float(clip_loss(a, b, 2.0)) == pytest.approx(float(clip_loss(b, a, 2.0)), rel=1e-6)
    # per-pair values average to the loss
    logits = np.asarray(clip_logits(a, b, 2.0))
    per_pair = np.asarray(clip_loss_from_logits(logits, reduce=False))
    assert per_pair.shape == (5,)
    assert per_pair.mean() == pytest.approx(float(clip_loss_from_logits(logits)), rel=1e-6)


def test_large_scale_is_finite_and_perfect_pairs_give_near_zero():
    a = np.eye(8, dtype=np.float32)
    assert float(clip_loss(a, a, math.log(100.0))) < 1e-6
    big = np.asarray(clip_loss_from_logits(np.full((4, 4), 1e4, np.float32)))
    assert np.isfinite(big) and big == pytest.approx(math.log(4), abs=2e-3)  # float32 at 1e4


def test_logit_scale_gets_a_gradient():
    rng = np.random.default_rng(2)
    a = tf.constant(unit(rng.normal(size=(6, 4))), tf.float32)
    b = tf.constant(unit(rng.normal(size=(6, 4))), tf.float32)
    scale = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = clip_loss(a, b, scale)
    grad = tape.gradient(loss, scale)
    # finite difference check
    eps = 1e-3
    numeric = (reference(a, b, 1.0 + eps) - reference(a, b, 1.0 - eps)) / (2 * eps)
    assert float(grad) == pytest.approx(numeric, rel=1e-2, abs=1e-4)


def test_loss_class_ignores_y_true_and_round_trips():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(7, 7)).astype(np.float32) * 3
    loss = CLIPLoss()
    value = float(loss(np.zeros(7), logits))
    assert value == pytest.approx(float(clip_loss_from_logits(logits)), rel=1e-6)
    assert float(loss(np.ones(7), logits)) == pytest.approx(value, rel=1e-6)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, CLIPLoss) and clone.name == "clip_loss"
    assert float(clone(np.zeros(7), logits)) == pytest.approx(value, rel=1e-6)
