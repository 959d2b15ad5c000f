"""Clustering metrics in NumPy: normalised mutual information (NMI).

``NMI(U, V) = I(U; V) / mean(H(U), H(V))`` with the arithmetic mean, scikit-learn's default
(``normalized_mutual_info_score(..., average_method="arithmetic")``), natural logarithms, and the
same limit cases: two labelings that both put every sample in one cluster (or are both empty)
score 1, and a zero mutual information scores 0. NMI is symmetric and invariant to renaming the
labels, so it compares a clustering with the true classes, or two epochs' clusterings
(DeepCluster, Caron et al. 2018).

Example:
    >>> normalized_mutual_info([0, 0, 1, 1], [5, 5, 2, 2])
    1.0
"""

from __future__ import annotations

import numpy as np

__all__ = ["contingency_matrix", "normalized_mutual_info"]


def _labels(values, name):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D. Received shape {array.shape}")
    return array


def contingency_matrix(labels_true, labels_pred):
    """Counts ``n_ij`` of samples with true class ``i`` and cluster ``j`` (sorted label values).

    Args:
        labels_true, labels_pred: 1-D arrays of the same length (any hashable, sortable labels).

    Returns:
        ``(classes, clusters)`` int64 array.
    """
    labels_true = _labels(labels_true, "labels_true")
    labels_pred = _labels(labels_pred, "labels_pred")
    if labels_true.shape != labels_pred.shape:
        raise ValueError(
            f"labels_true and labels_pred must have the same length. Received "
            f"{labels_true.shape[0]} and {labels_pred.shape[0]}"
        )
    _, rows = np.unique(labels_true, return_inverse=True)
    _, cols = np.unique(labels_pred, return_inverse=True)
    n_rows = int(rows.max()) + 1 if rows.size else 0
    n_cols = int(cols.max()) + 1 if cols.size else 0
    counts = np.zeros((n_rows, n_cols), dtype=np.int64)
    np.add.at(counts, (rows.ravel(), cols.ravel()), 1)
    return counts


def _entropy(counts):
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    return float(-np.sum((counts / total) * (np.log(counts) - np.log(total))))


def normalized_mutual_info(labels_true, labels_pred):
    """NMI with arithmetic-mean normalisation (scikit-learn's default), in ``[0, 1]``.

    Args:
        labels_true: ``(N,)`` reference labels (e.g. the classes).
        labels_pred: ``(N,)`` cluster assignments (label values need not match).

    Returns:
        A Python float.

    Example:
        >>> normalized_mutual_info([0, 0, 1, 1], [0, 1, 0, 1])
        0.0
    """
    counts = contingency_matrix(labels_true, labels_pred)
    n_rows, n_cols = counts.shape
    if n_rows == n_cols == 1 or n_rows == n_cols == 0:
        return 1.0  # neither labeling splits the data: a perfect match
    if n_rows == 1 or n_cols == 1:
        return 0.0
    total = float(counts.sum())
    rows_sum = counts.sum(axis=1).astype(np.float64)
    cols_sum = counts.sum(axis=0).astype(np.float64)
    i, j = np.nonzero(counts)
    n_ij = counts[i, j].astype(np.float64)
    # I = Σ n_ij/n · log(n·n_ij / (a_i·b_j)), written as sums of logs for precision
    mi = np.sum(
        (n_ij / total) * (np.log(n_ij) + np.log(total) - np.log(rows_sum[i]) - np.log(cols_sum[j]))
    )
    mi = max(float(mi), 0.0)
    if mi == 0.0:
        return 0.0
    normalizer = 0.5 * (_entropy(rows_sum) + _entropy(cols_sum))
    return float(mi / normalizer)
