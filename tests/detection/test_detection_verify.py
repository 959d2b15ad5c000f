"""Detections compared as sets: near-tied scores may swap, anything else fails."""

import keras
import numpy as np
import pytest

from zoo.detection import build_yolo, detection_compare, detection_model
from zoo.detection.verify import detection_candidates, match_detections

NMS = {"score_threshold": 0.3, "iou_threshold": 0.5, "max_detections": 5}


def _outputs(*images, max_detections=5):
    """TF OD API outputs from per-image lists of (box yxyx, score, class), padded with zeros."""
    boxes = np.zeros((len(images), max_detections, 4), np.float32)
    scores = np.zeros((len(images), max_detections), np.float32)
    classes = np.zeros((len(images), max_detections), np.float32)
    for i, detections in enumerate(images):
        for j, (box, score, label) in enumerate(detections):
            boxes[i, j], scores[i, j], classes[i, j] = box, score, label
    return {
        "detection_boxes": boxes,
        "detection_scores": scores,
        "detection_classes": classes,
        "num_detections": np.array([len(d) for d in images], np.float32),
    }


A = ([0.1, 0.1, 0.5, 0.5], 0.80, 1)
B = ([0.6, 0.6, 0.9, 0.9], 0.50, 0)
# Two near-tied boxes of one class at IoU 0.9: NMS keeps one of the two.
TWIN = ([0.1, 0.1, 0.5, 0.5], 0.4000, 2)
TWIN_SHIFTED = ([0.12, 0.1, 0.52, 0.5], 0.39999, 2)


def _candidates(*images):
    """Candidates before NMS, one list of (box, score, class) per image, padded to one length."""
    out = _outputs(*images, max_detections=max(len(d) for d in images))
    return out["detection_boxes"], out["detection_scores"], out["detection_classes"]


def _match(reference, artifact, extra_candidates=()):
    """One image: the candidates are the reference's detections plus ``extra_candidates``."""
    return match_detections(
        _outputs(reference),
        _outputs(artifact),
        _candidates(list(reference) + list(extra_candidates)),
        tolerance=1e-4,
        **NMS,
    )


def test_same_detections_in_another_order_match():
    result = _match([A, B], [B, A])
    assert result == {"matched": 2, "near_ties": 0, "unexplained": []}


def test_nms_keeping_the_other_of_a_tied_pair_is_a_near_tie():
    result = _match([A, TWIN], [A, TWIN_SHIFTED], [TWIN_SHIFTED])
    assert result == {"matched": 1, "near_ties": 1, "unexplained": []}


def test_a_kept_box_that_is_no_candidate_is_not_excused():
    result = _match([A, TWIN], [A, TWIN_SHIFTED])  # the same pair, TWIN_SHIFTED unknown
    assert result["matched"] == 1 and result["near_ties"] == 0
    assert any("is none of the candidates" in line for line in result["unexplained"])


def test_tied_scores_without_overlap_are_not_excused():
    far = ([0.6, 0.6, 0.9, 0.9], 0.39999, 2)
    result = _match([A, TWIN], [A, far], [far])
    assert result["matched"] == 1 and result["near_ties"] == 0
    assert len(result["unexplained"]) == 2
    assert result["unexplained"][0].startswith("image 0: Keras detection class 2 score 0.4000")


@pytest.mark.parametrize(
    "changed",
    [
        ([0.1, 0.1, 0.5, 0.5], 0.70, 1),  # score changed
        ([0.1, 0.1, 0.5, 0.5], 0.80, 0),  # class changed
        ([0.15, 0.1, 0.5, 0.5], 0.81, 1),  # box moved, score changed past the tolerance
    ],
)
def test_a_changed_detection_is_unexplained(changed):
    # Even when the model had such a candidate, it is no near-tie of the missing one.
    result = _match([A, B], [changed, B], [changed])
    assert result["matched"] == 1 and len(result["unexplained"]) == 2
    # A box that is none of the model's candidates fails, whatever its score.
    result = _match([A, B], [changed, B])
    assert any("is none of the candidates" in line for line in result["unexplained"])


def test_missing_detection_fails_unless_at_the_score_threshold():
    at_threshold = ([0.6, 0.1, 0.9, 0.4], NMS["score_threshold"] + 5e-5, 0)
    assert _match([A, at_threshold], [A])["unexplained"] == []
    assert len(_match([A, B], [A])["unexplained"]) == 1


def test_last_of_max_detections_may_differ_when_tied():
    full = [([0.1 * k, 0.0, 0.1 * k + 0.05, 0.05], 0.9 - 0.1 * k, 0) for k in range(4)]
    last = ([0.8, 0.8, 0.9, 0.9], 0.5, 1)
    other_last = ([0.0, 0.8, 0.1, 0.9], 0.5, 1)
    assert _match(full + [last], full + [other_last], [other_last])["unexplained"] == []
    # Below K detections the same swap is not a truncation tie.
    assert _match(full[:3] + [last], full[:3] + [other_last], [other_last])["unexplained"]


def test_images_are_matched_separately():
    result = match_detections(
        _outputs([A], [B]), _outputs([B], [A]), _candidates([A, B], [A, B]), tolerance=1e-4, **NMS
    )
    assert result["matched"] == 0 and len(result["unexplained"]) == 4
    assert {line.split(":")[0] for line in result["unexplained"]} == {"image 0", "image 1"}


@pytest.fixture(scope="module")
def detector_and_images():
    keras.utils.set_random_seed(0)
    model = build_yolo(
        3,
        input_shape=(128, 128, 3),
        grid_size=4,
        width_multiplier=0.125,
        anchors=[(0.1, 0.1), (0.3, 0.2), (0.6, 0.6)],
    )
    # A threshold under the untrained model's scores: every image keeps detections.
    detector = detection_model(model, score_threshold=0.01, iou_threshold=0.5, max_detections=5)
    images = np.random.default_rng(0).uniform(0, 255, (2, 128, 128, 3)).astype(np.float32)
    reference = {k: np.asarray(v) for k, v in detector(images).items()}
    return detector, images, reference


def _copy(outputs):
    return {k: v.copy() for k, v in outputs.items()}


def test_candidates_contain_every_detection(detector_and_images):
    detector, images, reference = detector_and_images
    boxes, scores, classes = detection_candidates(detector, images)
    assert boxes.shape[:2] == scores.shape == classes.shape and boxes.shape[0] == 2
    assert reference["num_detections"].min() >= 2
    for i in range(2):
        for j in range(int(reference["num_detections"][i])):
            gap = np.abs(boxes[i] - reference["detection_boxes"][i, j]).max(axis=-1)
            gap += np.abs(scores[i] - reference["detection_scores"][i, j])
            assert gap.min() < 1e-6  # each kept detection is one of the candidates


def test_compare_accepts_another_order_and_reports_it(detector_and_images):
    detector, images, reference = detector_and_images
    swapped = _copy(reference)
    n = int(reference["num_detections"][0])
    for key in ("detection_boxes", "detection_scores", "detection_classes"):
        swapped[key][0, :n] = reference[key][0, :n][::-1]  # image 0 listed in reverse
    entry, failures = detection_compare(detector, images)(
        "m.tflite", reference, swapped, "float32", 1e-4
    )
    assert failures == []
    assert entry["near_ties"] == {
        "matched": int(reference["num_detections"].sum()),
        "near_ties": 0,
        "unexplained": [],
    }
    # The output-by-output figures stay in the report.
    assert entry["outputs"]["detection_boxes"]["ok"] is False


def test_compare_keeps_output_by_output_when_it_passes(detector_and_images):
    detector, images, reference = detector_and_images
    entry, failures = detection_compare(detector, images)(
        "m.tflite", reference, reference, "float32", 1e-4
    )
    assert failures == [] and "near_ties" not in entry


def test_compare_fails_on_unexplained_and_on_nan(detector_and_images):
    detector, images, reference = detector_and_images
    compare = detection_compare(detector, images)
    moved = _copy(reference)
    moved["detection_boxes"][0, 0] += 0.05
    _, failures = compare("m.tflite", reference, moved, "float32", 1e-4)
    assert any("is none of the candidates" in line for line in failures)
    broken = _copy(reference)
    broken["detection_scores"][0, 0] = np.nan
    entry, failures = compare("m.tflite", reference, broken, "float32", 1e-4)
    assert any("NaN/Inf" in line for line in failures) and "near_ties" not in entry
