"""zoo.metric_learning.sampling: P×K batches, pair/triplet generators, hard mining."""

import keras
import numpy as np
import pytest

from zoo.data.classification import ClassificationData
from zoo.metric_learning.sampling import (
    HardMiningCallback,
    PairGenerator,
    TripletGenerator,
    pk_batches,
)
from zoo.ops.distances import pairwise_squared_l2


def toy(n_per_class=6, classes=4, size=6):
    labels = np.repeat(np.arange(classes), n_per_class)
    images = np.zeros((len(labels), size, size, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels))  # pixel (0, 0) identifies the example
    images[:, 1, 1, 0] = labels * 10  # pixel (1, 1) encodes the class
    return ClassificationData(images, labels, [f"c{i}" for i in range(classes)], "toy")


def test_pk_batches_are_class_balanced_and_deterministic():
    data = toy(n_per_class=5, classes=6)
    ds = pk_batches(data.images, data.labels, p=3, k=4, seed=3)
    batches = [(x.numpy(), y.numpy()) for x, y in ds.take(6)]
    for x, y in batches:
        assert x.shape == (12, 6, 6, 1) and x.dtype == np.float32
        classes, counts = np.unique(y, return_counts=True)
        assert len(classes) == 3 and np.all(counts == 4)
        np.testing.assert_array_equal(x[:, 1, 1, 0] / 10, y)  # image and label stay together
    again = [y.numpy() for _, y in pk_batches(data.images, data.labels, p=3, k=4, seed=3).take(6)]
    assert all(np.array_equal(a, b[1]) for a, b in zip(again, batches, strict=True))
    # every class gets picked over a few batches
    assert set(np.concatenate([y for _, y in batches])) == set(range(6))


def test_pk_batches_cover_each_class_without_replacement():
    data = toy(n_per_class=8, classes=2)
    ds = pk_batches(data.images, data.labels, p=2, k=4, seed=0)
    ids = np.concatenate([x.numpy()[:, 0, 0, 0] for x, _ in ds.take(2)])
    assert len(np.unique(ids)) == 16  # two batches use every example exactly once


def test_pk_batches_argument_checks():
    data = toy()
    with pytest.raises(ValueError, match="k must be"):
        pk_batches(data.images, data.labels, p=2, k=1)
    with pytest.raises(ValueError, match="p must be"):
        pk_batches(data.images, data.labels, p=9, k=2)


def test_pair_generator_labels_follow_similar_is_zero_convention():
    data = toy(n_per_class=6, classes=4)
    gen = PairGenerator(data.images, data.labels, batch_size=20, positive_fraction=0.5, seed=0)
    inputs, y = gen.next_batch()
    cls_a = inputs["input_a"][:, 1, 1, 0] // 10
    cls_b = inputs["input_b"][:, 1, 1, 0] // 10
    np.testing.assert_array_equal(y == 0, cls_a == cls_b)  # y = 0: SIMILAR
    assert y.sum() == 10
    ids_a, ids_b = inputs["input_a"][:, 0, 0, 0], inputs["input_b"][:, 0, 0, 0]
    assert np.all(ids_a[y == 0] != ids_b[y == 0])  # a similar pair is two different images


def test_triplet_generator_and_dataset():
    data = toy()
    gen = TripletGenerator(data.images, data.labels, batch_size=7, seed=1)
    ds = gen.dataset(target_key="embeddings")
    inputs, targets = next(iter(ds))
    cls = {k: v.numpy()[:, 1, 1, 0] // 10 for k, v in inputs.items()}
    assert np.all(cls["anchor"] == cls["positive"]) and np.all(cls["anchor"] != cls["negative"])
    assert targets["embeddings"].shape == (7,) and inputs["anchor"].dtype == "float32"


class PixelEncoder(keras.Model):
    """Embeds an image as its class pixel (and a tiny id term): distances are controllable."""

    def call(self, x, training=False):
        return keras.ops.stack([x[:, 1, 1, 0], x[:, 0, 0, 0] * 0.01], axis=1)


def test_hard_mining_picks_farthest_positive_and_closest_negative():
    data = toy(n_per_class=5, classes=3)
    gen = TripletGenerator(data.images, data.labels, batch_size=10, hard_fraction=1.0, seed=0)
    mined = gen.refresh(PixelEncoder())
    anchors, positives, negatives = gen.hard
    assert mined == len(data)
    ids = data.images[:, 0, 0, 0].astype(int)
    for a, p, n in zip(anchors, positives, negatives, strict=True):
        same = np.flatnonzero((data.labels == data.labels[a]) & (np.arange(len(data)) != a))
        assert abs(ids[p] - ids[a]) == max(abs(ids[same] - ids[a]))  # farthest positive
        assert abs(data.labels[n] - data.labels[a]) == 1  # neighbouring class is closest
    inputs, _ = gen.next_batch()  # hard_fraction = 1: the whole batch is mined triplets
    assert np.all(
        np.abs(inputs["anchor"][:, 1, 1, 0].astype(int) - inputs["negative"][:, 1, 1, 0]) == 10
    )


def test_semi_hard_mining_picks_closest_negative_farther_than_the_positive():
    data = toy(n_per_class=5, classes=3)
    gen = TripletGenerator(
        data.images, data.labels, batch_size=10, hard_fraction=1.0, seed=0, mining="semi-hard"
    )
    gen.refresh(PixelEncoder())
    emb = PixelEncoder().predict(data.images.astype("float32"))
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    positives_seen = set()
    for a, p, n in zip(*gen.hard, strict=True):
        assert data.labels[p] == data.labels[a] and p != a
        assert data.labels[n] != data.labels[a]
        others = np.flatnonzero(data.labels != data.labels[a])
        farther = others[d[a, others] > d[a, p]]
        expected = (
            farther[np.argmin(d[a, farther])] if len(farther) else others[np.argmin(d[a, others])]
        )
        assert d[a, n] == d[a, expected]
        positives_seen.add((int(a), int(p)))
    assert len(positives_seen) == len(data)
    with pytest.raises(ValueError, match="mining"):
        TripletGenerator(data.images, data.labels, mining="hardest")


def test_hard_mining_callback_refreshes_each_epoch():
    data = toy()
    gen = PairGenerator(data.images, data.labels, batch_size=8, hard_fraction=0.5)
    callback = HardMiningCallback(gen, PixelEncoder(), every=2, first_epoch=1)
    for epoch in range(5):
        callback.on_epoch_begin(epoch)
    assert gen.refreshes == 2  # epochs 1 and 3
    inputs, y = gen.next_batch()
    assert len(y) == 8 and y.sum() == 4
    cls_a = inputs["input_a"][:, 1, 1, 0] // 10
    cls_b = inputs["input_b"][:, 1, 1, 0] // 10
    np.testing.assert_array_equal(y == 0, cls_a == cls_b)


def test_mining_distances_are_the_gram_expansion():
    """Hard mining ranks by ``pairwise_squared_l2``: the NumPy Gram expansion up to round-off."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 16)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sq = np.sum(emb * emb, axis=1)
    expected = np.maximum(sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T, 0.0)
    got = np.asarray(pairwise_squared_l2(emb))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.all(np.diag(got) == 0.0)
