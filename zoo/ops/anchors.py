"""Anchor priors: k-means on box shapes with the 1 - IoU distance (YOLOv2), and ``shape_iou``.

``kmeans_anchors`` is an offline tool (run once on a dataset's boxes before training), so it is
plain NumPy: deterministic for a seed, no graph, no accelerator.

Reference:
    Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017, section "Dimension
    Clusters": ``d(box, centroid) = 1 - IoU(box, centroid)`` with both boxes centred at the
    origin, so only widths and heights matter.
"""

import numpy as np

from zoo.ops.checks import check_int

__all__ = ["kmeans_anchors", "shape_iou"]


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
