"""Distances between embeddings: pairwise (all rows of ``a`` against all rows of ``b``) and
row-wise (``a[i]`` against ``b[i]``), for ``"squared_l2"``, ``"l2"`` and ``"cosine"``.

=================  ==========================================  ===============================
name               value                                       notes
=================  ==========================================  ===============================
``"squared_l2"``   ``‖a − b‖²``                                clipped at 0 (round-off)
``"l2"``           ``‖a − b‖``                                 ``safe_sqrt``: 0 and a zero
                                                               gradient at zero distance
``"cosine"``       ``1 − a·b / (‖a‖‖b‖)``                      in [0, 2]; zero vectors count
                                                               as orthogonal (distance 1)
=================  ==========================================  ===============================

The pairwise forms use the Gram-matrix expansion ``‖a‖² + ‖b‖² − 2 a·b`` (one matmul), so a
``(N, M)`` matrix costs one ``N × M × D`` product. When ``b`` is omitted the matrix is ``a``
against itself and its diagonal is exactly 0.

Half-precision inputs (float16 / bfloat16) are computed in float32, where the expansion keeps
its precision; results are float32 then.

Example:
    >>> import numpy as np
    >>> a = np.array([[0.0, 0.0], [3.0, 4.0]], "float32")
    >>> np.asarray(pairwise_distance(a, distance="l2")).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
"""

from __future__ import annotations

import numpy as np
from keras import ops

__all__ = [
    "DISTANCES",
    "unit_rows",
    "check_distance",
    "cosine_distance",
    "l2_distance",
    "pairwise_cosine_distance",
    "pairwise_distance",
    "pairwise_l2",
    "pairwise_squared_l2",
    "rowwise_distance",
    "safe_sqrt",
    "squared_l2_distance",
]

DISTANCES = ("squared_l2", "l2", "cosine")
_EPSILON = 1e-12


def check_distance(distance):
    """Return ``distance`` if it is one of ``DISTANCES``, else raise ``ValueError``."""
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}. Received: distance={distance!r}")
    return distance


def _as_float(x):
    x = ops.convert_to_tensor(x)
    if x.dtype in ("float16", "bfloat16") or "int" in str(x.dtype):
        x = ops.cast(x, "float32")
    return x


def safe_sqrt(x):
    """``sqrt(x)`` for ``x >= 0`` whose value AND gradient are finite at 0.

    ``d sqrt(x)/dx = 1 / (2 sqrt(x))`` is infinite at 0, and ``0 * inf = NaN`` poisons the whole
    batch (the classic "identical embeddings" failure). Here the output is 0 and the gradient 0
    where ``x <= 0`` (the double-``where`` trick: the masked branch never sees a 0).

    Args:
        x: tensor, expected ``>= 0`` (negatives from round-off are treated as 0).

    Returns:
        Tensor of ``x``'s shape and dtype.
    """
    x = ops.convert_to_tensor(x)
    positive = ops.greater(x, 0)
    safe = ops.where(positive, x, ops.ones_like(x))
    return ops.where(positive, ops.sqrt(safe), ops.zeros_like(x))


def pairwise_squared_l2(a, b=None):
    """All-pairs squared Euclidean distances ``‖a_i − b_j‖²``.

    Args:
        a: ``(N, D)`` tensor.
        b: ``(M, D)`` tensor, or ``None`` for ``a`` against itself (diagonal exactly 0).

    Returns:
        ``(N, M)`` float tensor, ``>= 0``.
    """
    a = _as_float(a)
    same = b is None
    b = a if same else _as_float(b)
    a2 = ops.sum(ops.square(a), axis=-1)
    b2 = ops.sum(ops.square(b), axis=-1)
    d = a2[:, None] + b2[None, :] - 2.0 * ops.matmul(a, ops.transpose(b))
    d = ops.maximum(d, 0.0)
    if same:
        n = ops.shape(a)[0]
        d = d * (1.0 - ops.eye(n, dtype=d.dtype))
    return d


def pairwise_l2(a, b=None):
    """All-pairs Euclidean distances ``‖a_i − b_j‖`` with ``safe_sqrt`` (finite gradient at 0).

    Args:
        a: ``(N, D)``; b: ``(M, D)`` or ``None`` (``a`` against itself).

    Returns:
        ``(N, M)`` float tensor.
    """
    return safe_sqrt(pairwise_squared_l2(a, b))


def _normalize(x):
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), _EPSILON))
    return x / norm


def pairwise_cosine_distance(a, b=None):
    """All-pairs cosine distances ``1 − cos(a_i, b_j)``, in ``[0, 2]``.

    Args:
        a: ``(N, D)``; b: ``(M, D)`` or ``None`` (``a`` against itself, diagonal exactly 0).

    Returns:
        ``(N, M)`` float tensor.
    """
    a = _normalize(_as_float(a))
    same = b is None
    b = a if same else _normalize(_as_float(b))
    d = ops.clip(1.0 - ops.matmul(a, ops.transpose(b)), 0.0, 2.0)
    if same:
        n = ops.shape(a)[0]
        d = d * (1.0 - ops.eye(n, dtype=d.dtype))
    return d


def pairwise_distance(a, b=None, distance="squared_l2"):
    """All-pairs distance matrix by name (see the module table).

    Args:
        a: ``(N, D)`` embeddings.
        b: ``(M, D)`` embeddings or ``None`` (``a`` against itself; the diagonal is exactly 0).
        distance: ``"squared_l2"``, ``"l2"`` or ``"cosine"``.

    Returns:
        ``(N, M)`` float tensor.

    Example:
        >>> d = pairwise_distance(embeddings, distance="cosine")  # (N, N)
    """
    check_distance(distance)
    if distance == "squared_l2":
        return pairwise_squared_l2(a, b)
    if distance == "l2":
        return pairwise_l2(a, b)
    return pairwise_cosine_distance(a, b)


def squared_l2_distance(a, b):
    """Row-wise ``‖a_i − b_i‖²`` over the last axis (shapes broadcast)."""
    a, b = _as_float(a), _as_float(b)
    return ops.sum(ops.square(a - b), axis=-1)


def l2_distance(a, b):
    """Row-wise ``‖a_i − b_i‖`` with ``safe_sqrt`` (value and gradient finite for ``a == b``)."""
    return safe_sqrt(squared_l2_distance(a, b))


def cosine_distance(a, b):
    """Row-wise ``1 − cos(a_i, b_i)`` over the last axis, in ``[0, 2]``."""
    a, b = _normalize(_as_float(a)), _normalize(_as_float(b))
    return ops.clip(1.0 - ops.sum(a * b, axis=-1), 0.0, 2.0)


def rowwise_distance(a, b, distance="squared_l2"):
    """Row-wise distance by name: ``a[..., i, :]`` against ``b[..., i, :]``.

    Args:
        a, b: tensors ``(..., D)`` of broadcastable shapes.
        distance: ``"squared_l2"``, ``"l2"`` or ``"cosine"``.

    Returns:
        Tensor ``(...)``.
    """
    check_distance(distance)
    if distance == "squared_l2":
        return squared_l2_distance(a, b)
    if distance == "l2":
        return l2_distance(a, b)
    return cosine_distance(a, b)


def unit_rows(x):
    """NumPy: each row of ``x`` scaled to unit L2 norm (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
