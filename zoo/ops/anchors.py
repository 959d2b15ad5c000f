"""Anchor priors and YOLO grid box coding.

- ``kmeans_anchors``: k-means on box shapes with the 1 - IoU distance (YOLOv2).
- ``decode_yolo_grid``: the activations of a raw YOLO head tensor (v1 or anchor head) and its
  boxes in ``rel_xyxy``; the one place that defines the parameterisation, shared by
  ``zoo.detection.YoloLoss`` and ``zoo.detection``.

``kmeans_anchors`` is an offline tool (run once on a dataset's boxes before training), so it is
plain NumPy: deterministic for a seed, no graph, no accelerator.

Reference:
    Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017, section "Dimension
    Clusters": ``d(box, centroid) = 1 - IoU(box, centroid)`` with both boxes centred at the
    origin, so only widths and heights matter.
"""

import numpy as np
from keras import ops

from zoo.ops.checks import check_int

__all__ = ["check_xy_scale", "decode_yolo_grid", "grid_cell_offsets", "kmeans_anchors", "shape_iou"]

MAX_LOG_SCALE = 6.0
"""``t_w`` and ``t_h`` of the anchor head are clipped to this before ``exp`` (403 x the anchor)."""


def shape_iou(boxes_wh, anchors_wh):
    """IoU of boxes and anchors that share one centre: ``(N, 2)`` x ``(K, 2)`` -> ``(N, K)``.

    Args:
        boxes_wh: ``(N, 2)`` widths and heights.
        anchors_wh: ``(K, 2)`` widths and heights (same units).

    Returns:
        ``(N, K)`` float64 array, ``min(w)min(h) / (w h + w' h' - min(w)min(h))``.

    Example:
        >>> shape_iou([[2.0, 1.0]], [[1.0, 1.0]])
        array([[0.5]])
    """
    boxes_wh = np.asarray(boxes_wh, dtype=np.float64)
    anchors_wh = np.asarray(anchors_wh, dtype=np.float64)
    inter = np.minimum(boxes_wh[:, None, 0], anchors_wh[None, :, 0]) * np.minimum(
        boxes_wh[:, None, 1], anchors_wh[None, :, 1]
    )
    union = (
        (boxes_wh[:, 0] * boxes_wh[:, 1])[:, None]
        + (anchors_wh[:, 0] * anchors_wh[:, 1])[None, :]
        - inter
    )
    return inter / np.maximum(union, np.finfo(np.float64).tiny)


def _check_boxes(boxes_wh, k, max_iter):
    boxes_wh = np.asarray(boxes_wh, dtype=np.float64)
    if boxes_wh.ndim != 2 or boxes_wh.shape[1] != 2:
        raise ValueError(
            f"boxes_wh must have shape (N, 2) (widths, heights). Received: shape={boxes_wh.shape}"
        )
    if not np.all(np.isfinite(boxes_wh)) or np.any(boxes_wh <= 0):
        bad = np.flatnonzero(~np.all(np.isfinite(boxes_wh) & (boxes_wh > 0), axis=1))[0]
        raise ValueError(
            f"boxes_wh must be finite and > 0. Received: boxes_wh[{bad}] = {boxes_wh[bad].tolist()}"
        )
    check_int("k", k)
    distinct = len(np.unique(boxes_wh, axis=0))
    if k > distinct:
        raise ValueError(
            f"k={k} is larger than the number of distinct box shapes ({distinct} of "
            f"{len(boxes_wh)} boxes)."
        )
    check_int("max_iter", max_iter)
    return boxes_wh


def _init_plus_plus(boxes_wh, k, rng):
    """k-means++ seeding with the 1 - IoU distance (distinct shapes only)."""
    unique = np.unique(boxes_wh, axis=0)
    centers = [unique[rng.integers(len(unique))]]
    for _ in range(1, k):
        d = 1.0 - shape_iou(unique, np.array(centers)).max(axis=1)
        d = np.maximum(d, 0.0) ** 2
        total = d.sum()
        if total <= 0:
            break
        centers.append(unique[rng.choice(len(unique), p=d / total)])
    return np.array(centers)


def kmeans_anchors(boxes_wh, k, seed=0, max_iter=300, n_init=3, center="mean"):
    """K-means anchor shapes with the ``1 - IoU`` distance of YOLOv2.

    Each restart seeds with k-means++ (on the ``1 - IoU`` distance), then alternates: assign every
    box to the anchor of highest shape IoU, move each anchor to the mean (or median) width and
    height of its boxes, until no assignment changes or ``max_iter``. An anchor that loses all its
    boxes is moved to the box worst covered by the others. The restart with the highest mean IoU
    is returned.

    Args:
        boxes_wh: ``(N, 2)`` box widths and heights, > 0, in any unit (the anchors come back in
            the same unit; the zoo's YOLO takes anchors as fractions of the image size, so pass
            relative widths and heights).
        k: number of anchors (at most the number of distinct shapes).
        seed: seed of the k-means++ draws.
        max_iter: the most assign/update rounds per restart.
        n_init: number of restarts.
        center: ``"mean"`` (YOLOv2) or ``"median"`` of a cluster's widths and heights.

    Returns:
        ``(anchors, mean_iou)``: ``(k, 2)`` float32 anchors sorted by area (smallest first) and
        the mean over boxes of the IoU to their best anchor (a float).

    Example:
        >>> wh = np.concatenate([np.full((50, 2), 0.1), np.full((50, 2), 0.5)])
        >>> anchors, mean_iou = kmeans_anchors(wh, k=2)
        >>> anchors.tolist(), mean_iou
        ([[0.1, 0.1], [0.5, 0.5]], 1.0)
    """
    boxes_wh = _check_boxes(boxes_wh, k, max_iter)
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median'. Received: center={center!r}")
    check_int("n_init", n_init)
    reduce = np.mean if center == "mean" else np.median
    rng = np.random.default_rng(seed)
    best_anchors, best_iou = None, -1.0
    for _ in range(n_init):
        anchors = _init_plus_plus(boxes_wh, k, rng)
        while len(anchors) < k:  # degenerate seeding: fill with random distinct shapes
            anchors = np.vstack([anchors, boxes_wh[rng.integers(len(boxes_wh))]])
        assignment = None
        for _ in range(max_iter):
            ious = shape_iou(boxes_wh, anchors)
            new_assignment = ious.argmax(axis=1)
            if assignment is not None and np.array_equal(new_assignment, assignment):
                break
            assignment = new_assignment
            for j in range(k):
                members = boxes_wh[assignment == j]
                if len(members):
                    anchors[j] = reduce(members, axis=0)
                else:  # empty cluster: take the box the current anchors cover worst
                    anchors[j] = boxes_wh[ious.max(axis=1).argmin()]
        mean_iou = float(shape_iou(boxes_wh, anchors).max(axis=1).mean())
        if mean_iou > best_iou:
            best_anchors, best_iou = anchors.copy(), mean_iou
    order = np.argsort(best_anchors[:, 0] * best_anchors[:, 1], kind="stable")
    return best_anchors[order].astype(np.float32), best_iou


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
