"""Box maths: format conversion, area, and the IoU family (IoU, GIoU, DIoU, CIoU).

Every function takes boxes in any Keras box format (``"xyxy"``, ``"yxyx"``, ``"xywh"``,
``"center_xywh"``, ``"center_yxhw"`` and the ``"rel_"`` versions) and computes in ``keras.ops``,
so it runs on any backend, inside ``tf.function`` and ``tf.data``, and is differentiable.

Two shapes of the same maths:

* pairwise ``iou(boxes1, boxes2)``: ``(..., N, 4)`` x ``(..., M, 4)`` -> ``(..., N, M)``
  (matching, NMS, metrics);
* element-wise ``elementwise_iou(boxes1, boxes2)``: ``(..., 4)`` x ``(..., 4)`` -> ``(...)``
  with broadcasting (losses).

Pairwise is the element-wise core applied to ``boxes1[..., :, None, :]`` and
``boxes2[..., None, :, :]``, so both share one implementation (``_iou_terms``).

Degenerate boxes are safe: a negative width or height is clamped to 0 (the box becomes a
zero-area box at its first corner), divisions are guarded with ``keras.backend.epsilon()``, no
square root is taken, and the CIoU trade-off weight ``alpha`` is a stop-gradient constant as in
Zheng et al. (2020). Values and gradients are finite for zero-area, identical, far-apart and
all-zero boxes; IoU is in [0, 1], GIoU and DIoU in [-1, 1], CIoU in [-2, 1].

Relative formats (``"rel_..."``) are computed in relative coordinates. IoU and GIoU do not depend
on that (they are invariant to scaling each axis), DIoU and CIoU do (distances and aspect ratios
are measured in the relative frame).

References:
    Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019.
    Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box Regression",
    AAAI 2020.
"""

import math

import keras
from keras import ops

__all__ = [
    "BOX_FORMATS",
    "box_area",
    "check_box_format",
    "ciou",
    "convert_format",
    "diou",
    "elementwise_ciou",
    "elementwise_diou",
    "elementwise_giou",
    "elementwise_iou",
    "giou",
    "iou",
]

BOX_FORMATS = (
    "xyxy",
    "yxyx",
    "xywh",
    "center_xywh",
    "center_yxhw",
    "rel_xyxy",
    "rel_yxyx",
    "rel_xywh",
    "rel_center_xywh",
)
"""Box format names accepted everywhere in the zoo (Keras's names, case-insensitive)."""


def check_box_format(box_format, argument="box_format"):
    """Returns ``box_format`` lower-cased, or raises a ``ValueError`` naming the bad value.

    Args:
        box_format: a format name, e.g. ``"xyxy"``.
        argument: the argument name to quote in the error message.

    Returns:
        The lower-cased format name.

    Example:
        >>> check_box_format("XYXY")
        'xyxy'
    """
    if not isinstance(box_format, str) or box_format.lower() not in BOX_FORMATS:
        raise ValueError(
            f"Unknown box format. Received: {argument}={box_format!r}. "
            f"Expected one of {BOX_FORMATS}."
        )
    return box_format.lower()


def convert_format(boxes, source, target, height=None, width=None, dtype="float32"):
    """Converts boxes between formats: ``keras.utils.bounding_boxes.convert_format``.

    A thin wrapper that first checks both format names, so a typo raises a ``ValueError`` that
    echoes the bad name (Keras's own message only lists the valid ones), then delegates to Keras.

    Args:
        boxes: ``(..., 4)`` tensor/array, or a dict with a ``"boxes"`` entry.
        source: the format ``boxes`` are in, one of ``BOX_FORMATS``.
        target: the format to convert to, one of ``BOX_FORMATS``.
        height: image height, needed when exactly one of source/target is relative.
        width: image width, needed when exactly one of source/target is relative.
        dtype: output dtype.

    Returns:
        The converted boxes (same structure as ``boxes``).

    Example:
        >>> convert_format([[10.0, 20.0, 30.0, 60.0]], "xyxy", "center_xywh")  # doctest: +SKIP
        [[20., 40., 20., 40.]]
    """
    check_box_format(source, "source")
    check_box_format(target, "target")
    return keras.utils.bounding_boxes.convert_format(
        boxes, source=source, target=target, height=height, width=width, dtype=dtype
    )


def _to_float_tensor(boxes):
    boxes = ops.convert_to_tensor(boxes)
    if not keras.backend.is_float_dtype(boxes.dtype):
        boxes = ops.cast(boxes, "float32")
    return boxes


def _to_corners(boxes, box_format):
    """Boxes as float ``(..., 4)`` ``xyxy`` corners (relative formats stay relative)."""
    box_format = check_box_format(box_format)
    boxes = _to_float_tensor(boxes)
    if boxes.shape[-1] is not None and boxes.shape[-1] != 4:
        raise ValueError(f"Boxes must have a last dimension of 4. Received: shape={boxes.shape}")
    box_format = box_format.removeprefix("rel_")
    if box_format == "xyxy":
        return boxes
    return convert_format(boxes, box_format, "xyxy", dtype=boxes.dtype)


def _clamped_corners(corners):
    """Splits xyxy corners, clamping a negative width/height to 0 (x2 >= x1, y2 >= y1)."""
    x1, y1, x2, y2 = (corners[..., i] for i in range(4))
    return x1, y1, ops.maximum(x2, x1), ops.maximum(y2, y1)


def box_area(boxes, box_format="xyxy"):
    """Area of each box; a box with a negative width or height has area 0.

    Args:
        boxes: ``(..., 4)`` boxes.
        box_format: format of ``boxes``.

    Returns:
        ``(...)`` areas (in relative units for relative formats).

    Example:
        >>> box_area([[0.0, 0.0, 2.0, 3.0], [5.0, 5.0, 4.0, 9.0]])  # doctest: +SKIP
        [6., 0.]
    """
    x1, y1, x2, y2 = _clamped_corners(_to_corners(boxes, box_format))
    return (x2 - x1) * (y2 - y1)


def _iou_terms(corners1, corners2, need_enclosing=False, need_centers=False, need_aspect=False):
    """The shared core: all the terms of IoU/GIoU/DIoU/CIoU for broadcastable xyxy corners."""
    eps = keras.backend.epsilon()
    ax1, ay1, ax2, ay2 = _clamped_corners(corners1)
    bx1, by1, bx2, by2 = _clamped_corners(corners2)
    aw, ah = ax2 - ax1, ay2 - ay1
    bw, bh = bx2 - bx1, by2 - by1
    inter_w = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1), 0.0)
    inter_h = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1), 0.0)
    intersection = inter_w * inter_h
    union = aw * ah + bw * bh - intersection
    terms = {"union": union, "iou": intersection / ops.maximum(union, eps)}
    if need_enclosing or need_centers:
        enc_w = ops.maximum(ax2, bx2) - ops.minimum(ax1, bx1)
        enc_h = ops.maximum(ay2, by2) - ops.minimum(ay1, by1)
        terms["enclosing_area"] = enc_w * enc_h
        terms["enclosing_diagonal2"] = enc_w**2 + enc_h**2
    if need_centers:
        dx = (ax1 + ax2 - bx1 - bx2) * 0.5
        dy = (ay1 + ay2 - by1 - by2) * 0.5
        terms["center_distance2"] = dx**2 + dy**2
    if need_aspect:
        # v = 4/pi^2 (atan(w_b/h_b) - atan(w_a/h_a))^2; eps keeps h = 0 finite.
        delta = ops.arctan(bw / (bh + eps)) - ops.arctan(aw / (ah + eps))
        terms["aspect"] = (4.0 / math.pi**2) * delta**2
    return terms


def _elementwise(kind, boxes1, boxes2, box_format):
    eps = keras.backend.epsilon()
    c1 = _to_corners(boxes1, box_format)
    c2 = _to_corners(boxes2, box_format)
    dtype = c1.dtype if c1.dtype == c2.dtype else "float32"
    c1, c2 = ops.cast(c1, dtype), ops.cast(c2, dtype)
    t = _iou_terms(
        c1,
        c2,
        need_enclosing=kind == "giou",
        need_centers=kind in ("diou", "ciou"),
        need_aspect=kind == "ciou",
    )
    value = t["iou"]
    if kind == "giou":
        area = t["enclosing_area"]
        value = value - (area - t["union"]) / ops.maximum(area, eps)
    elif kind in ("diou", "ciou"):
        value = value - t["center_distance2"] / ops.maximum(t["enclosing_diagonal2"], eps)
        if kind == "ciou":
            v = t["aspect"]
            alpha = ops.stop_gradient(v / ops.maximum(1.0 - t["iou"] + v, eps))
            value = value - alpha * v
    return value


def _pairwise(kind, boxes1, boxes2, box_format):
    c1 = _to_corners(boxes1, box_format)
    c2 = _to_corners(boxes2, box_format)
    if len(c1.shape) < 2 or len(c2.shape) < 2:
        raise ValueError(
            "Pairwise box functions take (..., N, 4) and (..., M, 4) boxes. "
            f"Received: boxes1.shape={c1.shape}, boxes2.shape={c2.shape}"
        )
    return _elementwise(kind, c1[..., :, None, :], c2[..., None, :, :], "xyxy")


def elementwise_iou(boxes1, boxes2, box_format="xyxy"):
    """Element-wise IoU = |A ∩ B| / |A ∪ B| of two broadcastable sets of boxes.

    Args:
        boxes1: ``(..., 4)`` boxes.
        boxes2: ``(..., 4)`` boxes, broadcastable against ``boxes1``.
        box_format: format of both inputs.

    Returns:
        ``(...)`` IoU in [0, 1] (0 when the union has zero area).

    Example:
        >>> elementwise_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])  # doctest: +SKIP
        [0.14285715]  # 1 / 7
    """
    return _elementwise("iou", boxes1, boxes2, box_format)


def elementwise_giou(boxes1, boxes2, box_format="xyxy"):
    """Element-wise Generalized IoU: IoU - |C \\ (A ∪ B)| / |C|, C the smallest enclosing box.

    Args:
        boxes1: ``(..., 4)`` boxes.
        boxes2: ``(..., 4)`` boxes, broadcastable against ``boxes1``.
        box_format: format of both inputs.

    Returns:
        ``(...)`` GIoU in [-1, 1]. ``1 - giou`` is the GIoU loss.

    Example:
        >>> elementwise_giou([[0, 0, 1, 1]], [[2, 0, 3, 1]])  # doctest: +SKIP
        [-0.33333334]  # 0 - (3 - 2) / 3

    Reference: Rezatofighi et al., CVPR 2019.
    """
    return _elementwise("giou", boxes1, boxes2, box_format)


def elementwise_diou(boxes1, boxes2, box_format="xyxy"):
    """Element-wise Distance-IoU: IoU - rho^2(b1, b2) / c^2.

    rho is the distance between the box centres, c the diagonal of the smallest enclosing box.

    Args:
        boxes1: ``(..., 4)`` boxes.
        boxes2: ``(..., 4)`` boxes, broadcastable against ``boxes1``.
        box_format: format of both inputs.

    Returns:
        ``(...)`` DIoU in [-1, 1].

    Example:
        >>> elementwise_diou([[0, 0, 1, 1]], [[2, 0, 3, 1]])  # doctest: +SKIP
        [-0.4]  # 0 - 2^2 / (3^2 + 1^2)

    Reference: Zheng et al., AAAI 2020.
    """
    return _elementwise("diou", boxes1, boxes2, box_format)


def elementwise_ciou(boxes1, boxes2, box_format="xyxy"):
    """Element-wise Complete-IoU: DIoU - alpha * v.

    ``v = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2`` measures aspect-ratio consistency and
    ``alpha = v / (1 - IoU + v)`` is treated as a constant for the gradient (stop-gradient), as in
    the paper. The formula is symmetric in the two boxes.

    Args:
        boxes1: ``(..., 4)`` boxes.
        boxes2: ``(..., 4)`` boxes, broadcastable against ``boxes1``.
        box_format: format of both inputs.

    Returns:
        ``(...)`` CIoU in [-2, 1]. ``1 - ciou`` is the CIoU loss.

    Example:
        >>> elementwise_ciou([[0, 0, 2, 2]], [[0, 0, 2, 2]])  # doctest: +SKIP
        [1.]

    Reference: Zheng et al., AAAI 2020.
    """
    return _elementwise("ciou", boxes1, boxes2, box_format)


def iou(boxes1, boxes2, box_format="xyxy"):
    """Pairwise IoU between every box of ``boxes1`` and every box of ``boxes2``.

    Args:
        boxes1: ``(..., N, 4)`` boxes.
        boxes2: ``(..., M, 4)`` boxes; leading (batch) dimensions broadcast against ``boxes1``'s.
        box_format: format of both inputs.

    Returns:
        ``(..., N, M)`` IoU in [0, 1].

    Example:
        >>> iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2]])  # doctest: +SKIP
        [[0.14285715, 1.]]
    """
    return _pairwise("iou", boxes1, boxes2, box_format)


def giou(boxes1, boxes2, box_format="xyxy"):
    """Pairwise Generalized IoU, ``(..., N, 4) x (..., M, 4) -> (..., N, M)``, in [-1, 1].

    See ``elementwise_giou`` for the formula.

    Example:
        >>> giou([[0, 0, 1, 1]], [[2, 0, 3, 1]])  # doctest: +SKIP
        [[-0.33333334]]
    """
    return _pairwise("giou", boxes1, boxes2, box_format)


def diou(boxes1, boxes2, box_format="xyxy"):
    """Pairwise Distance-IoU, ``(..., N, 4) x (..., M, 4) -> (..., N, M)``, in [-1, 1].

    See ``elementwise_diou`` for the formula.

    Example:
        >>> diou([[0, 0, 1, 1]], [[2, 0, 3, 1]])  # doctest: +SKIP
        [[-0.4]]
    """
    return _pairwise("diou", boxes1, boxes2, box_format)


def ciou(boxes1, boxes2, box_format="xyxy"):
    """Pairwise Complete-IoU, ``(..., N, 4) x (..., M, 4) -> (..., N, M)``, in [-2, 1].

    See ``elementwise_ciou`` for the formula.

    Example:
        >>> ciou([[0, 0, 2, 2]], [[0, 0, 2, 2]])  # doctest: +SKIP
        [[1.]]
    """
    return _pairwise("ciou", boxes1, boxes2, box_format)
