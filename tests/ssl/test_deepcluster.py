"""DeepCluster: k-means in TF, PCA whitening, balanced sampling, the model + callback in fit,
.keras round trip, strategies and resuming."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.metrics.clustering import normalized_mutual_info
from zoo.ssl.deepcluster import DeepCluster, DeepClusterCallback
from zoo.ssl.kmeans import (
    _squared_distances,
    cluster_balanced_indices,
    kmeans,
    pca_whiten,
    preprocess_features,
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


def test_kmeans_distances_are_the_matmul_expansion_clipped_at_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 7)).astype("float32") * 100
    c = np.concatenate([x[:3], rng.normal(size=(2, 7)).astype("float32")])
    d2 = _squared_distances(tf.constant(x), tf.constant(c)).numpy()
    want = ((x[:, None] - c[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d2, want, rtol=1e-4, atol=0.5)
    assert d2.min() >= 0.0  # a point against itself: round-off never goes negative
    x_sq = (x**2).sum(1)  # the expansion the zoo used before zoo.ops.distances
    raw = x_sq[:, None] - 2.0 * x @ c.T + (c**2).sum(1)[None, :]
    np.testing.assert_allclose(d2, np.maximum(raw, 0.0), rtol=1e-5, atol=0.5)


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


# === the model and the callback ===


def build(x, k=3, **options):
    model = DeepCluster(tiny_encoder(x.shape[1:]), k=k, num_examples=len(x), **options)
    model.compile(keras.optimizers.Adam(1e-2))
    return model


class Recorder(keras.callbacks.Callback):
    """Per epoch: the logs and the pseudo-labels the epoch trained on."""

    def __init__(self, interrupt_after=None):
        super().__init__()
        self.logs, self.labels, self.interrupt_after = [], [], interrupt_after

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append((epoch, dict(logs)))
        self.labels.append(np.asarray(self.model.pseudo_labels).copy())
        if self.interrupt_after is not None and len(self.logs) >= self.interrupt_after:
            raise RuntimeError("interrupted")


def test_fit_with_the_callback_reassigns_the_pseudo_labels_every_epoch():
    x, labels = tiny_images()
    keras.utils.set_random_seed(0)
    model = build(x, augment_options={"crop_scale": (0.5, 1.0)})
    encoder_before = [w.copy() for w in model.encoder.get_weights()]
    clusters = DeepClusterCallback(x, labels=labels, pca_dim=4, seed=0)
    recorder = Recorder()
    dataset = clusters.dataset(16)
    history = model.fit(dataset, epochs=3, callbacks=[clusters, recorder], verbose=0).history
    keys = ("loss", "accuracy", "nmi", "nmi_previous", "inertia", "nonempty_clusters")
    for key in keys:
        assert len(history[key]) == 3, key
    assert np.isnan(history["nmi_previous"][0]) and 0.0 <= history["nmi_previous"][1] <= 1.0
    assert all(0.0 <= v <= 1.0 for v in history["nmi"]) and all(np.isfinite(history["loss"]))
    assert [e for e, _ in recorder.logs] == [0, 1, 2]
    assert recorder.logs[1][1]["nmi"] == pytest.approx(history["nmi"][1])  # later callbacks see it
    # every epoch trained on that epoch's clustering, and the labels changed between epochs
    np.testing.assert_array_equal(recorder.labels[-1], clusters.assignments)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(recorder.labels[:-1], recorder.labels[1:], strict=True)
    )
    assert any(
        not np.allclose(a, b)
        for a, b in zip(encoder_before, model.encoder.get_weights(), strict=True)
    )
    # the same dataset object now draws cluster-balanced batches of the last clustering
    ids = np.concatenate([b[1].numpy() for b in dataset])
    assert ids.shape == (48,)
    counts = np.bincount(clusters.assignments[ids], minlength=3)
    assert counts.max() - counts.min() <= 1
    # (images, example ids) from NumPy work as well
    more = model.fit(x, np.arange(len(x)), batch_size=16, epochs=1, callbacks=[clusters])
    assert np.isfinite(more.history["loss"][0]) and "nmi_previous" in more.history


def test_the_model_learns_the_pseudo_labels_between_clusterings():
    # every=100: one clustering, then the encoder + head fit it (loss down, accuracy up)
    x, labels = tiny_images(seed=2)
    keras.utils.set_random_seed(2)
    model = DeepCluster(tiny_encoder(), k=3, num_examples=len(x))
    model.compile(keras.optimizers.Adam(3e-2))
    clusters = DeepClusterCallback(x, labels=labels, pca_dim=4, seed=2, every=100)
    history = model.fit(clusters.dataset(16), epochs=8, callbacks=[clusters], verbose=0).history
    assert history["nmi"] == [history["nmi"][0]] * 8 and history["nmi"][0] > 0.99
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.9 > history["accuracy"][0]
    assert len(clusters.history["inertia"]) == 1  # clustered once


def test_keras_file_round_trip_keeps_features_labels_and_optimizers(tmp_path):
    x, labels = tiny_images(n=24)
    model = build(x, hidden_units=(5,), augment_options={"flip": False})
    clusters = DeepClusterCallback(x, labels=labels, pca_dim=4)
    model.fit(clusters.dataset(8), epochs=1, callbacks=[clusters], verbose=0)
    path = tmp_path / "deepcluster.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, DeepCluster)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    np.testing.assert_allclose(
        loaded.trunk.predict(x, verbose=0), model.trunk.predict(x, verbose=0), atol=1e-6
    )
    np.testing.assert_array_equal(np.asarray(loaded.pseudo_labels), clusters.assignments)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 3
    assert type(loaded.head_optimizer) is type(model.head_optimizer)


def test_trains_under_a_strategy_scope():
    x, labels = tiny_images(n=32)
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = build(x)
        clusters = DeepClusterCallback(x, pca_dim=4, head_warmup_steps=2, warmup_batch_size=8)
    history = model.fit(clusters.dataset(8), epochs=2, callbacks=[clusters], verbose=0).history
    assert len(history["loss"]) == 2 and np.all(np.isfinite(history["head_warmup_loss"]))
    assert int(model.optimizer.iterations) == 8


@pytest.mark.slow
def test_backup_and_restore_resumes_after_the_last_finished_epoch(tmp_path):
    x, labels = tiny_images(seed=1)
    backup = str(tmp_path / "backup")

    def run(interrupt_after=None):
        keras.utils.set_random_seed(0)
        model = build(x)
        clusters = DeepClusterCallback(x, pca_dim=4, seed=3)
        recorder = Recorder(interrupt_after)
        restore = keras.callbacks.BackupAndRestore(backup)
        callbacks = [restore, clusters, recorder]
        model.fit(clusters.dataset(16), epochs=3, callbacks=callbacks, verbose=0)
        return model, recorder

    with pytest.raises(RuntimeError, match="interrupted"):
        run(interrupt_after=2)
    model, recorder = run()
    assert [e for e, _ in recorder.logs] == [2]  # epochs 0 and 1 were not trained again
    assert int(model.optimizer.iterations) == 3 * 3


def test_reset_head_warm_head_and_bad_arguments():
    x, _ = tiny_images(n=24, seed=4)
    model = build(x, k=3)
    model.head.kernel.assign(tf.ones_like(model.head.kernel))
    model.head.bias.assign(tf.ones_like(model.head.bias))
    model.head_optimizer.iterations.assign(5)
    model.reset_head(tf.constant([0, 1], tf.int64))
    kernel = model.head.kernel.numpy()
    assert np.all(model.head.bias.numpy() == 0) and 0 < kernel.std() < 0.05
    assert int(model.head_optimizer.iterations) == 0
    model.reset_head(tf.constant([0, 2], tf.int64))
    assert not np.allclose(model.head.kernel.numpy(), kernel)  # a fresh draw per seed
    # the warm-up fits the new head alone to the pseudo-labels of the cached features
    features = model.trunk.predict(x, verbose=0)
    pseudo = kmeans(preprocess_features(features, pca_dim=4), 3, seed=0).assignments.numpy()
    trunk = [w.copy() for w in model.trunk.get_weights()]
    before = np.mean(np.argmax(model.head(features).numpy(), 1) == pseudo)
    loss = model.warm_head(features, pseudo, steps=60, batch_size=8)
    after = np.mean(np.argmax(model.head(features).numpy(), 1) == pseudo)
    assert np.isfinite(loss) and after > max(before, 0.6)
    for a, b in zip(trunk, model.trunk.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="k must be"):
        DeepCluster(tiny_encoder(), k=1, num_examples=4)
    for bad in ((0,), (4.5,), (True,)):
        with pytest.raises(ValueError, match="hidden_units"):
            DeepCluster(tiny_encoder(), k=3, num_examples=4, hidden_units=bad)
    with pytest.raises(ValueError, match="augment_options"):
        DeepCluster(tiny_encoder(), k=3, num_examples=4, augment_options={"zoom": 2})
    with pytest.raises(ValueError, match="labels"):
        DeepClusterCallback(x, labels=[0, 1])
    with pytest.raises(ValueError, match="head_warmup_steps"):
        DeepClusterCallback(x, head_warmup_steps=-1)
    with pytest.raises(ValueError, match="batch_size"):
        DeepClusterCallback(x).dataset(64)
    with pytest.raises(ValueError, match="num_examples"):
        build(x[:10]).fit(x, np.arange(24), callbacks=[DeepClusterCallback(x)], verbose=0)


def test_hidden_units_put_an_mlp_under_the_head_and_k_means_clusters_its_output():
    x, _ = tiny_images(seed=3)
    model = build(x, hidden_units=(5,))
    assert model.trunk.predict(x[:10], verbose=0).shape == (10, 5)  # k-means sees the MLP's
    mlp_kernel = model.mlp[0].kernel
    before = mlp_kernel.numpy().copy()
    model.reset_head(1)  # the top layer is re-drawn, the MLP is not
    np.testing.assert_array_equal(mlp_kernel.numpy(), before)
    clusters = DeepClusterCallback(x, pca_dim=4)
    model.fit(clusters.dataset(16), epochs=1, callbacks=[clusters], verbose=0)
    assert clusters.history["inertia"] and not np.allclose(mlp_kernel.numpy(), before)
