"""Metric-learning losses: contrastive (pairs) and triplet (explicit triplets or online mining).

Each loss is a pure function holding the maths plus a thin ``keras.losses.Loss`` that stores the
hyperparameters (serialisable with ``get_config``). Everything is computed in float32 (float16 /
bfloat16 embeddings from a mixed-precision model are cast first) and stays finite: anchors without
a positive or a negative are left out of the mean instead of dividing by zero, and the ``"l2"``
distance uses a square root whose gradient is 0 (not ``inf``) at zero distance.

Contrastive loss — LABEL CONVENTION: ``y = 0`` means a SIMILAR pair (same class), ``y = 1`` a
DISSIMILAR pair. This is Hadsell et al.'s convention. keras.io's Siamese
example uses the opposite one (1 = similar); pass ``similar_label=1`` for that. With ``D`` the
distance between the two embeddings (Euclidean by default):

- ``variant="squared"`` (default): ``L = ½(1−y)·D² + ½·y·max(0, m − D²)`` (margin on the SQUARED
  distance, plain hinge),
- ``variant="hadsell"``: ``L = ½(1−y)·D² + ½·y·max(0, m − D)²`` (margin on the distance,
  squared hinge; Hadsell, Chopra & LeCun, CVPR 2006).

Triplet loss on explicit triplets (``triplet_margin_loss``, for ``build_triplet``): the
``L = ½·max(0, m + d(a, p) − d(a, n))`` with ``d`` the squared Euclidean distance by default.

Triplet loss with online mining over a batch of ``(labels, embeddings)`` (``triplet_loss``,
``TripletLoss``): for every anchor ``a`` with a positive ``p`` (same label, not ``a`` itself) and a
negative ``n`` (other label), the triplet term is ``max(0, m + d(a, p) − d(a, n))`` — the
definition of FaceNet and of tensorflow-addons' ``TripletSemiHardLoss`` / ``TripletHardLoss``
(no ½ factor, so the margin means the same as there; the formula's ½ is a constant scale).

- ``"all"`` (batch-all): every valid triplet; the mean is over the triplets whose term is > 0
  (averaging in the easy zeros would shrink the loss as training proceeds).
- ``"hard"`` (batch-hard, Hermans et al. 2017): per anchor, the farthest positive and the closest
  negative; mean over anchors that have both.
- ``"semi-hard"`` (FaceNet, Schroff et al. 2015): per (anchor, positive) pair, the closest
  negative that is farther than the positive (``d(a, n) > d(a, p)``; the ones within the margin
  are the only ones with a non-zero term, and the closest is one of them when any exists). When no
  negative is farther, ``semi_hard_fallback="hardest"`` (default) takes the closest negative;
  ``"easiest"`` takes the farthest, which is what tensorflow-addons did. Mean over all
  (anchor, positive) pairs whose anchor has a negative, as tensorflow-addons.

The semi-hard search is vectorised: each anchor's negative distances are sorted once
(``B log B`` per row) and every positive's distance is looked up with a batched binary search
(``tf.searchsorted``), so no ``B × B × B`` tensor is built and no Python loop runs over the batch.

Example:
    >>> loss = TripletLoss(margin=0.2, mining="semi-hard", distance="squared_l2")
    >>> value = loss(labels, embeddings)            # labels (B,), embeddings (B, D)
    >>> pair_loss = ContrastiveLoss(margin=1.0)     # y = 0 for a SIMILAR pair
    >>> value = pair_loss(y, distances)             # or y, (B, 2, D) pair embeddings

References:
    Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", 2006.
    Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015.
    Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification", 2017.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.ops.distances import (
    check_distance,
    pairwise_distance,
    rowwise_distance,
    safe_sqrt,
    squared_l2_distance,
)

__all__ = [
    "BatchContrastiveLoss",
    "CONTRASTIVE_AVERAGES",
    "CONTRASTIVE_VARIANTS",
    "ContrastiveLoss",
    "MINING_MODES",
    "TRIPLET_AVERAGES",
    "TripletLoss",
    "TripletMarginLoss",
    "batch_all_triplet_loss",
    "batch_contrastive_loss",
    "batch_hard_triplet_loss",
    "batch_semi_hard_triplet_loss",
    "contrastive_loss",
    "triplet_loss",
    "triplet_margin_loss",
]

MINING_MODES = ("all", "hard", "semi-hard")
CONTRASTIVE_VARIANTS = ("squared", "hadsell")
CONTRASTIVE_AVERAGES = ("pairs", "active")
TRIPLET_AVERAGES = ("triplets", "active")
_SEMI_HARD_FALLBACKS = ("hardest", "easiest")


def _float32(x):
    x = ops.convert_to_tensor(x)
    return x if x.dtype == "float32" else ops.cast(x, "float32")


def _check_margin(margin):
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"margin must be a number >= 0. Received: margin={margin!r}")
    return float(margin)


# === Contrastive ===


def _is_pair(y_pred):
    """A list / tuple of embedding batches of rank 2 (a list of numbers is a distance vector)."""
    return (
        isinstance(y_pred, (list, tuple))
        and len(y_pred) > 0
        and all(len(getattr(t, "shape", None) or np.shape(t)) >= 2 for t in y_pred)
    )


def _pair_squared_distance(y_pred, distance):
    """``(D², D)`` from a distance vector, a ``(B, 2, D)`` pair tensor or an ``(a, b)`` tuple.

    ``D`` is computed lazily for the squared variant (``None`` means "not needed yet").
    """
    if _is_pair(y_pred):
        if len(y_pred) != 2:
            raise ValueError(
                f"y_pred as a sequence must hold two embedding tensors (a, b). Received "
                f"{len(y_pred)} items."
            )
        a, b = _float32(y_pred[0]), _float32(y_pred[1])
    else:
        y_pred = _float32(y_pred)
        rank = len(y_pred.shape)
        if rank == 3:
            if y_pred.shape[1] != 2:
                raise ValueError(
                    "y_pred of rank 3 must be pair embeddings of shape (batch, 2, dim). Received "
                    f"shape {tuple(y_pred.shape)}"
                )
            a, b = y_pred[:, 0], y_pred[:, 1]
        elif rank in (1, 2):
            if rank == 2 and y_pred.shape[-1] != 1:
                raise ValueError(
                    "y_pred of rank 2 must be distances of shape (batch, 1); pass pair embeddings "
                    f"as (batch, 2, dim) or a tuple (a, b). Received shape {tuple(y_pred.shape)}"
                )
            d = ops.reshape(y_pred, (-1,))
            return ops.square(d), d
        else:
            raise ValueError(
                "y_pred must be distances (batch,) / (batch, 1) or pair embeddings (batch, 2, dim)."
                f" Received shape {tuple(y_pred.shape)}"
            )
    if distance == "l2":
        d2 = squared_l2_distance(a, b)
        return d2, None
    d = rowwise_distance(a, b, distance)
    return ops.square(d), d


def _check_contrastive(margin, variant, average):
    if variant not in CONTRASTIVE_VARIANTS:
        raise ValueError(
            f"variant must be one of {CONTRASTIVE_VARIANTS}. Received: variant={variant!r}"
        )
    if average not in CONTRASTIVE_AVERAGES:
        raise ValueError(
            f"average must be one of {CONTRASTIVE_AVERAGES}. Received: average={average!r}"
        )
    return _check_margin(margin)


def _contrastive_terms(d2, d, margin, variant):
    """``(½D², the dissimilar term)`` of every pair: ``½max(0, m − D²)`` or ``½max(0, m − D)²``."""
    if variant == "squared":
        hinge = ops.relu(margin - d2)
    else:
        hinge = ops.square(ops.relu(margin - (safe_sqrt(d2) if d is None else d)))
    return 0.5 * d2, 0.5 * hinge


def _active_average(similar_terms, dissimilar_terms, similar, dissimilar):
    """Mean over the similar pairs + mean over the dissimilar pairs inside the margin."""
    active = ops.logical_and(dissimilar, ops.greater(dissimilar_terms, 0.0))
    return _masked_mean(similar_terms, similar) + _masked_mean(dissimilar_terms, active)


def contrastive_loss(
    y_true,
    y_pred,
    margin=1.0,
    variant="squared",
    similar_label=0,
    distance="l2",
    average="pairs",
):
    """Per-pair contrastive loss. ``y_true = 0`` means SIMILAR (see the module docstring).

    Args:
        y_true: ``(B,)`` or ``(B, 1)`` pair labels: ``similar_label`` for a similar pair, the other
            of {0, 1} for a dissimilar one.
        y_pred: either the distances ``D`` of the pairs, ``(B,)`` or ``(B, 1)`` (e.g. the
            ``"distance"`` output of ``build_siamese``), or the pair embeddings as a
            ``(B, 2, dim)`` tensor or a tuple ``(a, b)`` of ``(B, dim)`` tensors.
        margin: ``m >= 0``.
        variant: ``"squared"``: ``½(1−y)D² + ½·y·max(0, m − D²)``; ``"hadsell"``:
            ``½(1−y)D² + ½·y·max(0, m − D)²``.
        similar_label: the label of a similar pair, 0 (default, as Hadsell et al.) or 1 (keras.io).
        distance: how ``D`` is computed from embeddings (``"l2"``, ``"squared_l2"``,
            ``"cosine"``); ignored when ``y_pred`` already holds distances.
        average: ``"pairs"`` (default): the per-pair losses, for the caller to average;
            ``"active"``: one scalar, the mean over the similar pairs plus the mean over the
            dissimilar pairs still inside the margin (the only ones with a gradient).

    Returns:
        ``(B,)`` float32 losses, or a scalar with ``average="active"``.

    Example:
        >>> contrastive_loss([0, 1], [0.5, 0.5], margin=1.0).numpy()   # ½·0.25, ½·(1 − 0.25)
        array([0.125, 0.375], dtype=float32)
    """
    margin = _check_contrastive(margin, variant, average)
    if similar_label not in (0, 1):
        raise ValueError(f"similar_label must be 0 or 1. Received: similar_label={similar_label!r}")
    check_distance(distance)
    d2, d = _pair_squared_distance(y_pred, distance)
    y = ops.reshape(_float32(y_true), (-1,))
    dissimilar = y if similar_label == 0 else 1.0 - y
    similar_terms, dissimilar_terms = _contrastive_terms(d2, d, margin, variant)
    if average == "active":
        is_dissimilar = ops.greater(dissimilar, 0.5)
        return _active_average(
            similar_terms, dissimilar_terms, ops.logical_not(is_dissimilar), is_dissimilar
        )
    return (1.0 - dissimilar) * similar_terms + dissimilar * dissimilar_terms


@keras.saving.register_keras_serializable(package="zoo")
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss for pairs. LABEL CONVENTION: ``y = 0`` is a SIMILAR pair.

    ``variant="squared"`` (default): ``L = ½(1−y)·D² + ½·y·max(0, m − D²)``.
    ``variant="hadsell"``: ``L = ½(1−y)·D² + ½·y·max(0, m − D)²``.
    Set ``similar_label=1`` for data labelled the keras.io way (1 = similar).

    Args:
        margin: ``m >= 0``. With unit-norm embeddings and the squared variant, ``D² <= 4``.
        variant: ``"squared"`` or ``"hadsell"``.
        similar_label: 0 (default) or 1: the label that marks a similar pair.
        distance: distance used when ``y_pred`` holds pair embeddings (``"l2"`` default).
        average: ``"pairs"`` (default: the mean over the batch's pairs) or ``"active"`` (the
            mean over similar pairs plus the mean over dissimilar pairs inside the margin; see
            ``contrastive_loss``).
        name, reduction, dtype: as ``keras.losses.Loss``.

    Call:
        ``loss(y_true, y_pred)``: ``y_pred`` is the pair distance ``(B,)`` / ``(B, 1)`` or the
        pair embeddings ``(B, 2, dim)`` (or a tuple ``(a, b)``).

    Example:
        >>> loss = ContrastiveLoss(margin=1.0)
        >>> float(loss([0.0, 1.0], [0.5, 0.5]))        # mean of 0.125 and 0.375
        0.25
    """

    def __init__(
        self,
        margin=1.0,
        variant="squared",
        similar_label=0,
        distance="l2",
        average="pairs",
        name="contrastive_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _check_contrastive(margin, variant, average)
        self.average = average
        if similar_label not in (0, 1):
            raise ValueError(
                f"similar_label must be 0 or 1. Received: similar_label={similar_label!r}"
            )
        self.variant = variant
        self.similar_label = int(similar_label)
        self.distance = check_distance(distance)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if _is_pair(y_pred):  # Keras would treat a tuple as nested outputs
            y_pred = ops.stack([_float32(t) for t in y_pred], axis=1)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return contrastive_loss(
            y_true,
            y_pred,
            margin=self.margin,
            variant=self.variant,
            similar_label=self.similar_label,
            distance=self.distance,
            average=self.average,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            margin=self.margin,
            variant=self.variant,
            similar_label=self.similar_label,
            distance=self.distance,
            average=self.average,
        )
        return config


def batch_contrastive_loss(
    labels, embeddings, margin=1.0, variant="squared", distance="l2", average="active"
):
    """The contrastive loss over EVERY pair of a labelled batch (Siamese pairs formed in-batch).

    Each of the ``B(B−1)`` ordered pairs ``(i, j)`` is a Siamese pair through the one tower, with
    ``y = 0`` when ``labels[i] == labels[j]`` (similar) and ``y = 1`` otherwise, and the same
    per-pair formula as ``contrastive_loss``. A P×K batch of ``B`` images thus gives ``B(B−1)``
    pairs for ``B`` forward passes.

    Args:
        labels: ``(B,)`` integer class labels.
        embeddings: ``(B, dim)``.
        margin, variant: as ``contrastive_loss``.
        distance: ``D``: ``"l2"`` (default), ``"squared_l2"`` or ``"cosine"``.
        average: ``"active"`` (default): mean over the similar pairs plus mean over the
            dissimilar pairs inside the margin; ``"pairs"``: mean over every pair.

    Returns:
        Scalar float32.
    """
    margin = _check_contrastive(margin, variant, average)
    check_distance(distance)
    embeddings = _float32(embeddings)
    if distance == "l2":
        d2, d = pairwise_distance(embeddings, distance="squared_l2"), None
    else:
        d = pairwise_distance(embeddings, distance=distance)
        d2 = ops.square(d)
    similar, dissimilar = _masks(labels, ops.shape(embeddings)[0])
    similar_terms, dissimilar_terms = _contrastive_terms(d2, d, margin, variant)
    if average == "active":
        return _active_average(similar_terms, dissimilar_terms, similar, dissimilar)
    terms = ops.where(similar, similar_terms, ops.where(dissimilar, dissimilar_terms, 0.0))
    return _masked_mean(terms, ops.logical_or(similar, dissimilar))


@keras.saving.register_keras_serializable(package="zoo")
class BatchContrastiveLoss(keras.losses.Loss):
    """The contrastive loss over every pair of a labelled batch (``batch_contrastive_loss``).

    Trains the tower directly, like ``TripletLoss``: ``loss(labels, embeddings)`` on P×K batches
    (``pk_batches``); pairs of the same label are similar (``y = 0``).

    Args:
        margin, variant, distance, average: as ``batch_contrastive_loss``.
        name, reduction, dtype: as ``keras.losses.Loss``.

    Example:
        >>> encoder.compile("adam", loss=BatchContrastiveLoss(margin=1.0))
        >>> encoder.fit(pk_batches(images, labels, p=10, k=8), steps_per_epoch=200)
    """

    def __init__(
        self,
        margin=1.0,
        variant="squared",
        distance="l2",
        average="active",
        name="batch_contrastive_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _check_contrastive(margin, variant, average)
        self.variant = variant
        self.distance = check_distance(distance)
        self.average = average

    def call(self, y_true, y_pred):
        return batch_contrastive_loss(
            y_true, y_pred, self.margin, self.variant, self.distance, self.average
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            margin=self.margin, variant=self.variant, distance=self.distance, average=self.average
        )
        return config


# === Explicit triplets ===


def triplet_margin_loss(anchor, positive, negative, margin=1.0, distance="squared_l2"):
    """The triplet loss on explicit triplets: ``½·max(0, m + d(a, p) − d(a, n))``.

    Args:
        anchor, positive, negative: ``(B, dim)`` embeddings.
        margin: ``m >= 0``.
        distance: ``"squared_l2"`` (the formula's ``‖·‖²``), ``"l2"`` or ``"cosine"``.

    Returns:
        ``(B,)`` float32 losses.

    Example:
        >>> triplet_margin_loss([[0.0]], [[1.0]], [[3.0]], margin=1.0).numpy()  # ½·max(0, 1+1−9)
        array([0.], dtype=float32)
    """
    margin = _check_margin(margin)
    check_distance(distance)
    d_ap = rowwise_distance(_float32(anchor), _float32(positive), distance)
    d_an = rowwise_distance(_float32(anchor), _float32(negative), distance)
    return 0.5 * ops.relu(margin + d_ap - d_an)


@keras.saving.register_keras_serializable(package="zoo")
class TripletMarginLoss(keras.losses.Loss):
    """``½·max(0, m + d(a, p) − d(a, n))`` on explicit triplets (the output of ``build_triplet``).

    Args:
        margin: ``m >= 0``.
        distance: ``"squared_l2"`` (default), ``"l2"`` or ``"cosine"``.
        average: ``"triplets"`` (default): the mean over the batch's triplets; ``"active"``: the
            mean over the triplets with a non-zero term (as batch-all), so the easy triplets that
            random sampling mostly draws do not dilute the hard ones.

    Call:
        ``loss(y_true, y_pred)`` with ``y_pred`` of shape ``(B, 3, dim)`` holding the anchor,
        positive and negative embeddings; ``y_true`` is ignored (pass zeros).

    Example:
        >>> model = build_triplet(encoder)
        >>> model.compile("adam", loss={"embeddings": TripletMarginLoss(margin=0.2)})
    """

    def __init__(
        self,
        margin=1.0,
        distance="squared_l2",
        average="triplets",
        name="triplet_margin_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _check_margin(margin)
        self.distance = check_distance(distance)
        if average not in TRIPLET_AVERAGES:
            raise ValueError(
                f"average must be one of {TRIPLET_AVERAGES}. Received: average={average!r}"
            )
        self.average = average

    def call(self, y_true, y_pred):
        y_pred = _float32(y_pred)
        if len(y_pred.shape) != 3 or y_pred.shape[1] != 3:
            raise ValueError(
                "TripletMarginLoss expects y_pred of shape (batch, 3, dim) = anchor, positive, "
                f"negative. Received shape {tuple(y_pred.shape)}"
            )
        terms = triplet_margin_loss(
            y_pred[:, 0], y_pred[:, 1], y_pred[:, 2], self.margin, self.distance
        )
        if self.average == "active":
            return _masked_mean(terms, ops.greater(terms, 0.0))
        return terms

    def get_config(self):
        config = super().get_config()
        config.update(margin=self.margin, distance=self.distance, average=self.average)
        return config


# === Online mining ===


def _masks(labels, batch_size):
    labels = ops.reshape(ops.convert_to_tensor(labels), (-1,))
    if "float" in str(labels.dtype):
        labels = ops.cast(ops.round(labels), "int32")
    same = ops.equal(labels[:, None], labels[None, :])
    not_self = ops.logical_not(ops.cast(ops.eye(batch_size), "bool"))
    positive = ops.logical_and(same, not_self)
    negative = ops.logical_not(same)
    return positive, negative


def _masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    count = ops.sum(mask)
    return ops.sum(values * mask) / ops.maximum(count, 1.0)


def _prepare(labels, embeddings, margin, distance):
    margin = _check_margin(margin)
    check_distance(distance)
    embeddings = _float32(embeddings)
    if len(embeddings.shape) != 2:
        raise ValueError(
            f"embeddings must have shape (batch, dim). Received shape {tuple(embeddings.shape)}"
        )
    d = pairwise_distance(embeddings, distance=distance)
    positive, negative = _masks(labels, ops.shape(embeddings)[0])
    return margin, d, positive, negative


def batch_all_triplet_loss(labels, embeddings, margin=1.0, distance="squared_l2"):
    """Batch-all: mean of ``max(0, m + d_ap − d_an)`` over the valid triplets where it is > 0.

    Builds a ``(B, B, B)`` tensor (every anchor, positive, negative); fine for B up to a few
    hundred.

    Args:
        labels: ``(B,)`` integer class labels.
        embeddings: ``(B, dim)``.
        margin: ``m >= 0``.
        distance: ``"squared_l2"``, ``"l2"`` or ``"cosine"``.

    Returns:
        Scalar float32 (0 when no triplet has a positive term).
    """
    margin, d, positive, negative = _prepare(labels, embeddings, margin, distance)
    terms = ops.relu(margin + d[:, :, None] - d[:, None, :])
    valid = ops.logical_and(positive[:, :, None], negative[:, None, :])
    active = ops.logical_and(valid, ops.greater(terms, 1e-16))
    return _masked_mean(terms, active)


def batch_hard_triplet_loss(labels, embeddings, margin=1.0, distance="squared_l2"):
    """Batch-hard: per anchor, ``max(0, m + max_p d_ap − min_n d_an)``; mean over anchors with a
    positive and a negative.

    Args:
        labels, embeddings, margin, distance: as ``batch_all_triplet_loss``.

    Returns:
        Scalar float32 (0 when no anchor has both a positive and a negative).
    """
    margin, d, positive, negative = _prepare(labels, embeddings, margin, distance)
    zeros = ops.zeros_like(d)
    big = ops.stop_gradient(ops.max(d)) + 1.0
    hardest_positive = ops.max(ops.where(positive, d, zeros), axis=1)
    hardest_negative = ops.min(ops.where(negative, d, zeros + big), axis=1)
    valid = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
    return _masked_mean(ops.relu(margin + hardest_positive - hardest_negative), valid)


def batch_semi_hard_triplet_loss(
    labels, embeddings, margin=1.0, distance="squared_l2", semi_hard_fallback="hardest"
):
    """FaceNet semi-hard: per (anchor, positive), the closest negative with ``d_an > d_ap``.

    When an anchor has no negative farther than the positive, ``semi_hard_fallback="hardest"``
    takes its closest negative, ``"easiest"`` its farthest (tensorflow-addons' behaviour). Mean of
    ``max(0, m + d_ap − d_an)`` over all (anchor, positive) pairs whose anchor has a negative.

    Sort-based and vectorised (see the module docstring): ``O(B² log B)`` work, ``O(B²)`` memory.

    Args:
        labels, embeddings, margin, distance: as ``batch_all_triplet_loss``.
        semi_hard_fallback: ``"hardest"`` (default) or ``"easiest"``.

    Returns:
        Scalar float32.
    """
    if semi_hard_fallback not in _SEMI_HARD_FALLBACKS:
        raise ValueError(
            f"semi_hard_fallback must be one of {_SEMI_HARD_FALLBACKS}. Received: "
            f"semi_hard_fallback={semi_hard_fallback!r}"
        )
    margin, d, positive, negative = _prepare(labels, embeddings, margin, distance)
    batch = ops.shape(d)[0]
    inf = ops.full_like(d, float("inf"))
    negative_d = ops.where(negative, d, inf)
    # Each anchor's distances sorted ascending with non-negatives (inf) last; ``order`` maps back.
    order = ops.argsort(negative_d, axis=1)
    sorted_negative = ops.take_along_axis(negative_d, order, axis=1)
    num_negative = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)  # (B, 1)
    # Number of negatives with d_an <= d_ap: the index of the first one strictly farther.
    first_farther = tf.searchsorted(
        ops.stop_gradient(sorted_negative), ops.stop_gradient(d), side="right", out_type=tf.int32
    )
    has_semi_hard = ops.less(first_farther, num_negative)
    if semi_hard_fallback == "hardest":
        fallback = ops.zeros_like(first_farther)
    else:
        fallback = ops.maximum(num_negative - 1, 0) + ops.zeros_like(first_farther)
    position = ops.minimum(ops.where(has_semi_hard, first_farther, fallback), batch - 1)
    negative_index = ops.take_along_axis(order, position, axis=1)
    d_an = ops.take_along_axis(d, negative_index, axis=1)  # gradient flows through d
    valid = ops.logical_and(positive, ops.greater(num_negative, 0))
    return _masked_mean(ops.relu(margin + d - d_an), valid)


def triplet_loss(
    labels,
    embeddings,
    margin=1.0,
    mining="semi-hard",
    distance="squared_l2",
    semi_hard_fallback="hardest",
):
    """Triplet loss with online mining over a batch (see the module docstring for the modes).

    Args:
        labels: ``(B,)`` or ``(B, 1)`` integer class labels (floats are rounded).
        embeddings: ``(B, dim)``; float16 / bfloat16 are computed in float32.
        margin: ``m >= 0``.
        mining: ``"all"``, ``"hard"`` or ``"semi-hard"``.
        distance: ``"squared_l2"``, ``"l2"`` or ``"cosine"``.
        semi_hard_fallback: ``"hardest"`` or ``"easiest"`` (semi-hard only).

    Returns:
        Scalar float32 loss.

    Example:
        >>> triplet_loss([0, 0, 1, 1], embeddings, margin=0.2, mining="hard")
    """
    if mining not in MINING_MODES:
        raise ValueError(f"mining must be one of {MINING_MODES}. Received: mining={mining!r}")
    if mining == "all":
        return batch_all_triplet_loss(labels, embeddings, margin, distance)
    if mining == "hard":
        return batch_hard_triplet_loss(labels, embeddings, margin, distance)
    return batch_semi_hard_triplet_loss(labels, embeddings, margin, distance, semi_hard_fallback)


@keras.saving.register_keras_serializable(package="zoo")
class TripletLoss(keras.losses.Loss):
    """Triplet loss with online mining; a drop-in for tensorflow-addons' triplet losses.

    ``TripletLoss(margin=1.0, mining="semi-hard", distance="l2", semi_hard_fallback="easiest")``
    computes exactly what ``tfa.losses.TripletSemiHardLoss()`` did;
    ``mining="hard", distance="l2"`` what ``tfa.losses.TripletHardLoss()`` did.

    Args:
        margin: ``m >= 0`` (for unit-norm embeddings and ``"squared_l2"``, distances lie in
            [0, 4]; 0.2–0.5 is typical).
        mining: ``"semi-hard"`` (default), ``"hard"`` or ``"all"``.
        distance: ``"squared_l2"`` (default), ``"l2"`` or ``"cosine"``.
        semi_hard_fallback: ``"hardest"`` (default) or ``"easiest"``.
        warmup_steps: the first ``warmup_steps`` calls (training steps) use semi-hard mining
            whatever ``mining`` says: batch-hard on an untrained tower, whose embeddings all sit
            close together, pulls them onto one point (a collapse); after a warm-up it trains.
            The count restarts with a new loss object (it is not saved).
        name, reduction, dtype: as ``keras.losses.Loss``.

    Call:
        ``loss(labels, embeddings)``: ``labels (B,)``, ``embeddings (B, dim)``; the batch needs
        several examples per class (use ``zoo.metric_learning.sampling.pk_batches``). Returns a
        scalar.

    Example:
        >>> model.compile("adam", loss=TripletLoss(margin=0.2, mining="semi-hard"))
        >>> model.fit(pk_batches(images, labels, p=16, k=4), steps_per_epoch=200)
    """

    def __init__(
        self,
        margin=1.0,
        mining="semi-hard",
        distance="squared_l2",
        semi_hard_fallback="hardest",
        warmup_steps=0,
        name="triplet_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _check_margin(margin)
        if mining not in MINING_MODES:
            raise ValueError(f"mining must be one of {MINING_MODES}. Received: mining={mining!r}")
        if semi_hard_fallback not in _SEMI_HARD_FALLBACKS:
            raise ValueError(
                f"semi_hard_fallback must be one of {_SEMI_HARD_FALLBACKS}. Received: "
                f"semi_hard_fallback={semi_hard_fallback!r}"
            )
        self.mining = mining
        self.distance = check_distance(distance)
        self.semi_hard_fallback = semi_hard_fallback
        is_int = isinstance(warmup_steps, (int, np.integer)) and not isinstance(warmup_steps, bool)
        if not is_int or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0. Received: {warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)
        self.calls = None
        if self.warmup_steps and mining != "semi-hard":
            self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="triplet_calls")

    def call(self, y_true, y_pred):
        def loss(mining):
            return triplet_loss(
                y_true, y_pred, self.margin, mining, self.distance, self.semi_hard_fallback
            )

        if self.calls is None:
            return loss(self.mining)
        step = self.calls.assign_add(1)  # one mining computed per step, not both
        return tf.cond(
            step <= self.warmup_steps, lambda: loss("semi-hard"), lambda: loss(self.mining)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            margin=self.margin,
            mining=self.mining,
            distance=self.distance,
            semi_hard_fallback=self.semi_hard_fallback,
            warmup_steps=self.warmup_steps,
        )
        return config
