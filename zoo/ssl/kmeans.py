"""k-means in TensorFlow, DeepCluster's feature preprocessing and cluster-balanced sampling.

- ``kmeans(features, k)``: k-means++ seeding (or uniform, or given centroids), Lloyd iterations
  with matmul distances (``zoo.ops.distances.pairwise_squared_l2``, clipped at 0), and empty
  clusters re-seeded from the points farthest from their centroid; deterministic for a seed.
- ``pca_whiten`` / ``preprocess_features``: what DeepCluster does before Faiss k-means: PCA to
  ``pca_dim`` components, each scaled by ``1/√(λ + eps)``, then unit rows;
- ``cluster_balanced_indices``: indices drawn equally from every non-empty cluster.

Example:
    >>> result = kmeans(preprocess_features(features, pca_dim=256), k=100, seed=0)
    >>> result.assignments                       # (N,) int32 cluster per row
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from zoo.ops.checks import check_int
from zoo.ops.distances import pairwise_squared_l2
from zoo.ops.random import as_seed

__all__ = [
    "KMEANS_INITS",
    "KMeansResult",
    "cluster_balanced_indices",
    "kmeans",
    "pca_whiten",
    "preprocess_features",
]

KMEANS_INITS = ("k-means++", "random")


class KMeansResult(NamedTuple):
    """``centroids (k, D)`` float32, ``assignments (N,)`` int32, ``inertia`` (Σ squared dist)."""

    centroids: tf.Tensor
    assignments: tf.Tensor
    inertia: float


def _squared_distances(x, centroids):
    return tf.convert_to_tensor(pairwise_squared_l2(x, centroids))


def _kmeans_plus_plus(x, k, seed):
    n = int(x.shape[0])
    seeds = tf.random.experimental.stateless_split(seed, k)
    first = tf.random.stateless_uniform([], seeds[0], 0, n, dtype=tf.int32)
    chosen = [first]
    d2 = _squared_distances(x, tf.gather(x, [first]))[:, 0]
    for i in range(1, k):
        if float(tf.reduce_sum(d2)) > 0:
            logits = tf.where(d2 > 0, tf.math.log(tf.maximum(d2, 1e-30)), -np.inf)
        else:  # every point sits on a centroid already (duplicates): uniform
            logits = tf.zeros_like(d2)
        index = tf.random.stateless_categorical(logits[None], 1, seeds[i], dtype=tf.int32)[0, 0]
        chosen.append(index)
        d2 = tf.minimum(d2, _squared_distances(x, tf.gather(x, [index]))[:, 0])
    return tf.gather(x, tf.stack(chosen))


def _initial_centroids(x, k, init, seed):
    n, d = int(x.shape[0]), int(x.shape[1])
    if isinstance(init, str):
        if init == "k-means++":
            return _kmeans_plus_plus(x, k, seed)
        if init == "random":
            order = tf.argsort(tf.random.stateless_uniform([n], seed))
            return tf.gather(x, order[:k])
        raise ValueError(f"init must be one of {KMEANS_INITS} or an array. Received: {init!r}")
    centroids = tf.cast(tf.convert_to_tensor(init), tf.float32)
    if tuple(centroids.shape) != (k, d):
        raise ValueError(
            f"init centroids must have shape (k, D) = {(k, d)}. Received shape "
            f"{tuple(centroids.shape)}"
        )
    return centroids


def kmeans(features, k, iterations=20, seed=0, init="k-means++"):
    """k-means in TensorFlow (Lloyd's algorithm), deterministic for a seed.

    Args:
        features: ``(N, D)`` array / tensor (cast to float32).
        k: number of clusters, ``1 <= k <= N``.
        iterations: maximum Lloyd iterations (stops earlier when assignments stop changing).
        seed: integer seed (>= 0) of the initialisation.
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
    iterations = check_int("iterations", iterations, minimum=0)
    seed_t = as_seed(tf.constant([check_int("seed", seed, minimum=0), 0], tf.int64))
    centroids = _initial_centroids(x, k, init, seed_t)

    previous = None
    for _ in range(iterations):
        d2 = _squared_distances(x, centroids)
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
    d2 = _squared_distances(x, centroids)
    assignments = tf.argmin(d2, axis=1, output_type=tf.int32)
    inertia = float(tf.reduce_sum(tf.reduce_min(d2, axis=1)))
    return KMeansResult(centroids, assignments, inertia)


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
    dim = min(d if dim is None else check_int("dim", dim), d)
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
