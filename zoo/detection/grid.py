"""YOLO grid box coding: the activations of a raw YOLO head tensor (v1 or anchor head) and
its boxes in ``rel_xyxy``; the one place that defines the parameterisation, shared by
``YoloLoss``, decoding and export."""

import numpy as np
from keras import ops

__all__ = ["MAX_LOG_SCALE", "check_xy_scale", "decode_yolo_grid", "grid_cell_offsets"]

MAX_LOG_SCALE = 6.0
"""``t_w`` and ``t_h`` of the anchor head are clipped to this before ``exp`` (403 x the anchor)."""


def check_xy_scale(xy_scale):
    """Validates ``decode_yolo_grid``'s centre-offset scale (a number >= 1); returns a float."""
    if isinstance(xy_scale, bool) or not isinstance(xy_scale, (int, float)) or xy_scale < 1:
        raise ValueError(f"xy_scale must be a number >= 1. Received: xy_scale={xy_scale!r}")
    return float(xy_scale)


def decode_yolo_grid(raw, num_classes, boxes_per_cell=2, anchors=None, xy_scale=1.0):
    """Activations and ``rel_xyxy`` boxes of a raw YOLO head tensor.

    YOLOv1 head (``anchors=None``), ``raw`` ``(batch, S, S, 5B + C)``: per box
    ``x = sigmoid(t_x)``, ``y = sigmoid(t_y)`` (offsets in the cell), ``sqrt(w) = sigmoid(t_w)``,
    ``sqrt(h) = sigmoid(t_h)`` (fractions of the image), objectness ``sigmoid(t_o)``; the ``C``
    class logits are shared by the cell. Anchor head, ``raw`` ``(batch, S, S, A, 5 + C)``:
    ``w = anchor_w * exp(min(t_w, MAX_LOG_SCALE))``, the rest as v1. The box centre is
    ``((column + x) / S, (row + y) / S)``. With ``xy_scale = s > 1`` (YOLOv4's "scale_x_y",
    YOLOv5's ``2 sigmoid - 0.5``) the offset is ``s * sigmoid(t) - (s - 1) / 2``, in
    ``(-(s - 1) / 2, (s + 1) / 2)``: centres near a cell border need no saturated logit, and a
    neighbouring cell can predict the box (``encode_yolo_targets(..., neighbour_cells=True)``).

    Args:
        raw: the model's raw output (float tensor).
        num_classes: ``C``.
        boxes_per_cell: ``B`` of the v1 head (ignored with anchors).
        anchors: ``None`` or ``(A, 2)`` ``(w, h)`` fractions of the image.
        xy_scale: ``s >= 1`` above (1: the papers' ``sigmoid``).

    Returns:
        A dict of tensors, ``P = B`` (v1) or ``A`` (anchors), ``K = 1`` (v1: one class set per
        cell) or ``A``:

        - ``"xy"``: ``(batch, S, S, P, 2)`` centre offsets from the cell's corner, in (0, 1)
          for ``xy_scale=1``;
        - ``"wh"``: ``(batch, S, S, P, 2)`` width and height, fractions of the image;
        - ``"sqrt_wh"``: ``(batch, S, S, P, 2)`` their square roots (v1's regression target);
        - ``"t_wh"``: ``(batch, S, S, P, 2)`` the raw ``t_w``, ``t_h``;
        - ``"boxes"``: ``(batch, S, S, P, 4)`` ``rel_xyxy`` boxes;
        - ``"objectness_logits"``, ``"objectness"``: ``(batch, S, S, P)``;
        - ``"class_logits"``, ``"class_probs"``: ``(batch, S, S, K, C)`` (softmax).

    Example:
        >>> out = decode_yolo_grid(np.zeros((1, 7, 7, 30), "float32"), num_classes=20)
        >>> out["boxes"][0, 0, 0, 0]  # sigmoid(0) = 0.5: centre (0.5/7, 0.5/7), w = h = 0.25
        [-0.0536, -0.0536, 0.1964, 0.1964]
    """
    raw = ops.convert_to_tensor(raw)
    if raw.dtype != "float32":
        raw = ops.cast(raw, "float32")
    C = int(num_classes)
    if anchors is None:
        B = int(boxes_per_cell)
        if len(raw.shape) != 4 or raw.shape[-1] != 5 * B + C or raw.shape[1] != raw.shape[2]:
            raise ValueError(
                f"A YOLOv1 head output must be (batch, S, S, 5B + C) = (batch, S, S, "
                f"{5 * B + C}) for boxes_per_cell={B}, num_classes={C}. Received: "
                f"shape={tuple(raw.shape)}"
            )
        S = raw.shape[1]
        box_part = ops.reshape(raw[..., : 5 * B], (-1, S, S, B, 5))
        class_logits = raw[..., None, 5 * B :]
        t_wh = box_part[..., 2:4]
        sqrt_wh = ops.sigmoid(t_wh)
        wh = ops.square(sqrt_wh)
    else:
        anchors_t = ops.convert_to_tensor(np.asarray(anchors, dtype="float32"))
        A = anchors_t.shape[0]
        if len(raw.shape) != 5 or raw.shape[3] != A or raw.shape[4] != 5 + C:
            raise ValueError(
                f"An anchor head output must be (batch, S, S, A, 5 + C) = (batch, S, S, {A}, "
                f"{5 + C}) for {A} anchors, num_classes={C}. Received: shape={tuple(raw.shape)}"
            )
        S = raw.shape[1]
        box_part = raw[..., :5]
        class_logits = raw[..., 5:]
        t_wh = box_part[..., 2:4]
        wh = anchors_t * ops.exp(ops.minimum(t_wh, MAX_LOG_SCALE))
        sqrt_wh = ops.sqrt(wh)
    xy = ops.sigmoid(box_part[..., 0:2])
    if xy_scale != 1.0:
        xy = float(xy_scale) * xy - 0.5 * (float(xy_scale) - 1.0)
    grid = ops.convert_to_tensor(grid_cell_offsets(S))  # (1, S, S, 1, 2) = (column, row)
    centre = (grid + xy) / float(S)
    half = wh / 2.0
    boxes = ops.concatenate([centre - half, centre + half], axis=-1)
    objectness_logits = box_part[..., 4]
    return {
        "xy": xy,
        "wh": wh,
        "sqrt_wh": sqrt_wh,
        "t_wh": t_wh,
        "boxes": boxes,
        "objectness_logits": objectness_logits,
        "objectness": ops.sigmoid(objectness_logits),
        "class_logits": class_logits,
        # One class: P(class | object) = 1 (a size-1 softmax, without Keras's warning).
        "class_probs": ops.softmax(class_logits, axis=-1) if C > 1 else ops.ones_like(class_logits),
    }


def grid_cell_offsets(grid_size):
    """``(1, S, S, 1, 2)`` float32 ``(column, row)`` of every cell (NumPy).

    Args:
        grid_size: ``S``.

    Returns:
        A NumPy array; ``[0, r, c, 0] == (c, r)``.

    Example:
        >>> grid_cell_offsets(2)[0, 1, 0, 0]
        array([0., 1.], dtype=float32)
    """
    S = int(grid_size)
    grid = np.stack(np.meshgrid(np.arange(S), np.arange(S)), axis=-1).astype("float32")
    return grid[None, :, :, None, :]
