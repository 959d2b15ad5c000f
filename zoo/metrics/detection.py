"""Detection metrics: COCO mAP through pycocotools, PR curves, and Pascal VOC mAP.

Input layout (shared by every function here), one entry per image, in the same order in both
lists:

- ``ground_truth[i]``: ``{"boxes": (N, 4) [x1, y1, x2, y2] absolute pixels, "classes": (N,)
  int ids >= 0}``, optionally ``"image_size": (height, width)``, ``"iscrowd": (N,)`` 0/1
  (COCO only) and ``"difficult": (N,)`` bool (VOC only).
- ``detections[i]``: ``{"boxes": (M, 4), "classes": (M,), "scores": (M,)}``.

NumPy arrays, lists or eager tensors are accepted; an image may have no boxes (``[]`` or shape
``(0, 4)``) on either side. Bad input raises ``ValueError`` naming the image index, the field and
the value, e.g. ``detections[2].boxes[0] = [1.0, 2.0, 3.0]: expected 4 numbers [x1, y1, x2, y2]``.

Two evaluations, two functions (``coco_map`` never switches to VOC rules):

- ``coco_map``: COCO AP@[.5:.95], AP50, AP75, by area and AR@1/10/100, computed by pycocotools'
  own ``COCOeval`` on COCO objects built in memory (no files, its prints silenced). The numbers
  are those of ``COCOeval.stats``. Where COCO reports ``-1`` (no ground truth in that area range,
  or for that class) the value is ``float("nan")``.
- ``voc_map``: Pascal VOC AP at one IoU threshold (0.5 by default), all-point interpolation as in
  VOC2010+ or the 11-point VOC2007 metric; ``difficult`` boxes are ignored as in the devkit.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["COCO_METRIC_NAMES", "coco_map", "coco_pr_curves", "voc_map"]

# The order of ``COCOeval.stats``.
COCO_METRIC_NAMES = (
    "map",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)


# ---------------------------------------------------------------------------------------------
# Input parsing and validation
# ---------------------------------------------------------------------------------------------


def _fmt(value):
    """A short, readable form of a bad value for error messages."""
    try:
        out = np.asarray(value).tolist()
    except Exception:  # noqa: BLE001 - any unprintable value falls back to repr
        return repr(value)
    return repr(out)


def _parse_boxes(value, where):
    if value is None:
        raise ValueError(f"{where}: missing field 'boxes'")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.size == 0:
        return np.zeros((0, 4), np.float64)
    if arr is None or arr.ndim != 2 or arr.shape[1] != 4:
        # Find the offending row to name it.
        if isinstance(value, np.ndarray) and value.ndim != 2:
            raise ValueError(
                f"{where}.boxes has shape {value.shape}: expected (N, 4) [x1, y1, x2, y2]"
            )
        try:
            rows = list(value)
        except TypeError:
            raise ValueError(
                f"{where}.boxes = {_fmt(value)}: expected a list of [x1, y1, x2, y2]"
            ) from None
        for j, row in enumerate(rows):
            try:
                r = np.asarray(row, dtype=np.float64)
            except (ValueError, TypeError):
                raise ValueError(
                    f"{where}.boxes[{j}] = {_fmt(row)}: expected 4 numbers [x1, y1, x2, y2]"
                ) from None
            if r.shape != (4,):
                raise ValueError(
                    f"{where}.boxes[{j}] = {_fmt(row)}: expected 4 numbers [x1, y1, x2, y2]"
                )
        raise ValueError(f"{where}.boxes = {_fmt(value)}: expected shape (N, 4)")
    bad = ~np.all(np.isfinite(arr), axis=1) | (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if bad.any():  # checked vectorised; the first bad box is reported
        j = int(np.flatnonzero(bad)[0])
        box = arr[j]
        if not np.all(np.isfinite(box)):
            raise ValueError(f"{where}.boxes[{j}] = {_fmt(box)}: coordinates must be finite")
        if box[2] < box[0]:
            raise ValueError(f"{where}.boxes[{j}] = {_fmt(box)}: x2 must be >= x1")
        if box[3] < box[1]:
            raise ValueError(f"{where}.boxes[{j}] = {_fmt(box)}: y2 must be >= y1")
    return arr


def _parse_vector(entry, field, n, where, required=True):
    if field not in entry or entry[field] is None:
        if required:
            raise ValueError(f"{where}: missing field '{field}' (one value per box)")
        return None
    value = entry[field]
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise ValueError(f"{where}.{field} = {_fmt(value)}: expected a 1-D array") from None
    if arr.size == 0 and n == 0:
        return arr.reshape(0)
    if arr.ndim != 1:
        raise ValueError(
            f"{where}.{field} has shape {arr.shape}: expected ({n},), one value per box"
        )
    if arr.shape[0] != n:
        raise ValueError(
            f"{where}.{field} has {arr.shape[0]} values but boxes has {n}: {field} = {_fmt(arr)}"
        )
    return arr


def _parse_classes(entry, n, where, num_classes):
    arr = _parse_vector(entry, "classes", n, where)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{where}.classes = {_fmt(arr)}: expected integer class ids")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(arr) & (arr == np.round(arr)) & (arr >= 0)
        if num_classes is not None:
            ok &= arr < num_classes
    if not ok.all():  # checked vectorised; the first bad id is reported
        j = int(np.flatnonzero(~ok)[0])
        c = arr[j]
        if not np.isfinite(c) or c != np.round(c):
            raise ValueError(f"{where}.classes[{j}] = {_fmt(c)}: class ids must be integers")
        if c < 0:
            raise ValueError(f"{where}.classes[{j}] = {_fmt(c)}: class ids must be >= 0")
        if num_classes is not None and c >= num_classes:
            raise ValueError(
                f"{where}.classes[{j}] = {_fmt(c)}: class id out of range for "
                f"{num_classes} class_names"
            )
    return arr.astype(np.int64)


def _parse_flags(entry, field, n, where):
    arr = _parse_vector(entry, field, n, where, required=False)
    if arr is None:
        return np.zeros((n,), bool)
    bad = np.flatnonzero(~np.isin(arr, (0, 1)))
    if bad.size:
        j = int(bad[0])
        raise ValueError(f"{where}.{field}[{j}] = {_fmt(arr[j])}: expected 0/1 or a bool")
    return arr.astype(bool)


def _parse_image(entry, where, num_classes, is_detection):
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"{where} = {type(entry).__name__}: expected a dict with 'boxes' and 'classes'"
        )
    boxes = _parse_boxes(entry.get("boxes"), where)
    n = boxes.shape[0]
    out = {"boxes": boxes, "classes": _parse_classes(entry, n, where, num_classes)}
    if is_detection:
        scores = _parse_vector(entry, "scores", n, where).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"{where}.scores[{j}] = {_fmt(scores[j])}: scores must be finite")
        out["scores"] = scores
    else:
        out["iscrowd"] = _parse_flags(entry, "iscrowd", n, where)
        out["difficult"] = _parse_flags(entry, "difficult", n, where)
        size = entry.get("image_size")
        if size is not None:
            try:
                hw = np.asarray(size, dtype=np.float64)
            except (ValueError, TypeError):
                hw = None
            if hw is None or hw.shape != (2,) or not np.all(hw > 0):
                raise ValueError(f"{where}.image_size = {_fmt(size)}: expected (height, width) > 0")
            out["image_size"] = (int(hw[0]), int(hw[1]))
    return out


def _parse_inputs(ground_truth, detections, class_names):
    for name, value in (("ground_truth", ground_truth), ("detections", detections)):
        if isinstance(value, Mapping) or not isinstance(value, Sequence | np.ndarray):
            raise ValueError(
                f"{name} = {type(value).__name__}: expected a list with one dict per image"
            )
    if len(ground_truth) != len(detections):
        raise ValueError(
            f"ground_truth has {len(ground_truth)} images but detections has "
            f"{len(detections)}: they must be aligned, one entry per image"
        )
    if len(ground_truth) == 0:
        raise ValueError("ground_truth = []: no images to evaluate")
    if class_names is not None:
        class_names = list(class_names)
        if len(class_names) == 0:
            raise ValueError("class_names = []: expected at least one class name")
    num_classes = None if class_names is None else len(class_names)
    gts = [
        _parse_image(g, f"ground_truth[{i}]", num_classes, False)
        for i, g in enumerate(ground_truth)
    ]
    dts = [_parse_image(d, f"detections[{i}]", num_classes, True) for i, d in enumerate(detections)]
    if class_names is None:
        ids = set()
        for item in gts + dts:
            ids.update(int(c) for c in item["classes"])
        cat_ids = sorted(ids)
        keys = list(cat_ids)
    else:
        cat_ids = list(range(len(class_names)))
        keys = class_names
    return gts, dts, cat_ids, keys


# ---------------------------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------------------------


def _xywh(box):
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _build_coco(gts, dts, cat_ids, keys):
    """Ground-truth and result ``COCO`` objects, as ``COCO(file)`` / ``loadRes`` would build them."""
    images = []
    for i, g in enumerate(gts):
        image = {"id": i}
        if "image_size" in g:
            image["height"], image["width"] = g["image_size"]
        images.append(image)
    categories = [{"id": int(c), "name": str(k)} for c, k in zip(cat_ids, keys, strict=True)]
    annotations = []
    for i, g in enumerate(gts):
        for box, cls, crowd in zip(g["boxes"], g["classes"], g["iscrowd"], strict=True):
            bbox = _xywh(box)
            annotations.append(
                {
                    "id": len(annotations) + 1,  # ids must be > 0: COCOeval tests `id > 0`
                    "image_id": i,
                    "category_id": int(cls),
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": int(crowd),
                }
            )
    results = []
    for i, d in enumerate(dts):
        for box, cls, score in zip(d["boxes"], d["classes"], d["scores"], strict=True):
            bbox = _xywh(box)
            results.append(
                {
                    "id": len(results) + 1,
                    "image_id": i,
                    "category_id": int(cls),
                    "bbox": bbox,
                    "score": float(score),
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 0,
                }
            )
    coco_gt = COCO()
    coco_gt.dataset = {"images": images, "categories": categories, "annotations": annotations}
    # Same fields as COCO.loadRes fills for bbox results; built directly because loadRes fails
    # on an empty result list.
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(images),
        "categories": copy.deepcopy(categories),
        "annotations": results,
    }
    coco_gt.createIndex()
    coco_dt.createIndex()
    return coco_gt, coco_dt


def _check_max_dets(max_dets):
    if isinstance(max_dets, bool) or not isinstance(max_dets, int | np.integer) or max_dets < 10:
        raise ValueError(
            f"max_dets = {max_dets!r}: expected an int >= 10 (AR is also reported at 1 and 10)"
        )
    return int(max_dets)


def _run_cocoeval(ground_truth, detections, class_names, iou_type, max_dets):
    if iou_type != "bbox":
        raise ValueError(
            f"iou_type = {iou_type!r}: only 'bbox' is supported (the input carries boxes, "
            "not masks or keypoints)"
        )
    max_dets = _check_max_dets(max_dets)
    gts, dts, cat_ids, keys = _parse_inputs(ground_truth, detections, class_names)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt, coco_dt = _build_coco(gts, dts, cat_ids, keys)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.maxDets = [1, 10, max_dets]
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator, cat_ids, keys


def _nan_if_missing(value):
    return float("nan") if value == -1 else float(value)


def _summarize(evaluator, ap, iou_thr=None, area="all", max_dets=100):
    """``COCOeval.summarize``'s ``_summarize`` without the print (and without its bug of
    ignoring ``maxDets`` for the first number)."""
    p = evaluator.params
    aind = [i for i, a in enumerate(p.areaRngLbl) if a == area]
    mind = [i for i, m in enumerate(p.maxDets) if m == max_dets]
    if ap:
        s = evaluator.eval["precision"]  # [T, R, K, A, M]
        if iou_thr is not None:
            s = s[np.where(iou_thr == p.iouThrs)[0]]
        s = s[:, :, :, aind, mind]
    else:
        s = evaluator.eval["recall"]  # [T, K, A, M]
        if iou_thr is not None:
            s = s[np.where(iou_thr == p.iouThrs)[0]]
        s = s[:, :, aind, mind]
    valid = s[s > -1]
    return float("nan") if valid.size == 0 else float(np.mean(valid))


def coco_map(
    ground_truth,
    detections,
    *,
    class_names=None,
    iou_type="bbox",
    max_dets=100,
):
    """COCO box mAP and mAR computed by pycocotools' ``COCOeval``.

    The COCO objects are built in memory (image id = index in the list, box ``area`` = box width
    × height, which is what COCO's area ranges then use); ``COCOeval`` runs with its prints
    silenced. The twelve numbers equal ``COCOeval.stats`` (for ``max_dets=100``; for another
    value they are computed the same way with that value, which ``summarize()`` gets wrong for
    the first number).

    Where COCO reports ``-1`` — no (non-crowd) ground truth in that area range, or a class
    without ground truth — the value is ``float("nan")``, and such classes are left out of the
    means, as in COCO. Detections of a class absent from the ground truth therefore do not lower
    the mAP. COCO computes precision as ``tp / (tp + fp + 2.2e-16)``, so a perfect detector
    scores ``1 - 2e-16``, not exactly 1.

    Args:
        ground_truth: list, one dict per image: ``"boxes"`` (N, 4) ``[x1, y1, x2, y2]`` pixels,
            ``"classes"`` (N,) ids >= 0; optional ``"iscrowd"`` (N,) 0/1 and ``"image_size"``
            ``(height, width)``. ``"difficult"`` is not used by COCO.
        detections: list aligned with ``ground_truth``: ``"boxes"``, ``"classes"``,
            ``"scores"`` (M,).
        class_names: optional list; class id ``k`` is ``class_names[k]``, every class is
            evaluated and ids ``>= len(class_names)`` are an error. Without it the classes are
            the ids seen in either list and ``per_class`` is keyed by id.
        iou_type: ``"bbox"`` (the only type the box layout supports).
        max_dets: detections kept per image, highest scores first (COCO's 100); an int >= 10.

    Returns:
        dict with ``"map"`` (AP@[.5:.95]), ``"map50"``, ``"map75"``, ``"map_small"``,
        ``"map_medium"``, ``"map_large"``, ``"mar_1"``, ``"mar_10"``, ``"mar_100"`` (AR at
        ``max_dets``, named for COCO's default), ``"mar_small"``, ``"mar_medium"``,
        ``"mar_large"`` (all Python floats), ``"per_class"`` ``{name or id: AP@[.5:.95]}`` and
        ``"per_class_ap50"`` ``{name or id: AP@.5}``.

    Example:
        >>> gt = [{"boxes": [[10, 10, 50, 50]], "classes": [0]}]
        >>> dt = [{"boxes": [[10, 10, 50, 50]], "classes": [0], "scores": [0.9]}]
        >>> round(coco_map(gt, dt, class_names=["cat"])["map"], 9)
        1.0
    """
    evaluator, cat_ids, keys = _run_cocoeval(
        ground_truth, detections, class_names, iou_type, max_dets
    )
    md = evaluator.params.maxDets
    stats = [
        _summarize(evaluator, 1, max_dets=md[2]),
        _summarize(evaluator, 1, iou_thr=0.5, max_dets=md[2]),
        _summarize(evaluator, 1, iou_thr=0.75, max_dets=md[2]),
        _summarize(evaluator, 1, area="small", max_dets=md[2]),
        _summarize(evaluator, 1, area="medium", max_dets=md[2]),
        _summarize(evaluator, 1, area="large", max_dets=md[2]),
        _summarize(evaluator, 0, max_dets=md[0]),
        _summarize(evaluator, 0, max_dets=md[1]),
        _summarize(evaluator, 0, max_dets=md[2]),
        _summarize(evaluator, 0, area="small", max_dets=md[2]),
        _summarize(evaluator, 0, area="medium", max_dets=md[2]),
        _summarize(evaluator, 0, area="large", max_dets=md[2]),
    ]
    out = dict(zip(COCO_METRIC_NAMES, stats, strict=True))
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]; area 0 = all, M -1 = max_dets
    per_class, per_class_50 = {}, {}
    for k, key in enumerate(keys):
        p_all = precision[:, :, k, 0, -1]
        p_50 = precision[0, :, k, 0, -1]  # iouThrs[0] == 0.5
        valid = p_all[p_all > -1]
        per_class[key] = float(np.mean(valid)) if valid.size else float("nan")
        valid = p_50[p_50 > -1]
        per_class_50[key] = float(np.mean(valid)) if valid.size else float("nan")
    out["per_class"] = per_class
    out["per_class_ap50"] = per_class_50
    return out


def coco_pr_curves(
    ground_truth,
    detections,
    *,
    class_names=None,
    iou_threshold=0.5,
    max_dets=100,
):
    """Per-class precision/recall curves from the same ``COCOeval`` run as :func:`coco_map`.

    The curve is COCO's: precision interpolated (the running maximum from the right) and sampled
    at the 101 recall points 0, 0.01, ..., 1, area range "all". Past the highest recall a class
    reaches, precision is 0; a class without ground truth has an all-NaN curve. Each call runs a
    full evaluation.

    Args:
        ground_truth, detections, class_names, max_dets: as in :func:`coco_map`.
        iou_threshold: one of COCO's thresholds 0.5, 0.55, ..., 0.95.

    Returns:
        dict with ``"recall"`` (101,), ``"precision"`` ``{name or id: (101,)}`` and
        ``"scores"`` ``{name or id: (101,)}`` (the detection score at which each recall point
        is reached, 0 past the highest recall; useful to pick a confidence threshold).

    Example:
        >>> curves = coco_pr_curves(gt, dt, class_names=["cat"])
        >>> plt.plot(curves["recall"], curves["precision"]["cat"])  # doctest: +SKIP
    """
    evaluator, cat_ids, keys = _run_cocoeval(
        ground_truth, detections, class_names, "bbox", max_dets
    )
    thresholds = evaluator.params.iouThrs
    hits = np.where(np.isclose(thresholds, float(iou_threshold), rtol=0, atol=1e-9))[0]
    if hits.size != 1:
        raise ValueError(
            f"iou_threshold = {iou_threshold!r}: expected one of COCO's thresholds "
            f"{[round(float(t), 2) for t in thresholds]}"
        )
    t = int(hits[0])
    precision = evaluator.eval["precision"][t, :, :, 0, -1]  # [R, K]
    scores = evaluator.eval["scores"][t, :, :, 0, -1]
    out = {"recall": np.array(evaluator.params.recThrs, np.float64), "precision": {}, "scores": {}}
    for k, key in enumerate(keys):
        p = precision[:, k].astype(np.float64)
        s = scores[:, k].astype(np.float64)
        missing = bool(np.all(p == -1))
        out["precision"][key] = np.full_like(p, np.nan) if missing else p
        out["scores"][key] = np.full_like(s, np.nan) if missing else s
    return out


# ---------------------------------------------------------------------------------------------
# Pascal VOC
# ---------------------------------------------------------------------------------------------


def _iou_one_to_many(box, boxes):
    """IoU of one xyxy box with (N, 4) xyxy boxes, continuous coordinates (no +1)."""
    ix1 = np.maximum(boxes[:, 0], box[0])
    iy1 = np.maximum(boxes[:, 1], box[1])
    ix2 = np.minimum(boxes[:, 2], box[2])
    iy2 = np.minimum(boxes[:, 3], box[3])
    inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _voc_ap(recall, precision, use_07_metric):
    """VOC average precision from the (unsorted-by-recall, detection-ordered) PR points."""
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(11) / 10.0:  # 0, 0.1, ..., 1 as nearest doubles (devkit's 0:0.1:1)
            mask = recall >= t
            ap += (float(np.max(precision[mask])) if np.any(mask) else 0.0) / 11.0
        return ap
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def voc_map(ground_truth, detections, iou_threshold=0.5, use_07_metric=False, *, class_names=None):
    """Pascal VOC mean average precision at one IoU threshold.

    Per class, detections from all images are ranked by score (ties keep input order); each is
    matched to the ground-truth box of its image and class with the highest IoU: a true positive
    if that IoU ``>= iou_threshold`` and the box is not yet taken, a false positive if it is
    taken (a duplicate) or the IoU is too low. A detection whose best match is a ``difficult``
    box counts as neither, and difficult boxes are not counted in the recall, as in the VOC
    devkit. IoU uses continuous coordinates (area = (x2 - x1) * (y2 - y1)), like COCO, not the
    devkit's inclusive-pixel ``+ 1``. ``iscrowd`` is not used.

    AP is the area under the interpolated PR curve at every recall change (VOC2010+), or with
    ``use_07_metric=True`` the mean of the interpolated precision at recall 0, 0.1, ..., 1
    (VOC2007). A class without (non-difficult) ground truth has AP ``nan`` and is left out of
    ``"map"``, so its detections do not lower it; ``"map"`` is ``nan`` if no class has ground
    truth.

    Args:
        ground_truth: as in :func:`coco_map`, with an optional ``"difficult"`` (N,) bool.
        detections: as in :func:`coco_map`.
        iou_threshold: IoU needed for a match, in (0, 1].
        use_07_metric: use the 11-point VOC2007 AP instead of the all-point one.
        class_names: as in :func:`coco_map`.

    Returns:
        dict with ``"map"`` and ``"per_class"`` ``{name or id: AP}``.

    Example:
        >>> gt = [{"boxes": [[10, 10, 50, 50]], "classes": [0]}]
        >>> dt = [{"boxes": [[12, 10, 50, 50]], "classes": [0], "scores": [0.9]}]
        >>> voc_map(gt, dt)["map"]
        1.0
    """
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold = {iou_threshold!r}: expected a value in (0, 1]")
    gts, dts, cat_ids, keys = _parse_inputs(ground_truth, detections, class_names)
    per_class = {}
    for cls, key in zip(cat_ids, keys, strict=True):
        gt_boxes, gt_difficult, taken = [], [], []
        npos = 0
        for g in gts:
            m = g["classes"] == cls
            gt_boxes.append(g["boxes"][m])
            gt_difficult.append(g["difficult"][m])
            taken.append(np.zeros(int(m.sum()), bool))
            npos += int(np.sum(~g["difficult"][m]))
        if npos == 0:
            per_class[key] = float("nan")
            continue
        det_img, det_box, det_score = [], [], []
        for i, d in enumerate(dts):
            m = d["classes"] == cls
            det_img.extend([i] * int(m.sum()))
            det_box.extend(d["boxes"][m])
            det_score.extend(d["scores"][m])
        order = np.argsort(-np.asarray(det_score, np.float64), kind="mergesort")
        tp = np.zeros(len(order))
        fp = np.zeros(len(order))
        for rank, j in enumerate(order):
            i = det_img[j]
            boxes = gt_boxes[i]
            if boxes.shape[0] == 0:
                fp[rank] = 1
                continue
            ious = _iou_one_to_many(det_box[j], boxes)
            best = int(np.argmax(ious))
            if ious[best] >= iou_threshold:
                if gt_difficult[i][best]:
                    continue
                if not taken[i][best]:
                    taken[i][best] = True
                    tp[rank] = 1
                else:
                    fp[rank] = 1
            else:
                fp[rank] = 1
        tp = np.cumsum(tp)
        fp = np.cumsum(fp)
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        per_class[key] = _voc_ap(recall, precision, use_07_metric)
    values = [v for v in per_class.values() if not math.isnan(v)]
    return {"map": float(np.mean(values)) if values else float("nan"), "per_class": per_class}
