"""Metric-learning losses: golden values vs NumPy brute force, failure modes, serialization."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.metric_learning.loss import (
    BatchContrastiveLoss,
    ContrastiveLoss,
    TripletLoss,
    TripletMarginLoss,
    batch_contrastive_loss,
    batch_semi_hard_triplet_loss,
    contrastive_loss,
    triplet_loss,
    triplet_margin_loss,
)

MODES = ("all", "hard", "semi-hard")
DISTANCES = ("squared_l2", "l2", "cosine")


# === NumPy brute force over all triplets ===


def np_distances(e, distance):
    e = e.astype(np.float64)
    d2 = np.sum((e[:, None] - e[None]) ** 2, axis=-1)
    if distance == "squared_l2":
        return d2
    if distance == "l2":
        return np.sqrt(d2)
    n = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    d = np.clip(1.0 - n @ n.T, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    return d


def brute_force(labels, e, margin, mining, distance, fallback="hardest"):
    """Loops over every (anchor, positive, negative): the definitions, written plainly."""
    d = np_distances(e, distance)
    n = len(labels)
    if mining == "all":
        terms = []
        for a in range(n):
            for p in range(n):
                if p == a or labels[p] != labels[a]:
                    continue
                for q in range(n):
                    if labels[q] == labels[a]:
                        continue
                    t = max(0.0, margin + d[a, p] - d[a, q])
                    if t > 1e-16:
                        terms.append(t)
        return float(np.mean(terms)) if terms else 0.0
    if mining == "hard":
        terms = []
        for a in range(n):
            pos = [d[a, p] for p in range(n) if p != a and labels[p] == labels[a]]
            neg = [d[a, q] for q in range(n) if labels[q] != labels[a]]
            if pos and neg:
                terms.append(max(0.0, margin + max(pos) - min(neg)))
        return float(np.mean(terms)) if terms else 0.0
    terms = []  # semi-hard
    for a in range(n):
        neg = [d[a, q] for q in range(n) if labels[q] != labels[a]]
        if not neg:
            continue
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [v for v in neg if v > d[a, p]]
            if farther:
                chosen = min(farther)
            else:
                chosen = min(neg) if fallback == "hardest" else max(neg)
            terms.append(max(0.0, margin + d[a, p] - chosen))
    return float(np.mean(terms)) if terms else 0.0


def batch(seed, n=12, dim=4, classes=3):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    e = rng.normal(size=(n, dim)).astype("float32")
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return labels, e


@pytest.mark.parametrize("mining", MODES)
@pytest.mark.parametrize("distance", DISTANCES)
def test_golden_against_brute_force(mining, distance):
    for seed in range(3):
        labels, e = batch(seed)
        for margin in (0.1, 0.5, 2.0):
            got = float(triplet_loss(labels, e, margin, mining, distance))
            want = brute_force(labels, e, margin, mining, distance)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fallback", ["hardest", "easiest"])
def test_semi_hard_fallback_modes(fallback):
    labels, e = batch(5, n=16, classes=4)
    got = float(batch_semi_hard_triplet_loss(labels, e, 0.3, "l2", fallback))
    np.testing.assert_allclose(got, brute_force(labels, e, 0.3, "semi-hard", "l2", fallback), 1e-4)


def test_semi_hard_fallback_differs_when_no_negative_is_farther():
    # anchor 0 and positive 1 far apart; negative 2 close, negative 3 farther but still closer
    labels = np.array([0, 0, 1, 1])
    e = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0], [3.0, 0.0]], "float32")
    hardest = float(batch_semi_hard_triplet_loss(labels, e, 1.0, "l2", "hardest"))
    easiest = float(batch_semi_hard_triplet_loss(labels, e, 1.0, "l2", "easiest"))
    assert hardest > easiest
    np.testing.assert_allclose(hardest, brute_force(labels, e, 1.0, "semi-hard", "l2"), 1e-5)


def test_semi_hard_strictly_farther_on_ties():
    # the negative at exactly d_ap is not semi-hard: the next farther one is chosen
    labels = np.array([0, 0, 1, 1])
    e = np.array([[0.0], [1.0], [-1.0], [1.5]], "float32")
    got = float(batch_semi_hard_triplet_loss(labels, e, 1.0, "l2"))
    np.testing.assert_allclose(got, brute_force(labels, e, 1.0, "semi-hard", "l2"), 1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(2, 10),
    st.sampled_from(MODES),
    st.sampled_from(DISTANCES),
    st.floats(0.0, 1.5),
)
def test_brute_force_property(seed, n, mining, distance, margin):
    labels, e = batch(seed, n=n, dim=3, classes=3)
    got = float(triplet_loss(labels, e, margin, mining, distance))
    np.testing.assert_allclose(got, brute_force(labels, e, margin, mining, distance), 1e-4, 1e-5)


# === Known failure modes ===


@pytest.mark.parametrize("mining", MODES)
def test_anchor_without_positive_is_finite(mining):
    labels = np.array([0, 0, 1, 2])  # classes 1 and 2 have no positive
    e = tf.Variable(batch(0, n=4)[1])
    with tf.GradientTape() as tape:
        value = triplet_loss(labels, e, 0.5, mining)
    grad = tape.gradient(value, e)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(
        float(value), brute_force(labels, e.numpy(), 0.5, mining, "squared_l2"), 1e-5
    )


@pytest.mark.parametrize("mining", MODES)
def test_no_positive_at_all_gives_zero(mining):
    labels = np.arange(5)
    e = tf.Variable(batch(1, n=5)[1])
    with tf.GradientTape() as tape:
        value = triplet_loss(labels, e, 0.5, mining)
    assert float(value) == 0.0
    assert np.all(tape.gradient(value, e).numpy() == 0.0)


@pytest.mark.parametrize("mining", MODES)
@pytest.mark.parametrize("distance", DISTANCES)
def test_identical_embeddings_finite_gradient(mining, distance):
    labels = np.array([0, 0, 1, 1, 2, 2])
    e = tf.Variable(np.tile([[0.6, 0.8]], (6, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        value = triplet_loss(labels, e, 0.5, mining, distance)
    grad = tape.gradient(value, e).numpy()
    np.testing.assert_allclose(float(value), 0.5, rtol=1e-5)  # every term is exactly the margin
    assert np.all(np.isfinite(grad)), grad


@pytest.mark.parametrize("mining", MODES)
def test_one_class_batch_is_zero_and_finite(mining):
    labels = np.zeros(6, int)
    e = tf.Variable(batch(2, n=6)[1])
    with tf.GradientTape() as tape:
        value = triplet_loss(labels, e, 0.5, mining, "l2")
    grad = tape.gradient(value, e).numpy()
    assert float(value) == 0.0
    assert np.all(np.isfinite(grad)) and np.all(grad == 0.0)


@pytest.mark.parametrize("mining", MODES)
def test_float16_inputs_under_mixed_precision(mining):
    labels, e = batch(3, n=16, dim=8, classes=4)
    reference = float(triplet_loss(labels, e, 0.3, mining, "l2"))
    previous = keras.config.dtype_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        loss = TripletLoss(margin=0.3, mining=mining, distance="l2")
        e16 = tf.Variable(e.astype("float16"))
        with tf.GradientTape() as tape:
            value = loss(labels, e16)
        grad = tape.gradient(value, e16)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert value.dtype == tf.float32
    assert grad.dtype == tf.float16 and np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(float(value), reference, rtol=2e-2, atol=2e-3)


def test_float16_contrastive_and_margin_losses_are_float32():
    a = np.random.default_rng(0).normal(size=(4, 3)).astype("float16")
    assert contrastive_loss([0, 1, 0, 1], (a, a[::-1])).dtype == tf.float32
    assert triplet_margin_loss(a, a, a[::-1]).dtype == tf.float32


def test_semi_hard_has_no_python_loop_over_batch_and_is_traceable():
    labels, e = batch(4, n=32, classes=4)
    fn = tf.function(lambda y, x: triplet_loss(y, x, 0.2, "semi-hard"))
    got = float(fn(tf.constant(labels), tf.constant(e)))
    np.testing.assert_allclose(got, brute_force(labels, e, 0.2, "semi-hard", "squared_l2"), 1e-4)
    small, large = batch(4, n=8, classes=4), batch(4, n=96, classes=4)
    ops_small = fn.get_concrete_function(*map(tf.constant, small)).graph.get_operations()
    ops_large = fn.get_concrete_function(*map(tf.constant, large)).graph.get_operations()
    assert abs(len(ops_small) - len(ops_large)) <= 10  # the graph does not grow with the batch
    assert not {"While", "StatelessWhile"} & {op.type for op in ops_large}


# === Contrastive ===


def test_contrastive_squared_formula_by_hand():
    # y = 0 similar: ½ D²; y = 1 dissimilar: ½ max(0, m - D²)
    got = contrastive_loss([0, 1, 1], [0.5, 0.5, 2.0], margin=1.0).numpy()
    np.testing.assert_allclose(got, [0.125, 0.375, 0.0])


def test_contrastive_hadsell_variant_by_hand():
    got = contrastive_loss([0, 1, 1], [0.5, 0.5, 2.0], margin=1.0, variant="hadsell").numpy()
    np.testing.assert_allclose(got, [0.125, 0.125, 0.0])


def test_contrastive_similar_label_one_flips_convention():
    a = contrastive_loss([0, 1], [0.5, 0.5]).numpy()
    b = contrastive_loss([1, 0], [0.5, 0.5], similar_label=1).numpy()
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("variant", ["squared", "hadsell"])
def test_contrastive_accepts_distance_or_embedding_pair(variant):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 6, 4)).astype("float32")
    y = np.array([0, 1, 0, 1, 1, 0], "float32")
    d = np.sqrt(np.sum((a - b) ** 2, axis=1))
    from_distance = contrastive_loss(y, d, 2.0, variant).numpy()
    from_tuple = contrastive_loss(y, (a, b), 2.0, variant).numpy()
    from_stack = contrastive_loss(y, np.stack([a, b], 1), 2.0, variant).numpy()
    if variant == "squared":
        want = 0.5 * (1 - y) * d**2 + 0.5 * y * np.maximum(0, 2.0 - d**2)
    else:
        want = 0.5 * (1 - y) * d**2 + 0.5 * y * np.maximum(0, 2.0 - d) ** 2
    for got in (from_distance, from_tuple, from_stack):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    cls = ContrastiveLoss(margin=2.0, variant=variant)
    np.testing.assert_allclose(float(cls(y, (a, b))), want.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(cls(y, d[:, None])), want.mean(), rtol=1e-5)


@pytest.mark.parametrize("variant", ["squared", "hadsell"])
def test_contrastive_identical_pair_finite_gradient(variant):
    e = tf.Variable(np.ones((3, 4), "float32"))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(contrastive_loss([0.0, 1.0, 1.0], (e, e * 1.0), 1.0, variant))
    grad = tape.gradient(value, e).numpy()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(float(value), 1.0)  # two dissimilar pairs at D = 0: ½·m each


def test_contrastive_bad_shapes_and_args():
    with pytest.raises(ValueError, match="variant"):
        ContrastiveLoss(variant="other")
    with pytest.raises(ValueError, match="similar_label"):
        contrastive_loss([0], [1.0], similar_label=2)
    with pytest.raises(ValueError, match=r"\(batch, 1\)"):
        contrastive_loss([0, 1], np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=-1.0)


# === Explicit triplets ===


def test_triplet_margin_formula_by_hand():
    a = np.array([[0.0, 0.0], [0.0, 0.0]], "float32")
    p = np.array([[1.0, 0.0], [1.0, 0.0]], "float32")
    n = np.array([[0.0, 1.0], [0.0, 3.0]], "float32")
    got = triplet_margin_loss(a, p, n, margin=0.5).numpy()
    np.testing.assert_allclose(got, [0.25, 0.0])  # ½ max(0, .5 + 1 - 1), ½ max(0, .5 + 1 - 9)
    loss = TripletMarginLoss(margin=0.5)
    np.testing.assert_allclose(float(loss(np.zeros(2), np.stack([a, p, n], 1))), 0.125)
    with pytest.raises(ValueError, match=r"\(batch, 3, dim\)"):
        loss(np.zeros(2), np.stack([a, p], 1))


# === Contrastive loss over every pair of a batch ===


def np_batch_contrastive(labels, e, margin, variant, distance, average):
    """Every ordered pair (i, j), i != j, through the per-pair formula, written plainly."""
    d = np_distances(e, distance if distance != "squared_l2" else "l2")
    if distance == "squared_l2":
        d = d**2
    similar, dissimilar = [], []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j:
                continue
            if labels[i] == labels[j]:
                similar.append(0.5 * d[i, j] ** 2)
            elif variant == "squared":
                dissimilar.append(0.5 * max(0.0, margin - d[i, j] ** 2))
            else:
                dissimilar.append(0.5 * max(0.0, margin - d[i, j]) ** 2)
    if average == "pairs":
        return float(np.mean(similar + dissimilar))
    active = [t for t in dissimilar if t > 0]
    return float(np.mean(similar) if similar else 0.0) + float(np.mean(active) if active else 0.0)


@pytest.mark.parametrize("variant", ["squared", "hadsell"])
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("average", ["active", "pairs"])
def test_batch_contrastive_golden_against_brute_force(variant, distance, average):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 12)
    e = rng.normal(size=(12, 5)).astype("float32")
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    margin = 1.2
    got = float(batch_contrastive_loss(labels, e, margin, variant, distance, average))
    want = np_batch_contrastive(labels, e, margin, variant, distance, average)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    loss = BatchContrastiveLoss(margin, variant, distance, average)
    np.testing.assert_allclose(float(loss(labels, e)), want, rtol=1e-5, atol=1e-6)


def test_contrastive_active_average_by_hand():
    # similar D = 0.5: ½·0.25; dissimilar D = 0.5: ½(1 − 0.25); dissimilar D = 1.2: outside
    got = float(contrastive_loss([0, 1, 1], [0.5, 0.5, 1.2], margin=1.0, average="active"))
    np.testing.assert_allclose(got, 0.125 + 0.375)
    loss = ContrastiveLoss(margin=1.0, average="active")
    np.testing.assert_allclose(float(loss([0.0, 1.0, 1.0], [0.5, 0.5, 1.2])), 0.5)
    with pytest.raises(ValueError, match="average"):
        ContrastiveLoss(average="mean")


def test_batch_contrastive_identical_embeddings_finite_gradient():
    e = tf.Variable(np.ones((6, 4), "float32") / 2.0)
    with tf.GradientTape() as tape:
        value = batch_contrastive_loss([0, 0, 1, 1, 2, 2], e, variant="hadsell")
    grad = tape.gradient(value, e)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad.numpy()))


# === Classes: config round trip and errors ===


@pytest.mark.parametrize(
    "loss",
    [
        TripletLoss(margin=0.3, mining="hard", distance="cosine", semi_hard_fallback="easiest"),
        ContrastiveLoss(margin=2.0, variant="hadsell", similar_label=1, distance="cosine"),
        TripletMarginLoss(margin=0.7, distance="l2"),
        ContrastiveLoss(margin=1.5, average="active"),
        BatchContrastiveLoss(margin=0.8, variant="hadsell", distance="cosine", average="pairs"),
    ],
)
def test_serialization_round_trip(loss):
    config = keras.losses.serialize(loss)
    restored = keras.losses.deserialize(json.loads(json.dumps(config)))
    assert type(restored) is type(loss)
    assert json.dumps(restored.get_config(), sort_keys=True) == json.dumps(
        loss.get_config(), sort_keys=True
    )


def test_triplet_loss_class_matches_function_and_validates():
    labels, e = batch(7)
    loss = TripletLoss(margin=0.2, mining="semi-hard")
    np.testing.assert_allclose(float(loss(labels, e)), float(triplet_loss(labels, e, 0.2)), 1e-6)
    np.testing.assert_allclose(
        float(loss(labels[:, None].astype("float32"), e)), float(triplet_loss(labels, e, 0.2)), 1e-6
    )
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="semihard")
    with pytest.raises(ValueError, match="distance"):
        TripletLoss(distance="l1")
    with pytest.raises(ValueError, match="semi_hard_fallback"):
        TripletLoss(semi_hard_fallback="random")


def violations(labels, e, margin):
    d = np_distances(e, "squared_l2")
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(len(labels), dtype=bool)
    triplets = pos[:, :, None] & ~same[:, None, :]
    return np.mean((margin + d[:, :, None] - d[:, None, :] > 0)[triplets])


@pytest.mark.slow
@pytest.mark.parametrize("mining", MODES)
def test_training_with_triplet_loss_separates_classes(mining):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 8)
    centres = rng.normal(size=(4, 6)) * 2.0
    x = (centres[labels] + rng.normal(size=(32, 6))).astype("float32")
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4), keras.layers.UnitNormalization()]
    )
    model.compile(keras.optimizers.Adam(0.05), TripletLoss(margin=0.2, mining=mining))
    before = violations(labels, model.predict(x, verbose=0), 0.2)
    model.fit(x, labels, batch_size=32, epochs=40, verbose=0, shuffle=False)
    after = violations(labels, model.predict(x, verbose=0), 0.2)
    assert after < 0.5 * before, (before, after)


def test_triplet_loss_warmup_uses_semi_hard_then_the_mining_mode():
    rng = np.random.default_rng(0)
    e = tf.Variable(rng.normal(size=(8, 4)).astype("float32"))
    y = np.repeat(np.arange(4), 2)
    loss = TripletLoss(0.2, "hard", warmup_steps=2)
    semi = float(triplet_loss(y, e, 0.2, "semi-hard"))
    hard = float(triplet_loss(y, e, 0.2, "hard"))
    assert semi != pytest.approx(hard)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss(y, e)
        return value, tape.gradient(value, e)

    values = []
    for _ in range(4):
        value, grad = step()
        assert np.all(np.isfinite(grad.numpy()))
        values.append(float(value))
    np.testing.assert_allclose(values, [semi, semi, hard, hard], rtol=1e-6)
    assert TripletLoss(0.2, "hard", warmup_steps=5).get_config()["warmup_steps"] == 5
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="warmup_steps"):
            TripletLoss(0.2, "hard", warmup_steps=bad)
