"""NT-Xent: golden values vs a NumPy brute force, limit cases, dtypes, gradients, serialisation."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.ssl.contrastive import NTXentLoss, nt_xent_loss, nt_xent_pair_losses


def brute_force(z1, z2, temperature):
    """Loops over the 2N anchors: the SimCLR definition, written plainly (float64)."""
    u = np.concatenate([z1, z2]).astype(np.float64)
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-6)
    n2 = len(u)
    n = n2 // 2
    losses = []
    for i in range(n2):
        positive = (i + n) % n2
        sims = {j: float(u[i] @ u[j]) / temperature for j in range(n2) if j != i}
        denominator = sum(np.exp(s) for s in sims.values())
        losses.append(-np.log(np.exp(sims[positive]) / denominator))
    return float(np.mean(losses)), np.array(losses)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_matches_brute_force(temperature):
    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(2, 5, 7)).astype("float32")
    want, per_anchor = brute_force(z1, z2, temperature)
    got = float(nt_xent_loss(z1, z2, temperature=temperature))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    pairs = nt_xent_pair_losses(z1, z2, temperature).numpy()
    np.testing.assert_allclose(pairs, 0.5 * (per_anchor[:5] + per_anchor[5:]), rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    dim=st.integers(1, 5),
    temperature=st.floats(0.05, 2.0),
    seed=st.integers(0, 10_000),
)
def test_nt_xent_brute_force_property(n, dim, temperature, seed):
    rng = np.random.default_rng(seed)
    z1, z2 = rng.normal(size=(2, n, dim)).astype("float32")
    want, _ = brute_force(z1, z2, temperature)
    np.testing.assert_allclose(float(nt_xent_loss(z1, z2, temperature)), want, rtol=2e-4, atol=1e-5)


def test_nt_xent_hand_computed_value():
    z = np.eye(2, dtype="float32")  # u = e1, e2, e1, e2; τ = 1: -1 + log(e + 1 + 1) per anchor
    np.testing.assert_allclose(float(nt_xent_loss(z, z, 1.0)), np.log(np.e + 2) - 1, rtol=1e-6)
    # one image: each anchor's only other vector is its positive → loss 0
    np.testing.assert_allclose(
        float(nt_xent_loss([[1.0, 2.0]], [[3.0, -1.0]], 0.5)), 0.0, atol=1e-6
    )


def test_nt_xent_cosine_is_scale_invariant_and_symmetric_in_views():
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(size=(2, 4, 3)).astype("float32")
    base = float(nt_xent_loss(z1, z2))
    np.testing.assert_allclose(float(nt_xent_loss(3.0 * z1, 0.5 * z2)), base, rtol=1e-5)
    np.testing.assert_allclose(float(nt_xent_loss(z2, z1)), base, rtol=1e-5)
    # the loss falls when each positive pair agrees
    assert float(nt_xent_loss(z1, z1 + 0.01 * z2)) < base


def test_nt_xent_identical_and_zero_embeddings_are_finite_with_finite_gradients():
    n = 4
    same = tf.Variable(np.ones((n, 3), "float32"))
    with tf.GradientTape() as tape:
        loss = nt_xent_loss(same, tf.identity(same), 0.5)
    grad = tape.gradient(loss, same)
    # all similarities equal → ℓ = log(2N − 1) for every anchor
    np.testing.assert_allclose(float(loss), np.log(2 * n - 1), rtol=1e-6)
    assert np.all(np.isfinite(grad.numpy()))
    zeros = tf.Variable(np.zeros((n, 3), "float32"))
    with tf.GradientTape() as tape:
        loss = nt_xent_loss(zeros, zeros, 0.1)
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(tape.gradient(loss, zeros).numpy()))


def test_nt_xent_float16_inputs_computed_in_float32():
    rng = np.random.default_rng(3)
    z1, z2 = rng.normal(size=(2, 6, 8)).astype("float16")
    loss = nt_xent_loss(z1, z2, 0.2)
    assert loss.dtype == tf.float32
    want, _ = brute_force(z1.astype("float32"), z2.astype("float32"), 0.2)
    np.testing.assert_allclose(float(loss), want, rtol=1e-4)
    value = NTXentLoss(0.2)(None, np.stack([z1, z2], axis=1))
    np.testing.assert_allclose(float(value), want, rtol=1e-4)


def test_loss_class_matches_function_and_takes_tuples_and_weights():
    rng = np.random.default_rng(4)
    z1, z2 = rng.normal(size=(2, 5, 4)).astype("float32")
    loss = NTXentLoss(temperature=0.3)
    want = float(nt_xent_loss(z1, z2, 0.3))
    np.testing.assert_allclose(float(loss(None, np.stack([z1, z2], axis=1))), want, rtol=1e-6)
    np.testing.assert_allclose(float(loss(np.zeros(5), (z1, z2))), want, rtol=1e-6)
    weights = np.array([1, 0, 0, 0, 0], "float32")
    pairs = nt_xent_pair_losses(z1, z2, 0.3).numpy()
    np.testing.assert_allclose(
        float(loss(None, (z1, z2), sample_weight=weights)), pairs[0] / 5, rtol=1e-5
    )


def test_loss_class_serialises():
    loss = NTXentLoss(temperature=0.25, name="ntx")
    config = loss.get_config()
    clone = NTXentLoss.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(revived, NTXentLoss) and revived.temperature == 0.25


@pytest.mark.parametrize("temperature", [0, -1.0, True, "0.5"])
def test_bad_temperature_raises(temperature):
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(np.ones((2, 3)), np.ones((2, 3)), temperature)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(batch, 2, dim\)"):
        NTXentLoss()(None, np.ones((4, 3, 2), "float32"))
    with pytest.raises(ValueError, match="z1, z2"):
        NTXentLoss()(None, (np.ones((4, 2)), np.ones((4, 2)), np.ones((4, 2))))
    with pytest.raises(ValueError, match="projection batches"):
        nt_xent_loss(np.ones(3), np.ones(3))
