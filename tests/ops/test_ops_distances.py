"""zoo.ops.distances: golden values against NumPy, safe sqrt gradients, properties."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zoo.ops.distances import (
    DISTANCES,
    cosine_distance,
    l2_distance,
    pairwise_distance,
    rowwise_distance,
    safe_sqrt,
    squared_l2_distance,
)


def numpy_pairwise(a, b, distance):
    diff = a[:, None, :] - b[None, :, :]
    d2 = np.sum(diff**2, axis=-1)
    if distance == "squared_l2":
        return d2
    if distance == "l2":
        return np.sqrt(d2)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-6)
    return 1.0 - an @ bn.T


@pytest.mark.parametrize("distance", DISTANCES)
def test_pairwise_matches_numpy(distance):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(7, 5)).astype("float32")
    b = rng.normal(size=(4, 5)).astype("float32")
    got = np.asarray(pairwise_distance(a, b, distance))
    np.testing.assert_allclose(got, numpy_pairwise(a, b, distance), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("distance", DISTANCES)
def test_self_distance_has_exact_zero_diagonal(distance):
    a = np.random.default_rng(2).normal(size=(6, 3)).astype("float32") * 100
    d = np.asarray(pairwise_distance(a, distance=distance))
    assert np.all(np.diag(d) == 0.0)
    np.testing.assert_allclose(d, d.T, rtol=1e-5, atol=1e-3)


def test_hand_computed_values():
    a = np.array([[0.0, 0.0], [3.0, 4.0]], "float32")
    np.testing.assert_allclose(np.asarray(pairwise_distance(a, distance="l2")), [[0, 5], [5, 0]])
    np.testing.assert_allclose(np.asarray(squared_l2_distance(a[:1], a[1:])), [25.0])
    np.testing.assert_allclose(np.asarray(cosine_distance([[1.0, 0.0]], [[0.0, 2.0]])), [1.0])
    np.testing.assert_allclose(np.asarray(cosine_distance([[1.0, 1.0]], [[-2.0, -2.0]])), [2.0])


def test_safe_sqrt_value_and_gradient_at_zero():
    x = tf.Variable([0.0, 4.0, -1e-9])
    with tf.GradientTape() as tape:
        y = safe_sqrt(x)
    grad = tape.gradient(y, x).numpy()
    np.testing.assert_allclose(y.numpy(), [0.0, 2.0, 0.0])
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, [0.0, 0.25, 0.0])


@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_embeddings_give_finite_gradients(distance):
    e = tf.Variable(np.ones((4, 3), "float32"))
    with tf.GradientTape() as tape:
        d = pairwise_distance(e, distance=distance)
        r = rowwise_distance(e, e, distance)
        total = tf.reduce_sum(d) + tf.reduce_sum(r)
    grad = tape.gradient(total, e).numpy()
    assert np.all(np.isfinite(grad)), grad
    assert np.allclose(d.numpy(), 0.0, atol=1e-5)


def test_half_precision_inputs_are_computed_in_float32():
    a = np.random.default_rng(3).normal(size=(5, 4)).astype("float16")
    d = pairwise_distance(a, distance="l2")
    assert d.dtype == tf.float32
    ref = numpy_pairwise(a.astype("float32"), a.astype("float32"), "l2")
    np.testing.assert_allclose(d.numpy(), ref, rtol=1e-3, atol=1e-3)
    assert l2_distance(a, a).dtype == tf.float32


def test_unknown_distance_raises_with_value():
    with pytest.raises(ValueError, match="manhattan"):
        pairwise_distance(np.zeros((2, 2), "float32"), distance="manhattan")


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float32, (5, 3), elements=st.floats(-10, 10, width=32)),
    st.sampled_from(DISTANCES),
)
def test_pairwise_properties(a, distance):
    d = np.asarray(pairwise_distance(a, distance=distance))
    assert np.all(np.isfinite(d))
    assert np.all(d >= 0.0)
    np.testing.assert_allclose(d, d.T, atol=1e-3 * max(1.0, float(np.abs(d).max())))
    assert np.all(np.diag(d) == 0.0)
    if distance == "l2":  # triangle inequality (with float32 slack)
        slack = 1e-3 * (1.0 + d.max())
        assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :] + slack)
