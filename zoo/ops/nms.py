"""Non-max suppression (hard and Gaussian soft), single image, class-aware and batched.

Everything here rides on one TensorFlow op, ``NonMaxSuppressionV5`` (what
``tf.image.non_max_suppression_with_scores`` calls), which TFLite has as the builtin
``NON_MAX_SUPPRESSION_V5``: a model that uses these functions converts with
``tf.lite.OpsSet.TFLITE_BUILTINS`` only (no Flex ops). ``tf.image.combined_non_max_suppression``
is not used (Flex only), nor ``tf.image.non_max_suppression_padded`` (in TF 2 that is a pure-TF
re-implementation, not the V4 kernel).

Semantics (the NMS rule, the defaults from YOLO):

1. drop every box with score ``<= score_threshold`` (kept: ``score > score_threshold``);
2. take the highest-scoring remaining box, keep it;
3. drop every remaining box with ``IoU >= iou_threshold`` to it; repeat from 2.

TF's kernel keeps ``score > score_threshold`` (as the rule), but suppresses only on
``IoU > iou_threshold``; the zoo therefore passes the float32 just below ``iou_threshold``
(``np.nextafter``), which makes ``IoU >= iou_threshold`` exact in float32.

Details that follow from the kernel, and hold for every function here:

* equal scores: the lower input index comes first (TF's priority queue order);
* IoU is computed in float32 on the corners in either order (the kernel takes min/max of each
  pair of coordinates); a box of zero area has IoU 0 with every box, so it never suppresses and
  is never suppressed;
* TFLite's ``NON_MAX_SUPPRESSION_V5`` kernel differs in three corner cases: it suppresses on
  ``IoU >= threshold`` (so after the nextafter shift it also suppresses an IoU exactly equal to
  the float32 just below ``iou_threshold``), its order among equal scores is unspecified, and in
  soft-NMS mode it also hard-suppresses boxes identical to a selected one (IoU = 1), which TF
  only rescales.
"""

import numpy as np
import tensorflow as tf

from zoo.ops.boxes import _to_corners, check_box_format
from zoo.ops.checks import check_int

__all__ = [
    "batched_non_max_suppression",
    "non_max_suppression",
    "soft_non_max_suppression",
]


def _check_args(iou_threshold, score_threshold, max_output_size, soft_nms_sigma=0.0):
    check_int("max_output_size", max_output_size)
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(
            f"iou_threshold must be in (0, 1]. Received: iou_threshold={iou_threshold}"
        )
    if not np.isfinite(float(score_threshold)):
        raise ValueError(
            f"score_threshold must be a finite number. Received: score_threshold={score_threshold}"
        )
    if not float(soft_nms_sigma) >= 0.0:
        raise ValueError(f"soft_nms_sigma must be >= 0. Received: soft_nms_sigma={soft_nms_sigma}")


def _kernel_iou_threshold(iou_threshold):
    """The float32 threshold that makes TF's ``IoU > t`` mean the rule's ``IoU >= iou_threshold``."""
    return np.nextafter(np.float32(iou_threshold), np.float32(-np.inf))


def _nms_padded(corners, scores, iou_threshold, score_threshold, max_output_size, soft_nms_sigma):
    """One image: ``NonMaxSuppressionV5`` padded to ``max_output_size``.

    Returns ``(indices, scores, num_valid)``; padded entries hold index 0 and score 0.
    """
    if soft_nms_sigma > 0.0:
        # TF ignores iou_threshold in soft mode; 1.0 keeps TFLite (IoU >= t) close to it.
        kernel_threshold = np.float32(1.0)
    else:
        kernel_threshold = _kernel_iou_threshold(iou_threshold)
    indices, selected_scores, num_valid = tf.raw_ops.NonMaxSuppressionV5(
        boxes=corners,
        scores=scores,
        max_output_size=max_output_size,
        iou_threshold=kernel_threshold,
        score_threshold=np.float32(score_threshold),
        soft_nms_sigma=np.float32(soft_nms_sigma),
        pad_to_max_output_size=True,
    )
    return indices, selected_scores, num_valid


def _prepare(boxes, scores, box_format):
    corners = tf.cast(_to_corners(boxes, box_format), tf.float32)
    scores = tf.cast(tf.convert_to_tensor(scores), tf.float32)
    return corners, scores


def non_max_suppression(
    boxes,
    scores,
    iou_threshold=0.5,
    score_threshold=0.6,
    max_output_size=100,
    box_format="xyxy",
):
    """Greedy NMS for one image: indices of the kept boxes, best first.

    Drops boxes with ``score <= score_threshold``, then repeatedly keeps the best remaining box
    and drops the boxes with ``IoU >= iou_threshold`` to it (see the module docstring for ties,
    zero-area boxes and TFLite).

    Args:
        boxes: ``(N, 4)`` boxes in ``box_format``.
        scores: ``(N,)`` scores, e.g. YOLO's ``p_c * P(class)``.
        iou_threshold: float in (0, 1]; boxes with IoU >= this to a kept box are dropped.
        score_threshold: boxes with score <= this are dropped.
        max_output_size: Python int, the most boxes returned.
        box_format: a Keras box format name.

    Returns:
        ``(K,)`` int32 indices into ``boxes``, ``K <= max_output_size``, in decreasing score.

    Example:
        >>> boxes = [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]
        >>> non_max_suppression(boxes, [0.9, 0.8, 0.7])  # doctest: +SKIP
        [0, 2]
    """
    check_box_format(box_format)
    _check_args(iou_threshold, score_threshold, max_output_size)
    corners, scores = _prepare(boxes, scores, box_format)
    indices, _, num_valid = _nms_padded(
        corners, scores, iou_threshold, score_threshold, max_output_size, 0.0
    )
    return indices[:num_valid]


def soft_non_max_suppression(
    boxes,
    scores,
    soft_nms_sigma=0.5,
    score_threshold=0.6,
    max_output_size=100,
    box_format="xyxy",
):
    """Gaussian Soft-NMS for one image (Bodla et al. 2017): indices and rescored scores.

    Repeatedly takes the box with the highest current score, keeps it, and multiplies the score
    of every remaining box by ``exp(-IoU^2 / (2 * soft_nms_sigma))`` (TF's convention: the
    paper's ``sigma`` is ``2 * soft_nms_sigma``); boxes whose current score is
    ``<= score_threshold`` are dropped. There is no IoU threshold in soft mode.

    Args:
        boxes: ``(N, 4)`` boxes in ``box_format``.
        scores: ``(N,)`` scores.
        soft_nms_sigma: float > 0, the Gaussian width.
        score_threshold: boxes whose (rescored) score is <= this are dropped.
        max_output_size: Python int, the most boxes returned.
        box_format: a Keras box format name.

    Returns:
        ``(indices, scores)``: ``(K,)`` int32 indices in the order selected (decreasing
        rescored score) and ``(K,)`` float32 rescored scores, ``K <= max_output_size``.

    Example:
        >>> boxes = [[0, 0, 2, 1], [0, 0, 1, 1]]  # IoU 0.5
        >>> soft_non_max_suppression(boxes, [0.9, 0.8], score_threshold=0.1)  # doctest: +SKIP
        ([0, 1], [0.9, 0.623])  # 0.8 * exp(-0.25 / 1)
    """
    check_box_format(box_format)
    _check_args(0.5, score_threshold, max_output_size, soft_nms_sigma)
    if not float(soft_nms_sigma) > 0.0:
        raise ValueError(f"soft_nms_sigma must be > 0. Received: soft_nms_sigma={soft_nms_sigma}")
    corners, scores = _prepare(boxes, scores, box_format)
    indices, selected_scores, num_valid = _nms_padded(
        corners, scores, 1.0, score_threshold, max_output_size, float(soft_nms_sigma)
    )
    return indices[:num_valid], selected_scores[:num_valid]


def _class_offset_corners(corners, classes):
    """Shifts each box by ``class * (coordinate span + 1)`` so classes never overlap.

    ``corners``: ``(..., N, 4)``, ``classes``: ``(..., N)``; the span is per image.
    """
    hi = tf.reduce_max(corners, axis=[-2, -1], keepdims=True)
    lo = tf.reduce_min(corners, axis=[-2, -1], keepdims=True)
    span = tf.maximum(hi - lo, 0.0) + 1.0  # maximum(): N = 0 gives empty reductions
    return corners + tf.cast(classes, tf.float32)[..., None] * span


def batched_non_max_suppression(
    boxes,
    scores,
    classes=None,
    iou_threshold=0.5,
    score_threshold=0.6,
    max_output_size=100,
    box_format="xyxy",
    soft_nms_sigma=0.0,
):
    """Class-aware NMS over a batch, with static, padded outputs (graph- and TFLite-friendly).

    Boxes of different classes never suppress each other: each box is shifted by
    ``class_id * (coordinate span of its image + 1)`` and one single-class NMS runs per image
    (``tf.map_fn`` over the batch, a TFLite ``WHILE``; none for one image or a static batch of
    one). ``max_output_size`` bounds the total
    over all classes of an image. Within an image the result equals ``non_max_suppression`` (or
    ``soft_non_max_suppression`` when ``soft_nms_sigma > 0``) run on each class and merged by
    score. Works eagerly, inside ``tf.function`` and inside a Keras layer, and converts to
    ``.tflite`` with builtin ops only.

    The shift is exact for integer pixel coordinates; otherwise IoU is computed on shifted
    float32 coordinates, which can differ from the unshifted IoU by float32 rounding (this only
    changes a decision when an IoU lies within rounding of ``iou_threshold``).

    Args:
        boxes: ``(B, N, 4)`` boxes, or ``(N, 4)`` for one image.
        scores: ``(B, N)`` (or ``(N,)``) scores.
        classes: ``(B, N)`` (or ``(N,)``) integer class ids, any sign (float ids are rounded),
            or ``None`` for class-agnostic NMS.
        iou_threshold: float in (0, 1]; ignored when ``soft_nms_sigma > 0``.
        score_threshold: boxes with (rescored) score <= this are dropped.
        max_output_size: Python int, the most detections per image.
        box_format: a Keras box format name, for ``boxes`` and the returned boxes.
        soft_nms_sigma: 0 for hard NMS; > 0 for Gaussian Soft-NMS with that sigma (see
            ``soft_non_max_suppression``).

    Returns:
        A dict in the TF Object Detection API's naming (K = ``max_output_size``):

        - ``"detection_boxes"``: float32 ``(B, K, 4)``, the kept boxes in ``box_format``;
        - ``"detection_scores"``: float32 ``(B, K)``, their scores (rescored under Soft-NMS);
        - ``"detection_classes"``: int32 ``(B, K)``, their class ids (0 when ``classes=None``);
        - ``"detection_indices"``: int32 ``(B, K)``, their indices into the N input boxes;
        - ``"num_detections"``: int32 ``(B,)``, how many entries of each row are valid.

        Rows are sorted best first; entries past ``num_detections`` are padding: boxes and
        scores 0, classes and indices -1. For ``(N, 4)`` input the batch axis is dropped.

    Example:
        >>> out = batched_non_max_suppression(
        ...     boxes=[[[0, 0, 10, 10], [0, 0, 10, 10]]], scores=[[0.9, 0.8]], classes=[[1, 2]],
        ...     max_output_size=3)  # doctest: +SKIP
        >>> out["detection_indices"], out["num_detections"]  # doctest: +SKIP
        ([[0, 1, -1]], [2])  # same box, different classes: both kept
    """
    check_box_format(box_format)
    _check_args(iou_threshold, score_threshold, max_output_size, soft_nms_sigma)
    soft_nms_sigma = float(soft_nms_sigma)
    boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
    rank = boxes.shape.rank
    if rank not in (2, 3):
        raise ValueError(f"boxes must be (N, 4) or (B, N, 4). Received: boxes.shape={boxes.shape}")
    unbatched = rank == 2
    corners, scores = _prepare(boxes, scores, box_format)
    if classes is None:
        classes = tf.zeros_like(scores, dtype=tf.int32)
    else:
        classes = tf.convert_to_tensor(classes)
        if classes.dtype.is_floating:
            classes = tf.round(classes)
        classes = tf.cast(classes, tf.int32)
    if unbatched:
        boxes, corners, scores, classes = (t[None] for t in (boxes, corners, scores, classes))
    shifted = _class_offset_corners(corners, classes)

    def one_image(args):
        image_corners, image_scores = args
        return _nms_padded(
            image_corners,
            image_scores,
            iou_threshold,
            score_threshold,
            max_output_size,
            soft_nms_sigma,
        )

    if unbatched or shifted.shape[0] == 1:
        # One image: no loop in the graph (a TFLite WHILE body is left out of full-integer
        # calibration, so its scores and boxes would be quantized blind).
        indices, selected_scores, num_detections = (
            t[None] for t in one_image((shifted[0], scores[0]))
        )
    else:
        indices, selected_scores, num_detections = tf.map_fn(
            one_image,
            (shifted, scores),
            fn_output_signature=(
                tf.TensorSpec([max_output_size], tf.int32),
                tf.TensorSpec([max_output_size], tf.float32),
                tf.TensorSpec([], tf.int32),
            ),
        )
    valid = tf.range(max_output_size)[None, :] < num_detections[:, None]
    # Padding rows point at an appended (zero box, class -1) entry, which also keeps the
    # gathers in range when N = 0.
    gather_indices = tf.where(valid, indices, tf.shape(scores)[1])
    padded_boxes = tf.pad(boxes, [[0, 0], [0, 1], [0, 0]])
    padded_classes = tf.pad(classes, [[0, 0], [0, 1]], constant_values=-1)
    outputs = {
        "detection_boxes": tf.gather(padded_boxes, gather_indices, batch_dims=1),
        "detection_scores": tf.where(valid, selected_scores, 0.0),
        "detection_classes": tf.gather(padded_classes, gather_indices, batch_dims=1),
        "detection_indices": tf.where(valid, indices, -1),
        "num_detections": num_detections,
    }
    if unbatched:
        outputs = {key: value[0] for key, value in outputs.items()}
    return outputs
