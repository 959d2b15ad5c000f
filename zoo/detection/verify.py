"""Export checks for detections after NMS: equal up to near-tied scores.

NMS turns tiny numerical differences into different outputs when two scores are tied within
them: a TFLite kernel that rounds differently from TensorFlow may list two detections in the
other order, or keep the other box of an overlapping pair. A model that has barely trained is
full of such ties (every score sits near the objectness prior). ``detection_compare`` first
compares output by output, as ``verify_export`` always does; when only the detection outputs
differ, it matches the detections as a set and accepts the differences that near-ties explain,
judged against the model's own candidate boxes before NMS. Anything else (a box, score or class
with no counterpart, a box that is none of the model's candidates) still fails.
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.detection.decode import DETECTION_KEYS, decode_yolo_predictions
from zoo.export import compare_outputs
from zoo.ops.boxes import iou

__all__ = ["detection_candidates", "detection_compare", "match_detections"]


def _image(outputs, index):
    count = int(round(float(outputs["num_detections"][index])))
    return (
        np.asarray(outputs["detection_boxes"][index, :count], np.float64).reshape(-1, 4),
        np.asarray(outputs["detection_scores"][index, :count], np.float64).reshape(-1),
        np.rint(np.asarray(outputs["detection_classes"][index, :count])).astype(int).reshape(-1),
    )


def _describe(side, image, box, score, label, why="unmatched"):
    corners = ", ".join(f"{v:.4f}" for v in box)
    return f"image {image}: {side} detection class {label} score {score:.4f} [{corners}] {why}"


def _is_candidate(candidates, image, box, score, label, tolerance):
    boxes, scores, classes = (np.asarray(part[image], np.float64) for part in candidates)
    return bool(
        np.any(
            (np.rint(classes) == label)
            & (np.abs(scores - score) <= tolerance)
            & (np.abs(boxes - box).max(axis=-1) <= tolerance)
        )
    )


def detection_candidates(detector, images):
    """The candidate boxes of a ``detection_model`` before NMS, in its box format.

    Args:
        detector: a ``detection_model`` (a YOLO followed by its ``detections`` layer).
        images: the batch the detector is checked on.

    Returns:
        ``(boxes, scores, classes)`` NumPy arrays: ``(batch, N, 4)``, ``(batch, N)``, ``(batch, N)``.
    """
    layer = detector.get_layer("detections")
    raw = keras.Model(detector.input, layer.input)(np.asarray(images, np.float32), training=False)
    boxes, scores, classes = decode_yolo_predictions(
        raw,
        layer.num_classes,
        layer.boxes_per_cell,
        layer.anchors,
        layer.multi_label,
        layer.xy_scale,
    )
    boxes = np.asarray(boxes)
    if layer.box_format == "rel_yxyx":
        boxes = boxes[..., [1, 0, 3, 2]]
    return boxes, np.asarray(scores), np.asarray(classes)


def _pair_ties(left, right, tolerance, iou_threshold):
    """Pairs (i, j) of left/right leftovers: one class, scores tied, boxes overlapping at NMS."""
    (lb, ls, lc), (rb, rs, rc) = left, right
    pairs, used = [], set()
    if not len(ls) or not len(rs):
        return pairs
    overlap = np.asarray(iou(lb.astype(np.float32), rb.astype(np.float32)))
    for i in range(len(ls)):
        for j in range(len(rs)):
            if (
                j not in used
                and lc[i] == rc[j]
                and abs(ls[i] - rs[j]) <= tolerance
                and overlap[i, j] >= iou_threshold - tolerance
            ):
                pairs.append((i, j))
                used.add(j)
                break
    return pairs


def match_detections(
    reference, outputs, candidates, *, tolerance, score_threshold, iou_threshold, max_detections
):
    """Match an artifact's detections to the reference's, up to near-tied scores.

    Detections are matched as a set, per image: same class, score and box corners within
    ``tolerance``. Of those left over, these are near-ties and are accepted, provided an
    artifact detection is one of the model's ``candidates``: a reference and an artifact
    detection of one class with scores within ``tolerance`` whose boxes overlap at
    ``iou_threshold`` (NMS kept the other one of the pair); a detection whose score is within
    ``tolerance`` of ``score_threshold``; with ``max_detections`` kept, one within
    ``tolerance`` of the lowest kept score.

    Args:
        reference, outputs: TF OD API outputs (``DETECTION_KEYS``) of the Keras detector
            and of the artifact, batch first.
        candidates: the Keras detector's ``(boxes, scores, classes)`` before NMS, in the
            outputs' box format (``detection_candidates``).
        tolerance: the largest accepted difference of a score or a box corner (relative
            coordinates), and the width of a tie.
        score_threshold, iou_threshold, max_detections: the NMS settings of the detector.

    Returns:
        ``{"matched": int, "near_ties": int, "unexplained": [str, ...]}``.

    Example:
        >>> match_detections(keras_out, tflite_out, detection_candidates(detector, images),
        ...                  tolerance=1e-4, score_threshold=0.6, iou_threshold=0.5,
        ...                  max_detections=100)["unexplained"]
        []
    """
    matched = near_ties = 0
    unexplained = []
    for image in range(len(reference["num_detections"])):
        ref, got = _image(reference, image), _image(outputs, image)
        free = np.ones(len(got[1]), bool)
        left = []
        for i in np.argsort(-ref[1], kind="stable"):
            close = (
                free
                & (got[2] == ref[2][i])
                & (np.abs(got[1] - ref[1][i]) <= tolerance)
                & (np.abs(got[0] - ref[0][i]).max(axis=1, initial=0.0) <= tolerance)
            )
            if close.any():
                hits = np.flatnonzero(close)
                free[hits[np.argmin(np.abs(got[1][hits] - ref[1][i]))]] = False
                matched += 1
            else:
                left.append(i)
        right = []
        for j in np.flatnonzero(free):
            box, score, label = got[0][j], got[1][j], got[2][j]
            if _is_candidate(candidates, image, box, score, label, tolerance):
                right.append(j)
            else:
                unexplained.append(
                    _describe("artifact", image, box, score, label, "is none of the candidates")
                )
        leftovers = [tuple(part[left] for part in ref), tuple(part[right] for part in got)]
        pairs = _pair_ties(*leftovers, tolerance, iou_threshold)
        near_ties += len(pairs)
        paired = [{i for i, _ in pairs}, {j for _, j in pairs}]
        for side, (boxes, scores, labels), full, taken in zip(
            ("Keras", "artifact"), leftovers, (ref, got), paired, strict=True
        ):
            lowest = full[1].min(initial=np.inf)
            for k in range(len(scores)):
                if k in taken:
                    continue
                at_edge = abs(scores[k] - score_threshold) <= tolerance or (
                    len(full[1]) >= max_detections and scores[k] <= lowest + tolerance
                )
                if at_edge:
                    near_ties += 1
                else:
                    unexplained.append(_describe(side, image, boxes[k], scores[k], labels[k]))
    return {"matched": matched, "near_ties": near_ties, "unexplained": unexplained}


def detection_compare(detector, images):
    """A ``verify_export`` ``compare`` for a detector: output by output, else up to near-ties.

    Args:
        detector: the ``detection_model`` being verified (its ``detections`` layer gives the
            NMS settings).
        images: the batch ``verify_export`` is given (the candidates are computed on it).

    Returns:
        A function with ``zoo.export.compare_outputs``'s arguments and return value. When the
        only failures are differences of the detection outputs, it calls ``match_detections``
        and records the result as the entry's ``"near_ties"``; the artifact passes when every
        difference is a near-tie.

    Example:
        >>> verify_export(detector, images, tflite_paths=[path],
        ...               compare=detection_compare(detector, images))
    """
    layer = detector.get_layer("detections")
    candidates = []  # computed once, on the first artifact that needs them

    def compare(label, reference, outputs, kind, tolerance):
        entry, failures = compare_outputs(label, reference, outputs, kind, tolerance)
        # One failure line per differing output and nothing else: no NaN/Inf line, no shape
        # mismatch (those entries have no max_abs), no missing output.
        differing = {name for name, out in entry["outputs"].items() if not out.get("ok", False)}
        only_detections_differ = (
            differing
            and differing <= set(DETECTION_KEYS) <= set(outputs)
            and len(failures) == len(differing)
            and all("max_abs" in entry["outputs"][name] for name in differing)
        )
        if not only_detections_differ:
            return entry, failures
        if not candidates:
            candidates.append(detection_candidates(detector, images))
        result = match_detections(
            reference,
            outputs,
            candidates[0],
            tolerance=tolerance,
            score_threshold=layer.score_threshold,
            iou_threshold=layer.iou_threshold,
            max_detections=layer.max_detections,
        )
        entry["near_ties"] = result
        if result["unexplained"]:
            return entry, failures + [f"{label}: {line}" for line in result["unexplained"][:5]]
        return entry, []

    return compare
