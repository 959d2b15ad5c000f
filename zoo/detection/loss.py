"""The YOLO loss (v1 and anchor heads) and the dense target encoding it trains on.

Interface between data and loss: boxes in ``"rel_xyxy"`` (``[x1, y1, x2, y2]`` fractions of the
image, 0-1). ``encode_yolo_targets`` turns padded dataset boxes (label ``-1`` = padding) into a
dense target tensor; ``yolo_loss`` compares it with the model's raw head output (see
``zoo.detection.model`` for the layouts and ``zoo.detection.grid.decode_yolo_grid`` for the
activations).

Target layout (last axis ``5 + C``): ``[x1, y1, x2, y2, has_object, one-hot class (C)]``, with
the box in ``rel_xyxy``; zeros where no object is assigned.

- YOLOv1 (``anchors=None``): ``(batch, S, S, 5 + C)``, one ground truth per cell, the cell that
  holds the box centre. Which of the cell's B predictors is *responsible* depends on the
  predictions (the one whose box has the highest IoU with the ground truth, as in the paper), so
  the loss picks it, not the encoder.
- Anchor head: ``(batch, S, S, A, 5 + C)``: the ground truth goes to its centre cell and to the
  anchor of highest shape IoU (width/height only, as YOLOv2); that predictor is responsible.

Two ground truths that land on the same slot (v1: same cell; anchors: same cell and anchor): the
one with the larger area wins (ties: the first in input order) and the other is not trained on
in that image. The v1 head has one class distribution per cell, so it cannot represent two
objects in one cell anyway; this rule keeps the encoding deterministic (no scatter races).

Loss terms (per image, summed over cells and predictors; ``1_obj`` marks responsible
predictors, ``1_noobj = 1 - 1_obj``; the Keras reduction then averages over the batch):

- coordinates, ``lambda_coord * sum 1_obj * e_box`` with ``e_box`` for ``box_loss="mse"``:
  v1 ``(x - x^)^2 + (y - y^)^2 + (sqrt(w) - sqrt(w^))^2 + (sqrt(h) - sqrt(h^))^2`` (``x``, ``y``
  offsets in the cell, ``w``, ``h`` fractions of the image), anchors
  ``(x - x^)^2 + (y - y^)^2 + (t_w - log(w^/a_w))^2 + (t_h - log(h^/a_h))^2``; for
  ``"giou"`` / ``"diou"`` / ``"ciou"``: ``1 - GIoU`` (DIoU, CIoU) of the decoded box and the
  ground truth;
- objectness, ``sum 1_obj * (C - IoU)^2`` where ``IoU`` is the IoU of the (stop-gradient)
  predicted box with its ground truth, so at inference ``C * P(class)`` estimates
  ``P(class) * IoU`` (``objectness_target="one"`` trains toward 1 instead);
- no object, ``lambda_noobj * sum 1_noobj * C^2``; with ``ignore_iou=t`` (YOLOv2's rule,
  off by default) a non-responsible predictor whose box overlaps some ground truth of its image
  with IoU > t is left out of this term: it found an object, just not as the responsible one;
- classes, ``sum_cells 1_obj_cell * sum_c (p(c) - p^(c))^2`` (v1: once per cell holding an
  object; anchors: per responsible predictor).

``objectness_loss="bce"`` / ``class_loss="ce"`` replace the squared errors by cross-entropy on the
logits (same targets). The defaults are the paper's: sum-squared error, ``lambda_coord = 5``,
``lambda_noobj = 0.5``.

Reference:
    Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016, eq. 3.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.detection.grid import check_xy_scale, decode_yolo_grid, grid_cell_offsets
from zoo.ops.boxes import (
    check_box_format,
    convert_format,
    elementwise_ciou,
    elementwise_diou,
    elementwise_giou,
    elementwise_iou,
    iou,
)
from zoo.ops.checks import check_int

__all__ = ["YoloLoss", "encode_yolo_targets", "yolo_loss", "yolo_loss_terms"]

BOX_LOSSES = ("mse", "giou", "diou", "ciou")
OBJECTNESS_LOSSES = ("mse", "bce")
CLASS_LOSSES = ("mse", "ce")
OBJECTNESS_TARGETS = ("iou", "one")


def _anchor_array(anchors):
    if anchors is None:
        return None
    array = np.asarray(anchors, dtype="float32")
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0 or np.any(array <= 0):
        raise ValueError(
            f"anchors must be a non-empty list of (width, height) > 0 pairs (fractions of the "
            f"image). Received: anchors={anchors!r}"
        )
    return array


# === Target encoding ===


def encode_yolo_targets(
    boxes,
    labels,
    num_classes,
    grid_size,
    anchors=None,
    box_format="rel_xyxy",
    image_shape=None,
    anchor_iou_threshold=None,
    neighbour_cells=False,
):
    """Dense YOLO targets from padded ground-truth boxes, in TensorFlow ops.

    Runs eagerly, in ``tf.function``, in ``tf.data.Dataset.map`` (batched or not) and inside a
    model's ``compute_loss``. Boxes are clipped to the image; boxes of zero width or height and
    rows with ``label < 0`` (padding) are ignored. See the module docstring for the layout and
    the rule for two boxes on one slot.

    Args:
        boxes: ``(batch, N, 4)`` or ``(N, 4)`` boxes in ``box_format``.
        labels: ``(batch, N)`` or ``(N,)`` int class ids in ``[0, num_classes)``, ``-1`` padding.
        num_classes: ``C``.
        grid_size: ``S``.
        anchors: ``None`` (v1 targets) or ``(A, 2)`` anchor ``(w, h)`` fractions of the image.
        box_format: format of ``boxes``; ``"rel_xyxy"`` is the model interface, absolute formats
            (e.g. the data layout's ``"xyxy"`` pixels) need ``image_shape``.
        image_shape: ``(height, width)`` of the images the absolute boxes refer to.
        anchor_iou_threshold: anchor head only: ``None`` (YOLOv2: the best anchor alone) or a
            shape-IoU threshold; every anchor of the centre cell at or above it is also
            responsible for the truth (more positives per truth, as later YOLOs do).
        neighbour_cells: anchor head only: also assign the truth to the two cells next to its
            centre cell on the side of its centre (left or right, above or below; YOLOv5), with
            the same anchors: three times the positives. Those cells must reach the centre,
            so the model and loss need ``xy_scale=2``. Centre-cell assignments always win a
            slot over neighbour ones.

    Returns:
        float32 ``(batch, S, S, 5 + C)`` (v1) or ``(batch, S, S, A, 5 + C)``; no batch axis for
        unbatched input.

    Example:
        >>> t = encode_yolo_targets([[[0.1, 0.1, 0.3, 0.5]]], [[2]], num_classes=3, grid_size=2)
        >>> t[0, 0, 0].numpy()  # centre (0.2, 0.3): cell row 0, column 0
        array([0.1, 0.1, 0.3, 0.5, 1. , 0. , 0. , 1. ], dtype=float32)
    """
    num_classes = check_int("num_classes", num_classes)
    S = check_int("grid_size", grid_size)
    anchors = _anchor_array(anchors)
    box_format = check_box_format(box_format)
    boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
    labels = tf.cast(tf.convert_to_tensor(labels), tf.int32)
    if boxes.shape.rank not in (2, 3) or boxes.shape[-1] != 4:
        raise ValueError(
            f"boxes must be (N, 4) or (batch, N, 4). Received: boxes.shape={boxes.shape}"
        )
    unbatched = boxes.shape.rank == 2
    if unbatched:
        boxes, labels = boxes[None], labels[None]
    if box_format != "rel_xyxy":
        if box_format.startswith("rel_"):
            boxes = convert_format(boxes, box_format, "rel_xyxy")
        else:
            if image_shape is None:
                raise ValueError(
                    f"box_format={box_format!r} is absolute: pass image_shape=(height, width) "
                    "or relative boxes (box_format='rel_xyxy')."
                )
            height, width = int(image_shape[0]), int(image_shape[1])
            boxes = convert_format(boxes, box_format, "rel_xyxy", height=height, width=width)
        boxes = tf.cast(boxes, tf.float32)
    assert_op = tf.debugging.assert_less(
        labels,
        num_classes,
        message=f"encode_yolo_targets: labels must be < num_classes={num_classes}",
    )
    with tf.control_dependencies([assert_op]):
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    valid = (labels >= 0) & (w > 0) & (h > 0)
    col = tf.clip_by_value(tf.cast(tf.floor(cx * S), tf.int32), 0, S - 1)
    row = tf.clip_by_value(tf.cast(tf.floor(cy * S), tf.int32), 0, S - 1)
    cell = row * S + col
    slots = S * S
    batch = tf.shape(boxes)[0]
    num_boxes = tf.shape(boxes)[1]
    # Priority: larger area first, then input order (a unique positive int per valid box).
    order = tf.argsort(w * h, axis=-1, direction="DESCENDING", stable=True)
    rank = tf.argsort(order, axis=-1, stable=True)
    priority = num_boxes - rank
    rows = tf.concat(
        [boxes, tf.ones_like(w)[..., None], tf.one_hot(tf.maximum(labels, 0), num_classes)],
        axis=-1,
    )
    # Candidate slots per truth, axis K: its centre cell (v1), or the centre cell's best anchor,
    # plus (with anchor_iou_threshold) every other anchor of that cell matching its shape, and
    # (neighbour_cells) the same anchors of the two nearest neighbouring cells.
    if neighbour_cells and anchors is None:
        raise ValueError("neighbour_cells needs the anchor head (anchors=...).")
    if anchors is None:
        slot, use, priority = cell[..., None], valid[..., None], priority[..., None]
    else:
        A = anchors.shape[0]
        aw, ah = anchors[:, 0], anchors[:, 1]
        inter = tf.minimum(w[..., None], aw) * tf.minimum(h[..., None], ah)
        union = (w * h)[..., None] + aw * ah - inter
        shape_iou = inter / tf.maximum(union, 1e-12)  # (batch, N, A)
        is_best = tf.one_hot(tf.argmax(shape_iou, axis=-1), A, on_value=True, off_value=False)
        use = is_best
        if anchor_iou_threshold is not None:
            use = use | (shape_iou >= anchor_iou_threshold)
        use = use & valid[..., None]
        # a truth's best anchor outranks another truth's secondary match of the same slot
        priority = priority[..., None] + tf.where(is_best, num_boxes, 0)
        if neighbour_cells:  # (batch, N, 3) cells: centre, left/right, up/down
            fx, fy = cx * S - tf.cast(col, tf.float32), cy * S - tf.cast(row, tf.float32)
            ncol = col + tf.where(fx < 0.5, -1, 1)
            nrow = row + tf.where(fy < 0.5, -1, 1)
            inside = tf.stack(
                [tf.ones_like(valid), (ncol >= 0) & (ncol < S), (nrow >= 0) & (nrow < S)], -1
            )
            ncol, nrow = tf.clip_by_value(ncol, 0, S - 1), tf.clip_by_value(nrow, 0, S - 1)
            cells = tf.stack([cell, row * S + ncol, nrow * S + col], axis=-1)
            use = tf.reshape(use[:, :, None, :] & inside[..., None], [batch, num_boxes, 3 * A])
            centre_bonus = tf.constant([2, 0, 0], tf.int32)[:, None] * num_boxes
            priority = tf.reshape(priority[:, :, None, :] + centre_bonus, [batch, num_boxes, 3 * A])
            slot = tf.reshape(cells[..., None] * A + tf.range(A), [batch, num_boxes, 3 * A])
        else:
            slot = cell[..., None] * A + tf.range(A)
        slots *= A
    K = tf.shape(slot)[-1]
    flat = tf.reshape(tf.range(batch)[:, None, None] * slots + slot, [batch, -1])
    use = tf.reshape(use, [batch, -1])
    priority = tf.reshape(tf.where(tf.reshape(use, tf.shape(slot)), priority, 0), [batch, -1])
    rows = tf.reshape(tf.repeat(rows[:, :, None, :], K, axis=2), [batch, -1, 5 + num_classes])
    best = tf.tensor_scatter_nd_max(
        tf.zeros(tf.reshape(batch * slots, [1]), tf.int32),
        tf.reshape(flat, [-1, 1]),
        tf.reshape(priority, [-1]),
    )
    winner = use & tf.equal(priority, tf.gather(best, flat))
    target = tf.scatter_nd(
        tf.boolean_mask(flat, winner)[:, None],
        tf.boolean_mask(rows, winner),
        tf.stack([batch * slots, 5 + num_classes]),
    )
    shape = [-1, S, S, 5 + num_classes] if anchors is None else [-1, S, S, A, 5 + num_classes]
    target = tf.reshape(target, shape)
    return target[0] if unbatched else target


# === Loss maths ===


def _check_loss_options(box_loss, objectness_loss, class_loss, objectness_target):
    for arg, value, allowed in (
        ("box_loss", box_loss, BOX_LOSSES),
        ("objectness_loss", objectness_loss, OBJECTNESS_LOSSES),
        ("class_loss", class_loss, CLASS_LOSSES),
        ("objectness_target", objectness_target, OBJECTNESS_TARGETS),
    ):
        if value not in allowed:
            raise ValueError(f"{arg} must be one of {allowed}. Received: {arg}={value!r}")


def yolo_loss_terms(
    y_true,
    y_pred,
    num_classes,
    boxes_per_cell=2,
    anchors=None,
    lambda_coord=5.0,
    lambda_noobj=0.5,
    box_loss="mse",
    objectness_loss="mse",
    class_loss="mse",
    objectness_target="iou",
    ignore_iou=None,
    xy_scale=1.0,
):
    """The four YOLO loss terms per image (see the module docstring for the formulas).

    Args:
        y_true: targets from ``encode_yolo_targets`` (``(batch, S, S, 5 + C)`` or
            ``(batch, S, S, A, 5 + C)``).
        y_pred: the model's raw head output (``(batch, S, S, 5B + C)`` or
            ``(batch, S, S, A, 5 + C)``).
        num_classes: ``C``.
        boxes_per_cell: ``B`` (v1 head).
        anchors: ``None`` or the ``(A, 2)`` anchors of the model.
        lambda_coord: weight of the coordinate term.
        lambda_noobj: weight of the no-object term.
        box_loss: ``"mse"`` (the paper's) or ``"giou"``, ``"diou"``, ``"ciou"``.
        objectness_loss: ``"mse"`` (the paper's) or ``"bce"`` (on the logit).
        class_loss: ``"mse"`` (the paper's, on softmax probabilities) or ``"ce"``.
        objectness_target: ``"iou"`` (the paper's) or ``"one"``.
        ignore_iou: ``None`` (the paper's) or a threshold in (0, 1): non-responsible predictors
            overlapping a ground truth of the image by more are not pushed toward "no object".
        xy_scale: the model's centre-offset scale (``zoo.detection.grid.decode_yolo_grid``).

    Returns:
        A dict of ``(batch,)`` float32 tensors: ``"coord"`` (already times ``lambda_coord``),
        ``"object"``, ``"noobject"`` (already times ``lambda_noobj``), ``"class"``, and
        ``"responsible"`` ``(batch, S, S, P)``, the 0/1 mask of responsible predictors.
    """
    _check_loss_options(box_loss, objectness_loss, class_loss, objectness_target)
    anchors = _anchor_array(anchors)
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    dec = decode_yolo_grid(y_pred, num_classes, boxes_per_cell, anchors, xy_scale)
    S = y_pred.shape[1]
    expected = (S, S, 5 + num_classes) if anchors is None else (S, S, len(anchors), 5 + num_classes)
    if tuple(y_true.shape[1:]) != expected:
        raise ValueError(
            f"y_true must be encode_yolo_targets output of shape (batch,) + {expected} for this "
            f"head. Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape="
            f"{tuple(y_pred.shape)}"
        )
    true = y_true[..., None, :] if anchors is None else y_true  # (b, S, S, 1 | A, 5 + C)
    gt_boxes = true[..., :4]
    gt_object = true[..., 4]
    gt_classes = true[..., 5:]

    ious = ops.stop_gradient(elementwise_iou(dec["boxes"], gt_boxes))  # (b, S, S, P)
    if anchors is None:
        best = ops.argmax(ious, axis=-1)
        responsible = ops.one_hot(best, boxes_per_cell) * gt_object
    else:
        responsible = gt_object
    class_mask = gt_object  # v1: once per object cell; anchors: per responsible predictor

    if box_loss == "mse":
        gt_centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2.0
        gt_wh = ops.maximum(gt_boxes[..., 2:] - gt_boxes[..., :2], 0.0)
        gt_xy = gt_centre * float(S) - grid_cell_offsets(S)
        box_error = ops.sum(ops.square(dec["xy"] - gt_xy), axis=-1)
        if anchors is None:
            box_error += ops.sum(ops.square(dec["sqrt_wh"] - ops.sqrt(gt_wh)), axis=-1)
        else:
            gt_t = ops.log(ops.maximum(gt_wh, 1e-9) / anchors)
            box_error += ops.sum(ops.square(dec["t_wh"] - gt_t), axis=-1)
    else:
        fn = {"giou": elementwise_giou, "diou": elementwise_diou, "ciou": elementwise_ciou}
        box_error = 1.0 - fn[box_loss](dec["boxes"], gt_boxes)

    object_target = ious if objectness_target == "iou" else ops.ones_like(ious)
    if objectness_loss == "mse":
        object_error = ops.square(dec["objectness"] - object_target)
        noobject_error = ops.square(dec["objectness"])
    else:
        logits = dec["objectness_logits"]
        object_error = ops.binary_crossentropy(object_target, logits, from_logits=True)
        noobject_error = ops.binary_crossentropy(ops.zeros_like(logits), logits, from_logits=True)

    if class_loss == "mse":
        class_error = ops.sum(ops.square(dec["class_probs"] - gt_classes), axis=-1)
    else:
        class_error = ops.categorical_crossentropy(
            gt_classes, dec["class_logits"], from_logits=True
        )

    def total(x):
        return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)

    noobject_mask = 1.0 - responsible
    if ignore_iou is not None:
        noobject_mask = noobject_mask * (
            1.0 - _overlaps_ground_truth(dec["boxes"], true, ignore_iou)
        )

    return {
        "coord": lambda_coord * total(responsible * box_error),
        "object": total(responsible * object_error),
        "noobject": lambda_noobj * total(noobject_mask * noobject_error),
        "class": total(class_mask * class_error),
        "responsible": responsible,
    }


def _overlaps_ground_truth(pred_boxes, true, threshold):
    """1.0 where a predicted box overlaps any ground truth of its image with IoU > threshold."""
    batch = ops.shape(pred_boxes)[0]
    preds = ops.reshape(pred_boxes, (batch, -1, 4))
    truth = ops.reshape(true[..., :4], (batch, -1, 4))
    present = ops.reshape(true[..., 4], (batch, -1))
    # Only the occupied slots matter: gather the k most (= all) occupied ones per image, k the
    # batch's largest count, instead of comparing every predictor with every slot (S*S*A)^2.
    k = ops.maximum(ops.max(ops.sum(ops.cast(present > 0, "int32"), axis=-1)), 1)
    present, index = tf.math.top_k(present, k=k)
    truth = ops.take_along_axis(truth, index[..., None], axis=1)
    overlap = ops.max(iou(preds, truth) * present[:, None, :], axis=-1)  # (batch, predictors)
    return ops.stop_gradient(
        ops.reshape(ops.cast(overlap > threshold, "float32"), ops.shape(pred_boxes)[:-1])
    )


def yolo_loss(y_true, y_pred, num_classes, boxes_per_cell=2, anchors=None, **kwargs):
    """The YOLO loss per image: ``coord + object + noobject + class`` of ``yolo_loss_terms``.

    Args:
        y_true, y_pred, num_classes, boxes_per_cell, anchors: see ``yolo_loss_terms``.
        **kwargs: ``lambda_coord``, ``lambda_noobj``, ``box_loss``, ``objectness_loss``,
            ``class_loss``, ``objectness_target`` (see ``yolo_loss_terms``).

    Returns:
        ``(batch,)`` float32 loss values.

    Example:
        >>> t = encode_yolo_targets([[[0.1, 0.1, 0.3, 0.5]]], [[0]], num_classes=3, grid_size=2)
        >>> yolo_loss(t, np.zeros((1, 2, 2, 13), "float32"), num_classes=3)  # doctest: +SKIP
    """
    terms = yolo_loss_terms(y_true, y_pred, num_classes, boxes_per_cell, anchors, **kwargs)
    return terms["coord"] + terms["object"] + terms["noobject"] + terms["class"]


@keras.saving.register_keras_serializable(package="zoo")
class YoloLoss(keras.losses.Loss):
    """YOLO loss for the v1 head and the anchor head; ``call(y_true, y_pred)``.

    ``y_true`` is the dense target of ``encode_yolo_targets`` (``self.encode`` does it with this
    loss's settings), ``y_pred`` the model's raw output. The maths is ``yolo_loss`` (module
    docstring); the default reduction averages the per-image sums over the batch.

    Args:
        num_classes: ``C``.
        grid_size: ``S`` (checked against ``y_pred``).
        boxes_per_cell: ``B`` for the v1 head; with anchors it defaults to ``len(anchors)``.
        anchors: ``None`` (v1 head) or the model's anchors (``(w, h)`` image fractions).
        lambda_coord: coordinate weight (paper: 5).
        lambda_noobj: no-object weight (paper: 0.5).
        box_loss: ``"mse"``, ``"giou"``, ``"diou"`` or ``"ciou"``.
        objectness_loss: ``"mse"`` or ``"bce"``.
        class_loss: ``"mse"`` or ``"ce"``.
        objectness_target: ``"iou"`` or ``"one"``.
        ignore_iou: ``None`` or YOLOv2's threshold (0.6 in the paper) for leaving well-placed
            non-responsible predictors out of the no-object term. It compares predictors with
            the batch's occupied target slots, gathered by a ``top_k`` whose ``k`` depends on
            the data: under XLA (``jit_compile=True``) that recompiles every step, so train
            without XLA when it is set.
        anchor_iou_threshold: ``encode`` option (anchor head): also make every anchor of the
            centre cell whose shape IoU with the truth reaches this responsible.
        xy_scale: the model's centre-offset scale (``YOLO.xy_scale``).
        neighbour_cells: ``encode`` option (anchor head, needs ``xy_scale >= 2``): the two
            nearest neighbouring cells are responsible too (YOLOv5's assignment).
        reduction, name, dtype: as ``keras.losses.Loss``.

    Example:
        >>> model = zoo.build_yolo(3, (128, 128, 3), grid_size=2, width_multiplier=0.25)
        >>> loss = YoloLoss(num_classes=3, grid_size=2)
        >>> model.compile("adam", loss=loss)
        >>> targets = loss.encode(boxes_xyxy, labels, box_format="xyxy", image_shape=(128, 128))
        >>> model.fit(images, targets)

    Reference:
        Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016.
    """

    def __init__(
        self,
        num_classes,
        grid_size,
        boxes_per_cell=None,
        anchors=None,
        lambda_coord=5.0,
        lambda_noobj=0.5,
        box_loss="mse",
        objectness_loss="mse",
        class_loss="mse",
        objectness_target="iou",
        ignore_iou=None,
        anchor_iou_threshold=None,
        xy_scale=1.0,
        neighbour_cells=False,
        reduction="sum_over_batch_size",
        name="yolo_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_classes = check_int("num_classes", num_classes)
        self.grid_size = check_int("grid_size", grid_size)
        array = _anchor_array(anchors)
        self.anchors = None if array is None else np.asarray(anchors, "float64").tolist()
        if boxes_per_cell is None:
            boxes_per_cell = 2 if array is None else len(array)
        self.boxes_per_cell = check_int("boxes_per_cell", boxes_per_cell)
        if array is not None and self.boxes_per_cell != len(array):
            raise ValueError(
                f"With anchors, boxes_per_cell must equal len(anchors)={len(array)}. Received: "
                f"boxes_per_cell={boxes_per_cell!r}"
            )
        _check_loss_options(box_loss, objectness_loss, class_loss, objectness_target)
        self.lambda_coord = float(lambda_coord)
        self.lambda_noobj = float(lambda_noobj)
        self.box_loss = box_loss
        self.objectness_loss = objectness_loss
        self.class_loss = class_loss
        self.objectness_target = objectness_target
        if ignore_iou is not None and not 0 < float(ignore_iou) < 1:
            raise ValueError(f"ignore_iou must be None or in (0, 1). Received: {ignore_iou!r}")
        self.ignore_iou = None if ignore_iou is None else float(ignore_iou)
        if anchor_iou_threshold is not None and not 0 < float(anchor_iou_threshold) <= 1:
            raise ValueError(
                "anchor_iou_threshold must be None or in (0, 1]. Received: "
                f"{anchor_iou_threshold!r}"
            )
        self.anchor_iou_threshold = (
            None if anchor_iou_threshold is None else float(anchor_iou_threshold)
        )
        xy_scale = check_xy_scale(xy_scale)
        if neighbour_cells and (array is None or xy_scale < 2):
            raise ValueError(
                "neighbour_cells needs the anchor head and xy_scale >= 2 (a neighbouring cell "
                f"must reach the centre). Received: anchors={anchors!r}, xy_scale={xy_scale!r}"
            )
        self.xy_scale = xy_scale
        self.neighbour_cells = bool(neighbour_cells)

    def call(self, y_true, y_pred):
        if y_pred.shape[1] != self.grid_size:
            raise ValueError(
                f"y_pred has a {y_pred.shape[1]} x {y_pred.shape[2]} grid; this loss was built "
                f"for grid_size={self.grid_size}. Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        return yolo_loss(
            y_true,
            y_pred,
            self.num_classes,
            self.boxes_per_cell,
            self.anchors,
            lambda_coord=self.lambda_coord,
            lambda_noobj=self.lambda_noobj,
            box_loss=self.box_loss,
            objectness_loss=self.objectness_loss,
            class_loss=self.class_loss,
            objectness_target=self.objectness_target,
            ignore_iou=self.ignore_iou,
            xy_scale=self.xy_scale,
        )

    def encode(self, boxes, labels, box_format="rel_xyxy", image_shape=None):
        """``encode_yolo_targets`` with this loss's ``num_classes``, ``grid_size``, ``anchors``."""
        return encode_yolo_targets(
            boxes,
            labels,
            self.num_classes,
            self.grid_size,
            self.anchors,
            box_format=box_format,
            image_shape=image_shape,
            anchor_iou_threshold=self.anchor_iou_threshold,
            neighbour_cells=self.neighbour_cells,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            grid_size=self.grid_size,
            boxes_per_cell=self.boxes_per_cell,
            anchors=self.anchors,
            lambda_coord=self.lambda_coord,
            lambda_noobj=self.lambda_noobj,
            box_loss=self.box_loss,
            objectness_loss=self.objectness_loss,
            class_loss=self.class_loss,
            objectness_target=self.objectness_target,
            ignore_iou=self.ignore_iou,
            anchor_iou_threshold=self.anchor_iou_threshold,
            xy_scale=self.xy_scale,
            neighbour_cells=self.neighbour_cells,
        )
        return config
