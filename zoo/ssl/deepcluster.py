"""DeepCluster (Caron et al. 2018): pseudo-labels from k-means on the encoder's own features.

Every epoch:

1. embed all (unlabeled) training images with the current encoder (inference mode), followed
   by the ReLU MLP of ``hidden_units`` when there is one (the paper's fc6/fc7);
2. PCA-whiten the features (``pca_dim`` components, each scaled by ``1/√(λ + eps)``) and
   L2-normalise the rows (``preprocess_features``), as the paper does before Faiss k-means;
3. cluster them into ``k`` groups with ``kmeans`` (TF: k-means++ seeding, Lloyd iterations with
   matmul distances, empty clusters re-seeded from the points farthest from their centroid);
   the cluster index is each image's pseudo-label for this epoch;
4. re-initialise the classifier head (``Dense(k)`` on the encoder, weights ~ N(0, 0.01²), bias 0)
   and reset its optimizer's state (the paper re-creates the top layer and its optimizer);
   with ``head_warmup_steps`` the new head is then fitted alone to the pseudo-labels on the
   features just computed (cheap: no image passes through the encoder), so the encoder's first
   steps of the epoch are not driven by a random head;
5. train encoder + head for one epoch on ``num_samples`` (default ``N``) images drawn
   cluster-balanced (``cluster_balanced_indices``: the same number from every non-empty cluster,
   uniformly within it, as the paper's ``UnifLabelSampler``), so one giant cluster cannot take
   the whole signal (the trivial-solution collapse).

Logged per epoch: ``loss`` and ``accuracy`` (on the pseudo-labels), ``nmi`` (clusters vs the true
labels, when given), ``nmi_previous`` (clusters vs the previous epoch's: how stable the
assignments are; NaN at the first epoch), ``inertia``, ``nonempty_clusters``, ``seconds``.

The entry point is ``train_deepcluster(encoder, images, k=..., epochs=...)``; the work is done by
``DeepClusterTrainer`` for users who want each step. The encoder passed in is trained IN PLACE,
so an interrupted run (Ctrl-C, a crash) never loses it: the object holds the latest weights.
With ``checkpoint_dir`` the trainer also writes, after every epoch, the encoder weights, the
encoder optimizer's state, the history and the last assignments (atomically); calling
``train_deepcluster`` again with the same ``checkpoint_dir`` (and a freshly built encoder of the
same architecture) resumes after the last finished epoch. Training runs on one device with a
``tf.function`` step (no ``tf.distribute``; float32 losses, no loss scaling).

Example:
    >>> encoder = build_ssl_encoder((28, 28, 1))
    >>> history = train_deepcluster(encoder, x_train, k=100, epochs=10, labels=y_train)
    >>> history["nmi"]                             # NMI against the classes, per epoch

Reference:
    Caron, Bojanowski, Joulin, Douze, "Deep Clustering for Unsupervised Learning of Visual
    Features", ECCV 2018.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from zoo.metrics.clustering import normalized_mutual_info

__all__ = [
    "DeepClusterTrainer",
    "KMeansResult",
    "cluster_balanced_indices",
    "kmeans",
    "pca_whiten",
    "preprocess_features",
    "train_deepcluster",
]

KMEANS_INITS = ("k-means++", "random")


# === k-means ===


class KMeansResult(NamedTuple):
    """``centroids (k, D)`` float32, ``assignments (N,)`` int32, ``inertia`` (Σ squared dist)."""

    centroids: tf.Tensor
    assignments: tf.Tensor
    inertia: float


def _squared_distances(x, x_sq, centroids):
    """``(N, k)`` ``‖x − c‖²`` as ``‖x‖² − 2 x·c + ‖c‖²`` (one matmul), clipped at 0."""
    c_sq = tf.reduce_sum(tf.square(centroids), axis=1)
    d2 = x_sq[:, None] - 2.0 * tf.matmul(x, centroids, transpose_b=True) + c_sq[None, :]
    return tf.maximum(d2, 0.0)


def _seed_tensor(seed, salt=0):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer. Received: seed={seed!r}")
    return tf.constant([int(seed), salt], tf.int64)


def _kmeans_plus_plus(x, x_sq, k, seed):
    n = int(x.shape[0])
    seeds = tf.random.experimental.stateless_split(seed, k)
    first = tf.random.stateless_uniform([], seeds[0], 0, n, dtype=tf.int32)
    chosen = [first]
    d2 = _squared_distances(x, x_sq, tf.gather(x, [first]))[:, 0]
    for i in range(1, k):
        if float(tf.reduce_sum(d2)) > 0:
            logits = tf.where(d2 > 0, tf.math.log(tf.maximum(d2, 1e-30)), -np.inf)
        else:  # every point sits on a centroid already (duplicates): uniform
            logits = tf.zeros_like(d2)
        index = tf.random.stateless_categorical(logits[None], 1, seeds[i], dtype=tf.int32)[0, 0]
        chosen.append(index)
        d2 = tf.minimum(d2, _squared_distances(x, x_sq, tf.gather(x, [index]))[:, 0])
    return tf.gather(x, tf.stack(chosen))


def kmeans(features, k, iterations=20, seed=0, init="k-means++"):
    """k-means in TensorFlow (Lloyd's algorithm), deterministic for a seed.

    Args:
        features: ``(N, D)`` array / tensor (cast to float32).
        k: number of clusters, ``1 <= k <= N``.
        iterations: maximum Lloyd iterations (stops earlier when assignments stop changing).
        seed: integer seed of the initialisation.
        init: ``"k-means++"`` (Arthur & Vassilvitskii 2007; default), ``"random"`` (``k``
            distinct points drawn uniformly) or a ``(k, D)`` array of initial centroids.

    Returns:
        ``KMeansResult(centroids, assignments, inertia)``. After each update, a cluster that
        received no point is re-seeded with the point farthest from its current centroid
        (the farthest for the first empty cluster, the second farthest for the next, ...).

    Example:
        >>> result = kmeans(np.random.rand(1000, 8), k=10, seed=0)
        >>> result.assignments.shape
        TensorShape([1000])
    """
    x = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if x.shape.rank != 2:
        raise ValueError(f"features must be (N, D). Received shape {tuple(x.shape)}")
    n = int(x.shape[0])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, N={n}]. Received: k={k!r}")
    k = int(k)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be an integer >= 0. Received: iterations={iterations!r}")
    seed_t = _seed_tensor(seed)
    x_sq = tf.reduce_sum(tf.square(x), axis=1)
    if isinstance(init, str):
        if init == "k-means++":
            centroids = _kmeans_plus_plus(x, x_sq, k, seed_t)
        elif init == "random":
            order = tf.argsort(tf.random.stateless_uniform([n], seed_t))
            centroids = tf.gather(x, order[:k])
        else:
            raise ValueError(f"init must be one of {KMEANS_INITS} or an array. Received: {init!r}")
    else:
        centroids = tf.cast(tf.convert_to_tensor(init), tf.float32)
        if tuple(centroids.shape) != (k, int(x.shape[1])):
            raise ValueError(
                f"init centroids must have shape (k, D) = {(k, int(x.shape[1]))}. Received shape "
                f"{tuple(centroids.shape)}"
            )

    previous = None
    for _ in range(iterations):
        d2 = _squared_distances(x, x_sq, centroids)
        assignments = tf.argmin(d2, axis=1, output_type=tf.int32)
        counts = tf.math.bincount(assignments, minlength=k, maxlength=k, dtype=tf.float32)
        sums = tf.math.unsorted_segment_sum(x, assignments, k)
        updated = sums / tf.maximum(counts, 1.0)[:, None]
        empty = counts == 0
        num_empty = int(tf.reduce_sum(tf.cast(empty, tf.int32)))
        if num_empty:
            # re-seed the empty clusters with the points farthest from their centroid
            farthest = tf.argsort(tf.reduce_min(d2, axis=1), direction="DESCENDING")
            rank = tf.cumsum(tf.cast(empty, tf.int32)) - 1
            reseed = tf.gather(x, tf.gather(farthest, tf.clip_by_value(rank, 0, n - 1)))
            updated = tf.where(empty[:, None], reseed, updated)
        centroids = updated
        if (
            not num_empty
            and previous is not None
            and bool(tf.reduce_all(tf.equal(assignments, previous)))
        ):
            break
        previous = assignments
    d2 = _squared_distances(x, x_sq, centroids)
    assignments = tf.argmin(d2, axis=1, output_type=tf.int32)
    inertia = float(tf.reduce_sum(tf.reduce_min(d2, axis=1)))
    return KMeansResult(centroids, assignments, inertia)


# === Feature preprocessing ===


def pca_whiten(features, dim=None, whiten=True, eps=1e-5):
    """Project centred features on their top ``dim`` principal axes (and whiten them).

    Args:
        features: ``(N, D)``.
        dim: number of components (default and maximum ``D``).
        whiten: divide each component by ``√(λ + eps)`` (``λ`` its variance), so every kept
            direction has unit variance (Faiss ``PCAMatrix(eigen_power=-0.5)``, DeepCluster).
        eps: added to the variances before the square root.

    Returns:
        ``(N, dim)`` float32 tensor (components ordered by decreasing variance).
    """
    x = tf.cast(tf.convert_to_tensor(features), tf.float64)
    if x.shape.rank != 2:
        raise ValueError(f"features must be (N, D). Received shape {tuple(x.shape)}")
    d = int(x.shape[1])
    dim = d if dim is None else int(dim)
    if not 1 <= dim:
        raise ValueError(f"dim must be >= 1. Received: dim={dim!r}")
    dim = min(dim, d)
    x = x - tf.reduce_mean(x, axis=0, keepdims=True)
    cov = tf.matmul(x, x, transpose_a=True) / tf.cast(tf.maximum(tf.shape(x)[0] - 1, 1), tf.float64)
    values, vectors = tf.linalg.eigh(cov)  # ascending
    values, vectors = values[::-1][:dim], vectors[:, ::-1][:, :dim]
    projected = tf.matmul(x, vectors)
    if whiten:
        projected = projected / tf.sqrt(tf.maximum(values, 0.0) + eps)[None, :]
    return tf.cast(projected, tf.float32)


def preprocess_features(features, pca_dim=256, whiten=True, l2_normalize=True, eps=1e-5):
    """DeepCluster's preprocessing before k-means: PCA(``pca_dim``) + whitening + L2 rows.

    Args:
        features: ``(N, D)``.
        pca_dim: components kept (``None`` = all; capped at ``D``). The paper: 256.
        whiten, eps: see ``pca_whiten``.
        l2_normalize: divide each row by its norm.

    Returns:
        ``(N, min(pca_dim, D))`` float32 tensor.
    """
    x = pca_whiten(features, dim=pca_dim, whiten=whiten, eps=eps)
    if l2_normalize:
        x = tf.math.l2_normalize(x, axis=1, epsilon=1e-12)
    return x


# === Cluster-balanced sampling ===


def cluster_balanced_indices(assignments, num_samples=None, seed=0):
    """Indices drawn cluster-balanced: every non-empty cluster equally, uniformly within it.

    Each non-empty cluster contributes ``⌈num_samples / C⌉`` indices (without replacement when it
    has enough members, with replacement otherwise), the union is shuffled and cut to
    ``num_samples``, so cluster counts differ by at most one draw per cluster cut (DeepCluster's
    ``UnifLabelSampler``).

    Args:
        assignments: ``(N,)`` cluster index per sample.
        num_samples: how many indices (default ``N``).
        seed: integer seed (NumPy ``default_rng``).

    Returns:
        ``(num_samples,)`` int64 indices into the samples.
    """
    assignments = np.asarray(assignments).reshape(-1)
    if assignments.size == 0:
        raise ValueError("assignments is empty")
    num_samples = assignments.size if num_samples is None else int(num_samples)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1. Received: num_samples={num_samples}")
    rng = np.random.default_rng(seed)
    clusters = np.unique(assignments)
    per_cluster = math.ceil(num_samples / clusters.size)
    picks = []
    for c in clusters:
        members = np.flatnonzero(assignments == c)
        picks.append(rng.choice(members, per_cluster, replace=members.size < per_cluster))
    indices = np.concatenate(picks)
    rng.shuffle(indices)
    return indices[:num_samples].astype(np.int64)


# === Trainer ===


def _pseudo_label_loss(labels, logits):
    """Mean soft-max cross-entropy of the logits against the cluster indices."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


def _is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _as_array(images, name="images"):
    if isinstance(images, tf.data.Dataset):
        batches = [np.asarray(b) for b in images.as_numpy_iterator()]
        if not batches:
            raise ValueError(f"{name}: the dataset is empty")
        images = np.concatenate(batches) if batches[0].ndim == 4 else np.stack(batches)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"{name} must be (N, height, width, channels) images. Received shape {images.shape}"
        )
    return images


def _write_npz(path, values):
    with open(path, "wb") as f:
        np.savez(f, **values)


def _write_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def _save_atomic(path, writer):
    tmp = path + ".tmp"
    writer(tmp)
    os.replace(tmp, path)


class DeepClusterTrainer:
    """DeepCluster's loop around an encoder (see the module docstring).

    Args:
        encoder: a built ``keras.Model``: float32 images 0–255 → ``(B, D)`` features; trained in
            place.
        k: number of clusters (the paper: 10× the classes works well).
        optimizer: the encoder's optimizer (default ``SGD(0.05, momentum=0.9)``, the paper's).
        head_optimizer: the head's optimizer (default: a fresh copy of ``optimizer``'s config);
            its state is reset with the head every epoch.
        batch_size: training batch size (full batches only).
        num_samples: images drawn per epoch (default ``N``).
        pca_dim, whiten, kmeans_iterations: clustering settings (paper: 256, True, 20).
        hidden_units: sizes of a ReLU MLP between the encoder and the top layer (the paper's
            fc6/fc7, 4096 each on AlexNet): it is trained with the encoder and never reset,
            and k-means then runs on its output, as in the paper; ``()`` (the default) puts
            the top layer on the encoder's features and clusters those.
        head_warmup_steps: after each reset, train the new top layer alone for this many
            batches on the features just clustered (``warm_head``; 0, the paper's way, skips it).
        augment: ``None`` or ``fn(images, seed) -> images`` (float32 0–255, batched, stateless
            ``seed`` of shape [2]), applied inside the train step; e.g.
            ``functools.partial(zoo.ssl.simclr.simclr_augment, jitter_prob=0.0)``.
        feature_batch_size: batch size when embedding the images.
        seed: seeds the k-means initialisation, the sampler, the head and the augmentation
            (each epoch ``e`` uses its own stream derived from ``(seed, e)``).
        checkpoint_dir: a folder to save / resume from (see the module docstring).
    """

    def __init__(
        self,
        encoder,
        k,
        optimizer=None,
        head_optimizer=None,
        batch_size=256,
        num_samples=None,
        pca_dim=256,
        whiten=True,
        kmeans_iterations=20,
        hidden_units=(),
        head_warmup_steps=0,
        augment=None,
        feature_batch_size=512,
        seed=0,
        checkpoint_dir=None,
    ):
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"k must be an integer >= 2. Received: k={k!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1. Received: {batch_size!r}")
        hidden_units = tuple(hidden_units or ())
        if not all(_is_positive_int(u) for u in hidden_units):
            raise ValueError(
                f"hidden_units must be positive integers. Received: hidden_units={hidden_units!r}"
            )
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be None or callable. Received: augment={augment!r}")
        shape = getattr(encoder, "output_shape", None)
        if not isinstance(shape, tuple) or len(shape) != 2 or shape[-1] is None:
            raise ValueError(
                "encoder must be a built keras.Model mapping images to (batch, features). "
                f"Received output shape {shape!r}"
            )
        self.encoder = encoder
        self.k = k
        self.batch_size = batch_size
        self.num_samples = num_samples
        self.pca_dim = pca_dim
        self.whiten = whiten
        self.kmeans_iterations = kmeans_iterations
        self.hidden_units = hidden_units
        if not (head_warmup_steps == 0 or _is_positive_int(head_warmup_steps)):
            raise ValueError(
                f"head_warmup_steps must be an integer >= 0. Received: {head_warmup_steps!r}"
            )
        self.head_warmup_steps = int(head_warmup_steps)
        self.augment = augment
        self.feature_batch_size = int(feature_batch_size)
        self.seed = int(seed)
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        # === Classifier: images → encoder → [MLP] → Dense(k); k-means on the MLP's output ===
        images = keras.Input(tuple(encoder.input_shape[1:]), name="images")
        features = encoder(images)
        self.mlp = [
            keras.layers.Dense(units, activation="relu", name=f"deepcluster_fc{i + 1}")
            for i, units in enumerate(hidden_units)
        ]
        for layer in self.mlp:
            features = layer(features)
        self.trunk = keras.Model(images, features, name="deepcluster_trunk")
        self.head = keras.layers.Dense(k, dtype="float32", name="deepcluster_head")
        self.classifier = keras.Model(images, self.head(features), name="deepcluster")
        self.optimizer = optimizer or keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
        self.head_optimizer = head_optimizer or self.optimizer.__class__.from_config(
            self.optimizer.get_config()
        )
        self.optimizer.build(self.trunk.trainable_variables)
        self.head_optimizer.build(self.head.trainable_variables)
        self._head_optimizer_initial = [v.numpy() for v in self.head_optimizer.variables]
        self.classifier.optimizer = self.optimizer  # for LR-scheduling callbacks
        self.history = {}
        self.assignments = None
        self.epochs_done = 0
        self._train_step = tf.function(self._train_step_impl, reduce_retracing=True)
        self._embed_step = tf.function(self._embed_step_impl, reduce_retracing=True)
        self._head_step = tf.function(self._head_step_impl, reduce_retracing=True)

    # --- steps ---

    def _embed_step_impl(self, x):
        return tf.cast(self.trunk(tf.cast(x, tf.float32), training=False), tf.float32)

    def _train_step_impl(self, x, y, seed):
        x = tf.cast(x, tf.float32)
        if self.augment is not None:
            x = tf.cast(self.augment(x, seed), tf.float32)
        encoder_vars = self.trunk.trainable_variables  # the encoder's, then the MLP's
        head_vars = self.head.trainable_variables
        with tf.GradientTape() as tape:
            logits = tf.cast(self.classifier(x, training=True), tf.float32)
            loss = _pseudo_label_loss(y, logits)
            total = loss + tf.add_n(
                [tf.cast(v, tf.float32) for v in self.classifier.losses] or [0.0]
            )
        gradients = tape.gradient(total, encoder_vars + head_vars)
        self.optimizer.apply_gradients(
            zip(gradients[: len(encoder_vars)], encoder_vars, strict=True)
        )
        self.head_optimizer.apply_gradients(
            zip(gradients[len(encoder_vars) :], head_vars, strict=True)
        )
        hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y)
        return loss, tf.reduce_mean(tf.cast(hits, tf.float32))

    # --- pieces of an epoch ---

    def embed(self, images):
        """``(N, D)`` float32 NumPy features that k-means clusters (the encoder's, or the MLP's
        output with ``hidden_units``), in inference mode."""
        images = _as_array(images)
        parts = [
            self._embed_step(tf.convert_to_tensor(images[i : i + self.feature_batch_size])).numpy()
            for i in range(0, len(images), self.feature_batch_size)
        ]
        return np.concatenate(parts)

    def cluster(self, images, epoch=0, features=None):
        """Embed, preprocess and cluster ``images``: a ``KMeansResult`` (assignments = pseudo-labels).
        ``features``: ``self.embed(images)`` when already computed."""
        features = self.embed(images) if features is None else features
        features = preprocess_features(features, pca_dim=self.pca_dim, whiten=self.whiten)
        return kmeans(features, self.k, iterations=self.kmeans_iterations, seed=self.seed + epoch)

    def warm_head(self, features, pseudo_labels, epoch=0):
        """``head_warmup_steps`` steps of the freshly reset head alone on the epoch's embedded
        ``features`` (the trunk frozen: no images pass through it), so that joint training starts
        from a head that already predicts the new pseudo-labels instead of a random one.
        Returns the last step's loss (NaN when there are no steps)."""
        loss = float("nan")
        if not self.head_warmup_steps:
            return loss
        features = tf.convert_to_tensor(features, tf.float32)
        indices = cluster_balanced_indices(
            pseudo_labels, self.head_warmup_steps * self.batch_size, self.seed + 7919 * (epoch + 1)
        )
        labels = tf.convert_to_tensor(np.asarray(pseudo_labels, np.int32))
        for step in range(self.head_warmup_steps):
            batch = indices[step * self.batch_size : (step + 1) * self.batch_size]
            loss = self._head_step(tf.gather(features, batch), tf.gather(labels, batch))
        return float(loss)

    def _head_step_impl(self, features, labels):
        with tf.GradientTape() as tape:
            loss = _pseudo_label_loss(labels, tf.cast(self.head(features), tf.float32))
        variables = self.head.trainable_variables
        self.head_optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables, strict=True)
        )
        return loss

    def reset_head(self, epoch=0):
        """Re-initialise the head (N(0, 0.01²) kernel, zero bias) and its optimizer's state."""
        seed = tf.constant([self.seed, 1_000_003 + epoch], tf.int64)
        kernel = self.head.kernel
        kernel.assign(tf.random.stateless_normal(kernel.shape, seed, stddev=0.01))
        self.head.bias.assign(tf.zeros_like(self.head.bias))
        for variable, value in zip(
            self.head_optimizer.variables, self._head_optimizer_initial, strict=True
        ):
            variable.assign(value)

    def train_epoch(self, images, pseudo_labels, epoch=0):
        """One epoch on cluster-balanced batches; returns ``{"loss", "accuracy"}`` means."""
        images = _as_array(images)
        pseudo_labels = np.asarray(pseudo_labels, dtype=np.int32)
        num = self.num_samples or len(images)
        steps = num // self.batch_size
        if steps < 1:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the samples per epoch ({num})"
            )
        indices = cluster_balanced_indices(
            pseudo_labels, steps * self.batch_size, self.seed + epoch
        )
        epoch_seed = tf.random.experimental.stateless_fold_in(
            tf.constant([self.seed, 2], tf.int64), epoch
        )
        losses, accuracies = [], []
        for step in range(steps):
            batch = indices[step * self.batch_size : (step + 1) * self.batch_size]
            seed = tf.random.experimental.stateless_fold_in(epoch_seed, step)
            loss, accuracy = self._train_step(
                tf.convert_to_tensor(images[batch]),
                tf.convert_to_tensor(pseudo_labels[batch]),
                seed,
            )
            losses.append(float(loss))
            accuracies.append(float(accuracy))
        return {"loss": float(np.mean(losses)), "accuracy": float(np.mean(accuracies))}

    # --- checkpoints ---

    def _mlp_weights(self):
        return [w for layer in self.mlp for w in layer.weights]

    def _paths(self):
        d = self.checkpoint_dir
        return {
            "state": os.path.join(d, "deepcluster_state.json"),
            "encoder": os.path.join(d, "encoder.weights.h5"),
            "mlp": os.path.join(d, "mlp.npz"),
            "optimizer": os.path.join(d, "optimizer.npz"),
            "assignments": os.path.join(d, "assignments.npy"),
        }

    def save_checkpoint(self):
        """Write the encoder (and MLP) weights, optimizer state, history and assignments
        (atomically)."""
        if self.checkpoint_dir is None:
            return
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        paths = self._paths()
        tmp_weights = os.path.join(self.checkpoint_dir, "encoder.tmp.weights.h5")
        self.encoder.save_weights(tmp_weights)  # Keras wants the .weights.h5 suffix
        os.replace(tmp_weights, paths["encoder"])
        values = {f"v{i}": v.numpy() for i, v in enumerate(self.optimizer.variables)}
        _save_atomic(paths["optimizer"], lambda p: _write_npz(p, values))
        if self.mlp:
            mlp = {f"v{i}": v.numpy() for i, v in enumerate(self._mlp_weights())}
            _save_atomic(paths["mlp"], lambda p: _write_npz(p, mlp))
        if self.assignments is not None:
            _save_atomic(paths["assignments"], lambda p: _write_npy(p, self.assignments))
        state = {
            "epochs_done": self.epochs_done,
            "k": self.k,
            "hidden_units": list(self.hidden_units),
            "history": self.history,
        }
        _save_atomic(paths["state"], lambda p: _write_text(p, json.dumps(state)))

    def restore_checkpoint(self):
        """Resume from ``checkpoint_dir`` when it holds a state; returns whether it did."""
        if self.checkpoint_dir is None or not os.path.exists(self._paths()["state"]):
            return False
        paths = self._paths()
        with open(paths["state"]) as f:
            state = json.load(f)
        if state["k"] != self.k:
            raise ValueError(
                f"{paths['state']}: k = {state['k']} but the trainer was built with k={self.k}"
            )
        hidden = tuple(state.get("hidden_units", ()))
        if hidden != self.hidden_units:
            raise ValueError(
                f"{paths['state']}: hidden_units = {hidden} but the trainer was built with "
                f"hidden_units={self.hidden_units}"
            )
        self.encoder.load_weights(paths["encoder"])
        if self.mlp:
            with np.load(paths["mlp"]) as saved:
                for i, variable in enumerate(self._mlp_weights()):
                    variable.assign(saved[f"v{i}"])
        with np.load(paths["optimizer"]) as saved:
            for i, variable in enumerate(self.optimizer.variables):
                variable.assign(saved[f"v{i}"])
        if os.path.exists(paths["assignments"]):
            self.assignments = np.load(paths["assignments"])
        self.history = state["history"]
        self.epochs_done = int(state["epochs_done"])
        return True

    # --- the loop ---

    def fit(self, images, epochs, labels=None, callbacks=None, verbose=0):
        """Run DeepCluster epochs ``epochs_done … epochs − 1`` (see the module docstring).

        Args:
            images: ``(N, H, W, C)`` array (uint8 or float 0–255) or a ``tf.data.Dataset`` of
                images / image batches (materialised in memory: every epoch clusters all of them).
            epochs: total number of epochs (a resumed run continues up to it).
            labels: optional ``(N,)`` true classes, only for the ``nmi`` log.
            callbacks: keras callbacks; they see ``self.classifier`` as their model and get
                ``on_train_begin/end`` and ``on_epoch_begin/end`` with the epoch logs
                (no batch hooks); ``model.stop_training = True`` stops after the epoch.
            verbose: 1 prints one line per epoch.

        Returns:
            The history dict: log name → list of per-epoch values.
        """
        images = _as_array(images)
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if labels.shape[0] != images.shape[0]:
                raise ValueError(
                    f"labels must have one entry per image: {labels.shape[0]} labels for "
                    f"{images.shape[0]} images"
                )
        self.restore_checkpoint()
        callback_list = keras.callbacks.CallbackList(
            callbacks or [], model=self.classifier, epochs=epochs, verbose=0
        )
        self.classifier.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(self.epochs_done, epochs):
            callback_list.on_epoch_begin(epoch)
            start = time.perf_counter()
            features = self.embed(images)
            result = self.cluster(images, epoch, features=features)
            assignments = result.assignments.numpy()
            logs = {
                "nmi": normalized_mutual_info(labels, assignments)
                if labels is not None
                else float("nan"),
                "nmi_previous": normalized_mutual_info(self.assignments, assignments)
                if self.assignments is not None
                else float("nan"),
                "inertia": result.inertia,
                "nonempty_clusters": int(np.unique(assignments).size),
            }
            if labels is None:
                del logs["nmi"]
            self.assignments = assignments
            self.reset_head(epoch)
            if self.head_warmup_steps:
                logs["head_warmup_loss"] = self.warm_head(features, assignments, epoch)
            logs.update(self.train_epoch(images, assignments, epoch))
            logs["seconds"] = time.perf_counter() - start
            for key, value in logs.items():
                self.history.setdefault(key, []).append(float(value))
            self.epochs_done = epoch + 1
            self.save_checkpoint()
            if verbose:
                print(
                    f"DeepCluster epoch {epoch + 1}/{epochs}: "
                    + ", ".join(f"{key}={value:.4g}" for key, value in logs.items())
                )
            callback_list.on_epoch_end(epoch, dict(logs))
            if self.classifier.stop_training:
                break
        callback_list.on_train_end(dict(logs))
        return self.history


def train_deepcluster(
    encoder,
    images,
    k=100,
    epochs=10,
    batch_size=256,
    labels=None,
    augment=None,
    callbacks=None,
    optimizer=None,
    checkpoint_dir=None,
    seed=0,
    verbose=0,
    **options,
):
    """Train ``encoder`` (in place) with DeepCluster; the one-call entry point.

    Args:
        encoder: a built ``keras.Model`` (images 0–255 → ``(B, D)``); its weights are updated.
        images: ``(N, H, W, C)`` unlabeled images (array or ``tf.data.Dataset``).
        k: clusters (pseudo-classes).
        epochs: total epochs (a run resumed from ``checkpoint_dir`` continues up to it).
        batch_size: training batch size.
        labels: optional true classes for the per-epoch ``nmi`` log.
        augment: optional ``fn(images, seed) -> images`` applied in the train step.
        callbacks: keras callbacks (epoch-level hooks; see ``DeepClusterTrainer.fit``).
        optimizer: the encoder's optimizer (default ``SGD(0.05, momentum=0.9)``).
        checkpoint_dir: save after every epoch and resume from here.
        seed: integer seed.
        verbose: 1 prints one line per epoch.
        **options: other ``DeepClusterTrainer`` arguments (``pca_dim``, ``whiten``,
            ``kmeans_iterations``, ``hidden_units``, ``head_warmup_steps``, ``num_samples``,
            ``head_optimizer``, ``feature_batch_size``).

    Returns:
        The history dict: ``loss``, ``accuracy``, ``nmi`` (when ``labels``), ``nmi_previous``,
        ``inertia``, ``nonempty_clusters``, ``seconds`` → per-epoch lists.

    Example:
        >>> history = train_deepcluster(encoder, x_train, k=100, epochs=5, labels=y_train)
    """
    trainer = DeepClusterTrainer(
        encoder,
        k,
        optimizer=optimizer,
        batch_size=batch_size,
        augment=augment,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        **options,
    )
    return trainer.fit(images, epochs, labels=labels, callbacks=callbacks, verbose=verbose)
