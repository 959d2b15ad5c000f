"""DeepCluster: k-means in TF, PCA whitening, balanced sampling, the epoch loop and resuming."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.metrics.clustering import normalized_mutual_info
from zoo.ssl.deepcluster import (
    DeepClusterTrainer,
    cluster_balanced_indices,
    kmeans,
    pca_whiten,
    preprocess_features,
    train_deepcluster,
)


def blobs(n=300, k=5, dim=6, spread=0.2, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 10
    labels = rng.integers(0, k, n)
    return (centers[labels] + spread * rng.normal(size=(n, dim))).astype("float32"), labels


def tiny_encoder(shape=(8, 8, 1)):
    """A stand-in for build_ssl_encoder: images 0–255 → (B, 6) features."""
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(6),
        ],
        name="tiny_encoder",
    )


def tiny_images(n=48, seed=0):
    """Three visibly different kinds of 8×8 images (dark, bright, striped) with their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.random((n, 8, 8, 1)) * 40
    x[labels == 1] += 180
    x[labels == 2, :, ::2] += 200
    return np.clip(x, 0, 255).astype("uint8"), labels


# === k-means ===


@pytest.mark.parametrize("seed", [0, 3])
def test_kmeans_recovers_well_separated_blobs(seed):
    x, labels = blobs()
    result = kmeans(x, 5, seed=seed)
    assignments = result.assignments.numpy()
    assert result.centroids.shape == (5, 6) and assignments.shape == (300,)
    assert normalized_mutual_info(labels, assignments) > 0.999
    # inertia is the sum of squared distances to the assigned centroid
    c = result.centroids.numpy()
    want = np.sum((x - c[assignments]) ** 2)
    assert result.inertia == pytest.approx(want, rel=1e-4)
    # each centroid is the mean of its points
    for j in range(5):
        np.testing.assert_allclose(c[j], x[assignments == j].mean(0), atol=1e-4)


def test_kmeans_random_init_best_of_a_few_seeds_recovers_blobs():
    # a random start can put two centroids in one blob (a local minimum): keep the best run
    x, labels = blobs()
    runs = [kmeans(x, 5, seed=s, init="random") for s in range(5)]
    best = min(runs, key=lambda r: r.inertia)
    assert normalized_mutual_info(labels, best.assignments.numpy()) > 0.999


def test_kmeans_is_deterministic_by_seed():
    x, _ = blobs(n=200, k=8, spread=3.0)  # overlapping: the seed matters
    a = kmeans(x, 8, seed=1)
    b = kmeans(x, 8, seed=1)
    np.testing.assert_array_equal(a.assignments.numpy(), b.assignments.numpy())
    np.testing.assert_array_equal(a.centroids.numpy(), b.centroids.numpy())
    others = [kmeans(x, 8, seed=s, iterations=0).centroids.numpy() for s in (2, 3)]
    assert not np.allclose(others[0], others[1])  # initialisations differ by seed


def test_kmeans_reseeds_empty_clusters_from_the_farthest_points():
    x = np.array([[0.0], [0.2], [10.0], [10.2], [30.0]], "float32")
    init = np.array([[0.0], [10.0], [1000.0]], "float32")  # cluster 2 gets nobody
    result = kmeans(x, 3, init=init, iterations=5)
    assignments = result.assignments.numpy()
    assert len(np.unique(assignments)) == 3  # no empty cluster left
    # the farthest point (30, 20 away from its centroid) was taken by the empty cluster
    np.testing.assert_allclose(result.centroids.numpy()[2], [30.0])
    assert assignments[4] == 2
    # without iterations, the cluster stays empty (the re-seeding happens in Lloyd's update)
    raw = kmeans(x, 3, init=init, iterations=0).assignments.numpy()
    assert 2 not in raw


def test_kmeans_with_duplicate_points_and_bad_arguments():
    x = np.zeros((6, 2), "float32")
    result = kmeans(x, 3, seed=0)
    assert np.isfinite(result.inertia) and result.inertia == 0.0
    with pytest.raises(ValueError, match="k must be"):
        kmeans(x, 7)
    with pytest.raises(ValueError, match="init"):
        kmeans(x, 2, init="forgy")
    with pytest.raises(ValueError, match=r"\(k, D\)"):
        kmeans(x, 2, init=np.zeros((3, 2)))


# === preprocessing ===


def test_pca_whitening_gives_unit_covariance_and_unit_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5)) @ rng.normal(size=(5, 5)) + 3.0
    white = pca_whiten(x, dim=3, eps=0.0).numpy()
    assert white.shape == (500, 3)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(3), atol=1e-4)
    # components are ordered by decreasing variance
    plain = pca_whiten(x, whiten=False).numpy()
    assert np.all(np.diff(plain.var(0)) <= 1e-6)
    rows = preprocess_features(x, pca_dim=256).numpy()  # dim capped at D
    assert rows.shape == (500, 5)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)


# === balanced sampling ===


def test_balanced_sampler_draws_each_cluster_about_equally():
    assignments = np.r_[np.zeros(900), np.ones(90), np.full(10, 5)].astype(int)
    indices = cluster_balanced_indices(assignments, 999, seed=1)
    assert indices.shape == (999,)
    counts = np.bincount(assignments[indices], minlength=6)[[0, 1, 5]]
    assert counts.max() - counts.min() <= 3  # 333 each up to the random cut
    # within the big cluster, sampling is without replacement (333 of 900)
    big = indices[assignments[indices] == 0]
    assert len(np.unique(big)) == len(big)
    # the small cluster is sampled with replacement and covers all its members
    small = indices[assignments[indices] == 5]
    assert set(small) == set(range(990, 1000))
    np.testing.assert_array_equal(indices, cluster_balanced_indices(assignments, 999, seed=1))
    assert not np.array_equal(indices, cluster_balanced_indices(assignments, 999, seed=2))


def test_balanced_sampler_is_uniform_within_a_cluster():
    assignments = np.r_[np.zeros(4), np.ones(2)].astype(int)
    draws = np.concatenate([cluster_balanced_indices(assignments, 6, seed=s) for s in range(300)])
    frequency = np.bincount(draws, minlength=6) / len(draws)
    np.testing.assert_allclose(frequency[:4], 0.125, atol=0.02)  # half the mass over 4 members
    np.testing.assert_allclose(frequency[4:], 0.25, atol=0.02)  # half over 2 members


# === the loop ===


class Recorder(keras.callbacks.Callback):
    def __init__(self, stop_after=None):
        super().__init__()
        self.epochs, self.stop_after = [], stop_after

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, dict(logs)))
        if self.stop_after is not None and len(self.epochs) >= self.stop_after:
            self.model.stop_training = True


@pytest.mark.slow
def test_deepcluster_two_epochs_log_nmi_and_train_the_encoder(tmp_path):
    x, labels = tiny_images()
    encoder = tiny_encoder()
    before = [v.numpy().copy() for v in encoder.trainable_variables]
    recorder = Recorder()
    seeds_seen = []

    def flip(images, seed):  # a stateless batched augmentation, run inside the train step
        seeds_seen.append(seed)
        coin = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < 0.5
        return tf.where(coin, tf.reverse(images, axis=[2]), images)

    history = train_deepcluster(
        encoder,
        x,
        k=3,
        epochs=2,
        batch_size=16,
        labels=labels,
        callbacks=[recorder],
        augment=flip,
        checkpoint_dir=str(tmp_path / "ckpt"),
        pca_dim=4,
        seed=0,
    )
    for key in ("loss", "accuracy", "nmi", "nmi_previous", "inertia", "nonempty_clusters"):
        assert len(history[key]) == 2, key
    assert all(0.0 <= v <= 1.0 for v in history["nmi"])
    assert np.isnan(history["nmi_previous"][0]) and 0.0 <= history["nmi_previous"][1] <= 1.0
    assert all(np.isfinite(history["loss"])) and history["nonempty_clusters"] == [3.0, 3.0]
    assert [e for e, _ in recorder.epochs] == [0, 1]
    assert seeds_seen and seeds_seen[0].shape == (2,)  # traced once, with a [2] seed tensor
    assert recorder.epochs[1][1]["nmi"] == pytest.approx(history["nmi"][1])
    assert any(
        not np.allclose(b, a.numpy())
        for b, a in zip(before, encoder.trainable_variables, strict=True)
    )
    # the checkpoint holds the state after the last epoch
    with open(tmp_path / "ckpt" / "deepcluster_state.json") as f:
        state = json.load(f)
    assert state["epochs_done"] == 2 and len(state["history"]["loss"]) == 2
    restored = tiny_encoder()
    restored.load_weights(str(tmp_path / "ckpt" / "encoder.weights.h5"))
    np.testing.assert_allclose(
        restored(x[:4].astype("float32")).numpy(),
        encoder(x[:4].astype("float32")).numpy(),
        atol=1e-6,
    )


@pytest.mark.slow
@pytest.mark.parametrize("hidden_units", [(), (8,)])
def test_deepcluster_resumes_from_its_checkpoint(tmp_path, hidden_units):
    x, labels = tiny_images(seed=1)
    options = {"k": 3, "batch_size": 16, "pca_dim": 4, "seed": 2, "hidden_units": hidden_units}
    keras.utils.set_random_seed(0)
    full = train_deepcluster(tiny_encoder(), x, epochs=2, **options)

    ckpt = str(tmp_path / "ckpt")
    keras.utils.set_random_seed(0)  # the same initial weights as the uninterrupted run
    first = DeepClusterTrainer(tiny_encoder(), checkpoint_dir=ckpt, **options)
    first.fit(x, epochs=2, callbacks=[Recorder(stop_after=1)])  # "interrupted" after epoch 1
    assert first.epochs_done == 1 and os.path.exists(os.path.join(ckpt, "encoder.weights.h5"))

    resumed_encoder = tiny_encoder()
    resumed = train_deepcluster(resumed_encoder, x, epochs=2, checkpoint_dir=ckpt, **options)
    assert len(resumed["loss"]) == 2
    # the resumed run reproduces the uninterrupted one
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-4)
    np.testing.assert_allclose(resumed["nmi_previous"][1], full["nmi_previous"][1], rtol=1e-6)


def test_trainer_resets_the_head_and_rejects_bad_arguments():
    trainer = DeepClusterTrainer(tiny_encoder(), k=4, batch_size=8, pca_dim=4)
    trainer.head.kernel.assign(tf.ones_like(trainer.head.kernel))
    trainer.head.bias.assign(tf.ones_like(trainer.head.bias))
    trainer.reset_head(epoch=0)
    kernel = trainer.head.kernel.numpy()
    assert np.all(trainer.head.bias.numpy() == 0) and 0 < kernel.std() < 0.05
    trainer.reset_head(epoch=1)
    assert not np.allclose(trainer.head.kernel.numpy(), kernel)  # fresh draw per epoch
    x, _ = tiny_images(n=12)
    from_dataset = trainer.embed(tf.data.Dataset.from_tensor_slices(x).batch(5))
    np.testing.assert_allclose(from_dataset, trainer.embed(x), atol=1e-6)
    assignments = trainer.cluster(x).assignments.numpy()
    assert assignments.shape == (12,) and assignments.max() < 4
    with pytest.raises(ValueError, match="k must be"):
        DeepClusterTrainer(tiny_encoder(), k=1)
    with pytest.raises(ValueError, match="labels"):
        trainer.fit(x, epochs=1, labels=[0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        DeepClusterTrainer(tiny_encoder(), k=2, batch_size=64).train_epoch(x, assignments % 2)


def test_hidden_units_put_an_mlp_under_the_head_and_cluster_its_output():
    x, _ = tiny_images(seed=3)
    trainer = DeepClusterTrainer(tiny_encoder(), k=3, batch_size=16, pca_dim=4, hidden_units=(5,))
    assert trainer.embed(x[:10]).shape == (10, 5)  # k-means sees the MLP's output
    mlp_kernel = trainer.mlp[0].kernel
    before = mlp_kernel.numpy().copy()
    trainer.reset_head(1)  # the top layer is re-drawn, the MLP is not
    np.testing.assert_array_equal(mlp_kernel.numpy(), before)
    trainer.fit(x, epochs=1)
    assert not np.allclose(mlp_kernel.numpy(), before)  # trained with the encoder
    for bad in ((0,), (4.5,), (True,)):
        with pytest.raises(ValueError, match="hidden_units"):
            DeepClusterTrainer(tiny_encoder(), k=3, hidden_units=bad)


def test_head_warmup_fits_the_new_top_layer_to_the_pseudo_labels_without_touching_the_trunk():
    x, _ = tiny_images(seed=4)
    trainer = DeepClusterTrainer(
        tiny_encoder(), k=3, batch_size=16, pca_dim=4, head_warmup_steps=60
    )
    features = trainer.embed(x)
    labels = trainer.cluster(x, features=features).assignments.numpy()
    trunk = [w.copy() for w in trainer.trunk.get_weights()]
    trainer.reset_head(0)
    logits = trainer.head(tf.constant(features)).numpy()
    before = np.mean(np.argmax(logits, 1) == labels)
    loss = trainer.warm_head(features, labels)
    after = np.mean(np.argmax(trainer.head(tf.constant(features)).numpy(), 1) == labels)
    assert np.isfinite(loss) and after > max(before, 0.6)
    for a, b in zip(trunk, trainer.trunk.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    history = trainer.fit(x, epochs=1)
    assert np.isfinite(history["head_warmup_loss"][0])
    with pytest.raises(ValueError, match="head_warmup_steps"):
        DeepClusterTrainer(tiny_encoder(), k=3, head_warmup_steps=-1)
