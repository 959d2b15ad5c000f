"""coco_map / coco_pr_curves: cross-checked against pycocotools run directly, and hand cases."""

import contextlib
import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from zoo.metrics import COCO_METRIC_NAMES, coco_map, coco_pr_curves

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def random_set(seed, n_images=7, n_classes=3, crowd=False):
    """Random GT/detections: varied sizes (small/medium/large), images without GT, images
    without detections, localisation noise, false positives, tied scores."""
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for i in range(n_images):
        n_gt = 0 if i == 1 else int(rng.integers(0, 6))
        size = rng.choice([8.0, 24.0, 60.0, 150.0], size=n_gt)
        xy = rng.uniform(0, 300, size=(n_gt, 2))
        wh = size[:, None] * rng.uniform(0.6, 1.4, size=(n_gt, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        classes = rng.integers(0, n_classes, size=n_gt)
        gt = {"boxes": boxes, "classes": classes, "image_size": (480, 480)}
        if crowd:
            gt["iscrowd"] = (rng.uniform(size=n_gt) < 0.2).astype(int)
        gts.append(gt)
        if i == 2:
            dts.append({"boxes": np.zeros((0, 4)), "classes": [], "scores": []})
            continue
        keep = rng.uniform(size=n_gt) < 0.8
        noisy = boxes[keep] + rng.normal(0, 0.08, size=(int(keep.sum()), 4)) * np.repeat(
            wh[keep], 2, axis=1
        )
        noisy[:, 2:] = np.maximum(noisy[:, 2:], noisy[:, :2] + 1)
        det_classes = classes[keep].copy()
        flip = rng.uniform(size=det_classes.shape) < 0.1
        det_classes[flip] = rng.integers(0, n_classes, size=int(flip.sum()))
        n_fp = int(rng.integers(0, 4))
        fxy = rng.uniform(0, 300, size=(n_fp, 2))
        fp = np.concatenate([fxy, fxy + rng.uniform(5, 120, size=(n_fp, 2))], axis=1)
        det_boxes = np.concatenate([noisy, fp])
        det_classes = np.concatenate([det_classes, rng.integers(0, n_classes, size=n_fp)])
        scores = np.round(rng.uniform(0.05, 1.0, size=len(det_boxes)), 1)  # ties included
        dts.append({"boxes": det_boxes, "classes": det_classes, "scores": scores})
    return gts, dts


def pycocotools_direct(gts, dts, cat_ids, max_dets=(1, 10, 100), only_cat=None):
    """The reference: COCO-format JSON dicts built here, loaded the way COCO files are."""
    gt_json = {
        "images": [{"id": i, "height": 480, "width": 480} for i in range(len(gts))],
        "categories": [{"id": int(c), "name": f"c{c}"} for c in cat_ids],
        "annotations": [],
    }
    for i, g in enumerate(gts):
        crowd = g.get("iscrowd", np.zeros(len(g["boxes"]), int))
        for box, cls, cr in zip(np.asarray(g["boxes"], float), g["classes"], crowd, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            gt_json["annotations"].append(
                {
                    "id": len(gt_json["annotations"]) + 1,
                    "image_id": i,
                    "category_id": int(cls),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(cr),
                }
            )
    results = []
    for i, d in enumerate(dts):
        for box, cls, s in zip(
            np.asarray(d["boxes"], float).reshape(-1, 4), d["classes"], d["scores"], strict=True
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            results.append(
                {
                    "image_id": i,
                    "category_id": int(cls),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(s),
                }
            )
    gt_json = json.loads(json.dumps(gt_json))  # as if read from a file
    results = json.loads(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_json
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.maxDets = list(max_dets)
        if only_cat is not None:
            ev.params.catIds = [only_cat]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_stats_match(ours, stats):
    for name, ref in zip(COCO_METRIC_NAMES, stats, strict=True):
        if ref == -1:
            assert math.isnan(ours[name]), (name, ours[name])
        else:
            assert ours[name] == pytest.approx(ref, abs=1e-12, rel=0), (name, ours[name], ref)


def one_image(gt_boxes, gt_classes, dt_boxes, dt_classes, scores):
    return (
        [{"boxes": gt_boxes, "classes": gt_classes}],
        [{"boxes": dt_boxes, "classes": dt_classes, "scores": scores}],
    )


# ---------------------------------------------------------------------------------------------
# cross-checks against pycocotools
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_pycocotools_direct(seed):
    gts, dts = random_set(seed)
    ours = coco_map(gts, dts)
    cat_ids = sorted({int(c) for x in gts + dts for c in x["classes"]})
    ref = pycocotools_direct(gts, dts, cat_ids)
    assert_stats_match(ours, ref.stats)
    # the data exercise every area range and both empty cases
    assert not math.isnan(ours["map_small"]) and not math.isnan(ours["map_large"])
    assert len(gts[1]["boxes"]) == 0 and len(dts[2]["boxes"]) == 0
    assert 0.0 < ours["map"] < 1.0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_images=st.integers(3, 9), n_classes=st.integers(1, 4))
def test_matches_pycocotools_property(seed, n_images, n_classes):
    gts, dts = random_set(seed, n_images, n_classes)
    if sum(len(d["scores"]) for d in dts) == 0:  # loadRes (the reference) fails on no results
        return
    cat_ids = sorted({int(c) for x in gts + dts for c in x["classes"]})
    assert_stats_match(coco_map(gts, dts), pycocotools_direct(gts, dts, cat_ids).stats)


def test_matches_pycocotools_with_crowd_and_class_names():
    gts, dts = random_set(5, n_images=8, crowd=True)
    assert any(g["iscrowd"].any() for g in gts)
    names = ["cat", "dog", "bird", "fish"]  # "fish" (id 3) has no boxes at all
    ours = coco_map(gts, dts, class_names=names)
    assert_stats_match(ours, pycocotools_direct(gts, dts, [0, 1, 2, 3]).stats)
    assert set(ours["per_class"]) == set(names)
    assert math.isnan(ours["per_class"]["fish"])


def test_per_class_matches_single_category_runs():
    gts, dts = random_set(7, n_images=8)
    ours = coco_map(gts, dts, class_names=["a", "b", "c"])
    for k, name in enumerate(["a", "b", "c"]):
        ref = pycocotools_direct(gts, dts, [0, 1, 2], only_cat=k)
        assert ours["per_class"][name] == pytest.approx(ref.stats[0], abs=1e-12, rel=0)
        assert ours["per_class_ap50"][name] == pytest.approx(ref.stats[1], abs=1e-12, rel=0)
    # map is the mean over classes with ground truth
    assert ours["map"] == pytest.approx(np.mean(list(ours["per_class"].values())), abs=1e-12)


def test_max_dets_matches_pycocotools_arrays():
    gts, dts = random_set(3, n_images=5)
    ours = coco_map(gts, dts, max_dets=20)
    cat_ids = sorted({int(c) for x in gts + dts for c in x["classes"]})
    ref = pycocotools_direct(gts, dts, cat_ids, max_dets=(1, 10, 20))
    # summarize() ignores maxDets for stats[0]; compare with the accumulated array instead
    precision = ref.eval["precision"][:, :, :, 0, 2]
    assert ours["map"] == pytest.approx(np.mean(precision[precision > -1]), abs=1e-12, rel=0)
    assert ours["map50"] == pytest.approx(ref.stats[1], abs=1e-12, rel=0)
    assert ours["mar_100"] == pytest.approx(ref.stats[8], abs=1e-12, rel=0)


# ---------------------------------------------------------------------------------------------
# hand-computed cases
# ---------------------------------------------------------------------------------------------

A = [10.0, 10.0, 50.0, 50.0]  # 40 x 40 = 1600 px: "medium"
B = [100.0, 100.0, 140.0, 140.0]
FAR = [300.0, 300.0, 340.0, 340.0]


def test_perfect_detector_is_one():
    gts, dts = random_set(11)
    perfect = [
        {"boxes": g["boxes"], "classes": g["classes"], "scores": np.ones(len(g["classes"]))}
        for g in gts
    ]
    out = coco_map(gts, perfect)
    for name in ("map", "map50", "map75", "mar_10", "mar_100"):
        assert out[name] == pytest.approx(1.0, abs=1e-12), name
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in out["per_class"].values())


def test_false_positive_above_true_positive():
    # 1 GT; detections ranked FP (0.9) then TP (0.8). At every IoU: recall [0, 1],
    # precision [0, 1/2] -> interpolated precision 1/2 at all 101 recall points -> AP = 1/2.
    gt, dt = one_image([A], [0], [FAR, A], [0, 0], [0.9, 0.8])
    out = coco_map(gt, dt)
    assert out["map"] == pytest.approx(0.5, abs=1e-12)
    assert out["map50"] == pytest.approx(0.5, abs=1e-12)
    assert out["mar_1"] == pytest.approx(0.0, abs=1e-12)  # the top-1 detection is the FP
    assert out["mar_10"] == pytest.approx(1.0, abs=1e-12)


def test_tp_fp_tp_101_point_interpolation():
    # 2 GT; ranked TP (0.9), FP (0.8), TP (0.7): recall [.5, .5, 1], precision [1, .5, 2/3].
    # Interpolated: 1 for recall thresholds 0..0.50 (51 points), 2/3 for 0.51..1 (50 points).
    gt, dt = one_image([A, B], [0, 0], [A, FAR, B], [0, 0, 0], [0.9, 0.8, 0.7])
    out = coco_map(gt, dt)
    expected = (51 * 1.0 + 50 * (2.0 / 3.0)) / 101
    assert out["map"] == pytest.approx(expected, abs=1e-12)
    assert out["map_medium"] == pytest.approx(expected, abs=1e-12)
    assert math.isnan(out["map_small"]) and math.isnan(out["map_large"])  # COCO's -1
    assert math.isnan(out["mar_small"]) and math.isnan(out["mar_large"])
    assert out["mar_1"] == pytest.approx(0.5, abs=1e-12)
    assert out["mar_100"] == pytest.approx(1.0, abs=1e-12)


def test_iou_between_thresholds():
    # GT 40x40, detection shifted by 8 px in x: IoU = 32*40 / (2*1600 - 1280) = 2/3, a TP at
    # thresholds 0.50..0.65 (4 of 10) -> AP@[.5:.95] = 0.4, AP50 = 1, AP75 = 0.
    gt, dt = one_image([A], [0], [[18.0, 10.0, 58.0, 50.0]], [0], [0.9])
    out = coco_map(gt, dt)
    assert out["map"] == pytest.approx(0.4, abs=1e-12)
    assert out["map50"] == pytest.approx(1.0, abs=1e-12)
    assert out["map75"] == pytest.approx(0.0, abs=1e-12)


def test_per_class_and_classes_without_ground_truth():
    # class 0 perfect, class 1: FP above TP (AP 1/2), class 2 only in detections (ignored).
    gt, dt = one_image([A, B], [0, 1], [A, FAR, B, A], [0, 1, 1, 2], [0.9, 0.9, 0.8, 0.95])
    out = coco_map(gt, dt, class_names=["a", "b", "c"])
    assert out["per_class"]["a"] == pytest.approx(1.0, abs=1e-12)
    assert out["per_class"]["b"] == pytest.approx(0.5, abs=1e-12)
    assert math.isnan(out["per_class"]["c"])
    assert out["map"] == pytest.approx(0.75, abs=1e-12)
    assert out["per_class_ap50"]["b"] == pytest.approx(0.5, abs=1e-12)


def test_max_dets_truncates_per_image():
    # The only TP is ranked 12th in its image: with max_dets=10 it is dropped.
    dt_boxes = [[400.0 + i, 400.0, 420.0 + i, 420.0] for i in range(11)] + [A]
    scores = [0.9 - 0.01 * i for i in range(12)]
    gt, dt = one_image([A], [0], dt_boxes, [0] * 12, scores)
    assert coco_map(gt, dt, max_dets=10)["map"] == 0.0
    assert coco_map(gt, dt, max_dets=10)["mar_100"] == 0.0
    assert coco_map(gt, dt)["map"] == pytest.approx(1 / 12, abs=1e-12)


def test_no_detections_anywhere_and_no_boxes_at_all():
    empty_dt = [{"boxes": [], "classes": [], "scores": []}] * 2
    gt = [{"boxes": [A], "classes": [0]}, {"boxes": [], "classes": []}]
    out = coco_map(gt, empty_dt)
    assert out["map"] == 0.0 and out["mar_100"] == 0.0
    out = coco_map([{"boxes": [], "classes": []}] * 2, empty_dt)
    assert all(math.isnan(out[k]) for k in COCO_METRIC_NAMES)
    assert out["per_class"] == {}


def test_lists_arrays_and_tensors_agree():
    tf = pytest.importorskip("tensorflow", reason="tensorflow is only used to build tensors")
    gts, dts = random_set(4)
    as_lists = (
        [{k: np.asarray(v).tolist() for k, v in g.items()} for g in gts],
        [{k: np.asarray(v).tolist() for k, v in d.items()} for d in dts],
    )
    as_tensors = (
        [
            {"boxes": tf.constant(g["boxes"], tf.float64), "classes": tf.constant(g["classes"])}
            for g in gts
        ],
        [
            {k: tf.constant(np.asarray(v, np.float64).reshape(np.shape(v))) for k, v in d.items()}
            for d in dts
        ],
    )
    ref = coco_map(gts, dts)
    for gt, dt in (as_lists, as_tensors):
        out = coco_map(gt, dt)
        for name in COCO_METRIC_NAMES:
            assert out[name] == pytest.approx(ref[name], abs=1e-15, nan_ok=True), name


# ---------------------------------------------------------------------------------------------
# PR curves
# ---------------------------------------------------------------------------------------------


def test_pr_curves_match_hand_case_and_average_to_ap50():
    gt, dt = one_image([A, B], [0, 0], [A, FAR, B], [0, 0, 0], [0.9, 0.8, 0.7])
    curves = coco_pr_curves(gt, dt, class_names=["a", "b"])
    recall, precision = curves["recall"], curves["precision"]["a"]
    assert recall.shape == (101,) and precision.shape == (101,)
    np.testing.assert_allclose(precision[:51], 1.0, atol=1e-12)
    np.testing.assert_allclose(precision[51:], 2.0 / 3.0, atol=1e-12)
    np.testing.assert_allclose(curves["scores"]["a"][:51], 0.9)
    np.testing.assert_allclose(curves["scores"]["a"][51:], 0.7)
    assert np.all(np.isnan(curves["precision"]["b"]))
    gts, dts = random_set(9)
    out = coco_map(gts, dts)
    curves = coco_pr_curves(gts, dts)
    for k, ap50 in out["per_class_ap50"].items():
        assert np.mean(curves["precision"][k]) == pytest.approx(ap50, abs=1e-12)


def test_pr_curves_rejects_unknown_threshold():
    gt, dt = one_image([A], [0], [A], [0], [0.9])
    with pytest.raises(ValueError, match=r"iou_threshold = 0\.3"):
        coco_pr_curves(gt, dt, iou_threshold=0.3)
    assert coco_pr_curves(gt, dt, iou_threshold=0.75)["precision"][0][0] == pytest.approx(1.0)
