"""voc_map: against a NumPy reference written the classic (py-faster-rcnn voc_eval) way, and
hand-computed cases."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.metrics import voc_map

# ---------------------------------------------------------------------------------------------
# reference: the classic per-class voc_eval loop, with the two documented differences
# (continuous IoU without the +1, and ovmax >= threshold as in the MATLAB devkit).
# ---------------------------------------------------------------------------------------------


def reference_voc_ap(rec, prec, use_07_metric):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(11) / 10.0:
            p = 0.0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def reference_voc_eval(gts, dts, cls, ovthresh, use_07_metric):
    class_recs = {}
    npos = 0
    for i, g in enumerate(gts):
        boxes = np.asarray(g["boxes"], float).reshape(-1, 4)
        m = np.asarray(g["classes"]) == cls
        difficult = np.asarray(g.get("difficult", np.zeros(len(m))), bool)[m]
        npos += int(np.sum(~difficult))
        class_recs[i] = {"bbox": boxes[m], "difficult": difficult, "det": [False] * int(m.sum())}
    if npos == 0:
        return float("nan")
    image_ids, confidence, bb = [], [], []
    for i, d in enumerate(dts):
        boxes = np.asarray(d["boxes"], float).reshape(-1, 4)
        for box, c, s in zip(boxes, d["classes"], d["scores"], strict=True):
            if c == cls:
                image_ids.append(i)
                confidence.append(s)
                bb.append(box)
    sorted_ind = np.argsort(-np.asarray(confidence, float), kind="stable")
    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[sorted_ind[d]]]
        b = bb[sorted_ind[d]]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], b[0])
            iymin = np.maximum(BBGT[:, 1], b[1])
            ixmax = np.minimum(BBGT[:, 2], b[2])
            iymax = np.minimum(BBGT[:, 3], b[3])
            iw = np.maximum(ixmax - ixmin, 0.0)
            ih = np.maximum(iymax - iymin, 0.0)
            inters = iw * ih
            uni = (
                (b[2] - b[0]) * (b[3] - b[1])
                + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1])
                - inters
            )
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax >= ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return reference_voc_ap(rec, prec, use_07_metric)


def random_voc_set(seed, n_images=6, n_classes=3):
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for i in range(n_images):
        n = 0 if i == 0 else int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, size=(n, 2))
        wh = rng.uniform(10, 80, size=(n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        classes = rng.integers(0, n_classes, size=n)
        gts.append({"boxes": boxes, "classes": classes, "difficult": rng.uniform(size=n) < 0.2})
        if i == 1:
            dts.append({"boxes": [], "classes": [], "scores": []})
            continue
        keep = rng.uniform(size=n) < 0.85
        det = boxes[keep] + rng.normal(0, 6, size=(int(keep.sum()), 4))
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        dup = det[: int(rng.integers(0, 2))] + 1.0  # duplicates -> false positives
        n_fp = int(rng.integers(0, 4))
        fxy = rng.uniform(0, 200, size=(n_fp, 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(10, 80, size=(n_fp, 2))], axis=1)
        det_boxes = np.concatenate([det, dup, fp])
        det_classes = np.concatenate(
            [classes[keep], classes[keep][: len(dup)], rng.integers(0, n_classes, size=n_fp)]
        )
        scores = np.round(rng.uniform(size=len(det_boxes)), 2)
        dts.append({"boxes": det_boxes, "classes": det_classes, "scores": scores})
    return gts, dts


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_07_metric", [False, True])
@pytest.mark.parametrize("iou_threshold", [0.5, 0.7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_reference(seed, iou_threshold, use_07_metric):
    gts, dts = random_voc_set(seed)
    out = voc_map(gts, dts, iou_threshold=iou_threshold, use_07_metric=use_07_metric)
    refs = {c: reference_voc_eval(gts, dts, c, iou_threshold, use_07_metric) for c in range(3)}
    for c, ref in refs.items():
        assert out["per_class"][c] == pytest.approx(ref, abs=1e-12, nan_ok=True), c
    valid = [v for v in refs.values() if not math.isnan(v)]
    assert out["map"] == pytest.approx(np.mean(valid), abs=1e-12)
    assert 0.0 < out["map"] < 1.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_images=st.integers(2, 8),
    use_07_metric=st.booleans(),
)
def test_matches_numpy_reference_property(seed, n_images, use_07_metric):
    gts, dts = random_voc_set(seed, n_images)
    out = voc_map(gts, dts, use_07_metric=use_07_metric, class_names=["a", "b", "c"])
    for c, name in enumerate(["a", "b", "c"]):
        ref = reference_voc_eval(gts, dts, c, 0.5, use_07_metric)
        assert out["per_class"][name] == pytest.approx(ref, abs=1e-12, nan_ok=True)


A = [10.0, 10.0, 50.0, 50.0]
B = [100.0, 100.0, 140.0, 140.0]
FAR = [300.0, 300.0, 340.0, 340.0]


def test_hand_case_all_point_and_11_point():
    # 2 GT; ranked TP (0.9), FP (0.8), TP (0.7): recall [.5, .5, 1], precision [1, .5, 2/3].
    # All-point: 0.5 * 1 + 0.5 * 2/3 = 5/6.  11-point: t = 0..0.5 -> 1 (6 points),
    # t = 0.6..1 -> 2/3 (5 points): (6 + 10/3) / 11 = 28/33.
    gt = [{"boxes": [A, B], "classes": [0, 0]}]
    dt = [{"boxes": [A, FAR, B], "classes": [0, 0, 0], "scores": [0.9, 0.8, 0.7]}]
    assert voc_map(gt, dt)["map"] == pytest.approx(5 / 6, abs=1e-12)
    assert voc_map(gt, dt, use_07_metric=True)["map"] == pytest.approx(28 / 33, abs=1e-12)


def test_11_point_counts_recall_exactly_at_a_tenth():
    # 10 GT, the first 3 found by the top 3 detections, then 7 far FPs: recall reaches exactly
    # 3/10. Points t = 0, .1, .2, .3 get precision 1; the rest 0 -> AP = 4/11.
    gt_boxes = [[20.0 * i, 0.0, 20.0 * i + 10, 10.0] for i in range(10)]
    dt_boxes = gt_boxes[:3] + [[500.0 + i, 500.0, 510.0 + i, 510.0] for i in range(7)]
    gt = [{"boxes": gt_boxes, "classes": [0] * 10}]
    dt = [{"boxes": dt_boxes, "classes": [0] * 10, "scores": np.linspace(1.0, 0.1, 10)}]
    assert voc_map(gt, dt, use_07_metric=True)["map"] == pytest.approx(4 / 11, abs=1e-12)
    assert voc_map(gt, dt)["map"] == pytest.approx(0.3, abs=1e-12)


def test_difficult_boxes_are_ignored_and_duplicates_are_false_positives():
    # A difficult GT matched by the top detection: neither TP nor FP, not in the recall.
    gt = [{"boxes": [A, B], "classes": [0, 0], "difficult": [False, True]}]
    dt = [{"boxes": [B, A], "classes": [0, 0], "scores": [0.95, 0.9]}]
    assert voc_map(gt, dt)["map"] == pytest.approx(1.0, abs=1e-12)
    # the same without the flag: B is a normal GT and found -> still 1; drop the B detection:
    # recall 1/2 -> AP 1/2.
    gt_plain = [{"boxes": [A, B], "classes": [0, 0]}]
    assert voc_map(gt_plain, [{"boxes": [A], "classes": [0], "scores": [0.9]}])[
        "map"
    ] == pytest.approx(0.5, abs=1e-12)
    # duplicate of A ranked second: recall [1, 1], precision [1, 1/2] -> AP 1 (all-point)
    one = [{"boxes": [A], "classes": [0]}]
    dup = [{"boxes": [A, [11.0, 10.0, 50.0, 50.0]], "classes": [0, 0], "scores": [0.9, 0.8]}]
    assert voc_map(one, dup)["map"] == pytest.approx(1.0, abs=1e-12)
    # duplicate ranked FIRST (higher score, IoU 0.975): it takes A, the exact box becomes FP
    dup_first = [{"boxes": [[11.0, 10.0, 50.0, 50.0], A], "classes": [0, 0], "scores": [0.9, 0.8]}]
    assert voc_map(one, dup_first)["map"] == pytest.approx(1.0, abs=1e-12)
    assert voc_map(one, dup_first, iou_threshold=0.99)["map"] == pytest.approx(0.5, abs=1e-12)


def test_classes_without_ground_truth_are_nan_and_skipped():
    gt = [{"boxes": [A], "classes": [0]}, {"boxes": [], "classes": []}]
    dt = [
        {"boxes": [A], "classes": [0], "scores": [0.9]},
        {"boxes": [B], "classes": [1], "scores": [0.99]},
    ]
    out = voc_map(gt, dt, class_names=["a", "b"])
    assert out["per_class"]["a"] == pytest.approx(1.0)
    assert math.isnan(out["per_class"]["b"])
    assert out["map"] == pytest.approx(1.0)
    empty = voc_map([{"boxes": [], "classes": []}], [{"boxes": [], "classes": [], "scores": []}])
    assert math.isnan(empty["map"]) and empty["per_class"] == {}


def test_rejects_bad_threshold():
    gt = [{"boxes": [A], "classes": [0]}]
    dt = [{"boxes": [A], "classes": [0], "scores": [0.9]}]
    with pytest.raises(ValueError, match=r"iou_threshold = 1\.5"):
        voc_map(gt, dt, iou_threshold=1.5)
