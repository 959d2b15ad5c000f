"""Input validation of coco_map / voc_map: errors name the image index, the field and the value."""

import numpy as np
import pytest

from zoo.metrics import coco_map, coco_pr_curves, voc_map

A = [10.0, 10.0, 50.0, 50.0]


def good():
    gt = [{"boxes": [A], "classes": [0]}, {"boxes": [A, A], "classes": [1, 0]}]
    dt = [
        {"boxes": [A], "classes": [0], "scores": [0.9]},
        {"boxes": [A], "classes": [1], "scores": [0.8]},
    ]
    return gt, dt


@pytest.mark.parametrize("fn", [coco_map, voc_map])
def test_good_input_passes(fn):
    # class 1 found (AP 1); class 0 has 2 GT, 1 found: VOC AP 1/2, COCO AP 51/101
    # (precision 1 up to recall 0.50, then 0).
    gt, dt = good()
    expected = 0.75 if fn is voc_map else (1 + 51 / 101) / 2
    assert fn(gt, dt)["map"] == pytest.approx(expected, abs=1e-12)


CASES = [
    # (where to change, change, expected message regex)
    ("dt", lambda gt, dt: dt.pop(), r"ground_truth has 2 images but detections has 1"),
    (
        "gt",
        lambda gt, dt: gt[1].update(boxes=[A, [1.0, 2.0, 3.0]]),
        r"ground_truth\[1\]\.boxes\[1\] = \[1\.0, 2\.0, 3\.0\]: expected 4 numbers",
    ),
    (
        "dt",
        lambda gt, dt: dt[1].update(boxes=np.array([[1.0, 2.0, 3.0]])),
        r"detections\[1\]\.boxes\[0\] = \[1\.0, 2\.0, 3\.0\]: expected 4 numbers",
    ),
    (
        "gt",
        lambda gt, dt: gt[0].update(boxes=np.array(A)),
        r"ground_truth\[0\]\.boxes has shape \(4,\): expected \(N, 4\)",
    ),
    (
        "gt",
        lambda gt, dt: gt[1].update(classes=[1, -1]),
        r"ground_truth\[1\]\.classes\[1\] = -1: class ids must be >= 0",
    ),
    (
        "dt",
        lambda gt, dt: dt[0].update(classes=[0.5]),
        r"detections\[0\]\.classes\[0\] = 0\.5: class ids must be integers",
    ),
    (
        "dt",
        lambda gt, dt: dt[1].pop("scores"),
        r"detections\[1\]: missing field 'scores'",
    ),
    (
        "dt",
        lambda gt, dt: dt[0].update(scores=[0.9, 0.1]),
        r"detections\[0\]\.scores has 2 values but boxes has 1: scores = \[0\.9, 0\.1\]",
    ),
    (
        "dt",
        lambda gt, dt: dt[0].update(scores=[float("nan")]),
        r"detections\[0\]\.scores\[0\] = nan: scores must be finite",
    ),
    (
        "gt",
        lambda gt, dt: gt[1].update(classes=[0]),
        r"ground_truth\[1\]\.classes has 1 values but boxes has 2",
    ),
    (
        "gt",
        lambda gt, dt: gt[0].update(boxes=[[50.0, 10.0, 10.0, 50.0]]),
        r"ground_truth\[0\]\.boxes\[0\] = \[50\.0, 10\.0, 10\.0, 50\.0\]: x2 must be >= x1",
    ),
    (
        "gt",
        lambda gt, dt: gt[0].update(boxes=[[10.0, 10.0, 50.0, float("inf")]]),
        r"ground_truth\[0\]\.boxes\[0\] = \[10\.0, 10\.0, 50\.0, inf\]: .*finite",
    ),
    (
        "gt",
        lambda gt, dt: gt[0].pop("classes"),
        r"ground_truth\[0\]: missing field 'classes'",
    ),
    (
        "gt",
        lambda gt, dt: gt[0].update(iscrowd=[2]),
        r"ground_truth\[0\]\.iscrowd\[0\] = 2: expected 0/1",
    ),
    (
        "gt",
        lambda gt, dt: gt[0].update(image_size=(0, 10)),
        r"ground_truth\[0\]\.image_size = \[0, 10\]: expected \(height, width\) > 0",
    ),
    (
        "gt",
        lambda gt, dt: gt.__setitem__(1, [A]),
        r"ground_truth\[1\] = list: expected a dict",
    ),
]


@pytest.mark.parametrize("fn", [coco_map, voc_map])
@pytest.mark.parametrize("case", CASES, ids=[c[2][:40] for c in CASES])
def test_bad_input_names_image_field_and_value(fn, case):
    _, change, pattern = case
    gt, dt = good()
    change(gt, dt)
    with pytest.raises(ValueError, match=pattern):
        fn(gt, dt)


def test_class_names_bound_class_ids():
    gt, dt = good()
    with pytest.raises(
        ValueError, match=r"detections\[1\]\.classes\[0\] = 1: class id out of range for 1"
    ):
        coco_map(gt[:1] + [{"boxes": [], "classes": []}], dt, class_names=["only"])


def test_rejects_bad_options_and_empty_input():
    gt, dt = good()
    with pytest.raises(ValueError, match=r"max_dets = 5: expected an int >= 10"):
        coco_map(gt, dt, max_dets=5)
    with pytest.raises(ValueError, match=r"iou_type = 'segm': only 'bbox'"):
        coco_map(gt, dt, iou_type="segm")
    with pytest.raises(ValueError, match=r"ground_truth = \[\]: no images"):
        coco_map([], [])
    with pytest.raises(ValueError, match=r"ground_truth = dict: expected a list"):
        coco_map(gt[0], dt[0])
    with pytest.raises(ValueError, match=r"max_dets = 5"):
        coco_pr_curves(gt, dt, max_dets=5)


def test_empty_images_in_any_shape():
    gt = [{"boxes": [A], "classes": [0]}, {"boxes": np.zeros((0, 4)), "classes": np.zeros(0)}]
    for empty in ([], np.zeros((0,)), np.zeros((0, 4), np.float32)):
        dt = [
            {"boxes": [A], "classes": [0], "scores": [0.9]},
            {"boxes": empty, "classes": [], "scores": np.zeros(0)},
        ]
        assert coco_map(gt, dt)["map"] == pytest.approx(1.0, abs=1e-12)
        assert voc_map(gt, dt)["map"] == pytest.approx(1.0, abs=1e-12)


def test_inputs_are_not_modified():
    gt, dt = good()
    boxes = np.array([A], np.float32)
    gt[0]["boxes"] = boxes
    before = boxes.copy()
    coco_map(gt, dt)
    voc_map(gt, dt)
    np.testing.assert_array_equal(boxes, before)
    assert set(gt[0]) == {"boxes", "classes"} and set(dt[0]) == {"boxes", "classes", "scores"}
