"""Deployable YOLO: SavedModel (TF Serving, TF OD API outputs) + fp32/int8 ``.tflite``, verified.

Decoding and class-aware NMS ride inside every artifact (``detection_model``), on builtin ops
only. ``verify_export`` checks the SavedModel (in a process without zoo) and the fp32 ``.tflite``
against Keras, output by output, and else detection by detection up to near-tied scores
(``zoo.detection.verify``). An int8 ``.tflite`` cannot be compared detection by detection
(quantisation reorders near-tied boxes), so it is judged the way users judge it: its COCO
mAP@0.5 on validation images next to the fp32 file's, and it fails loudly when it collapses.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.detection.decode import detection_model
from zoo.detection.evaluate import collect_detections
from zoo.detection.model import HEAD_TAIL_LAYERS
from zoo.detection.verify import detection_compare
from zoo.export import (
    export_saved_model,
    export_tflite,
    next_version,
    run_tflite,
    verify_export,
)
from zoo.export.verify import check_int8_drop_action, report_int8_drop
from zoo.metrics import coco_map

__all__ = ["export_yolo", "next_version", "tflite_predict"]


def int8_float_layers(model):
    """Layers an int8 detector keeps float32: ``detections`` and the head's output layers.

    Int8, the joined head output took the range of one of its slices (the converter gives a
    slice its input's scale) and clipped the other logits; see ``export_yolo``.
    """
    names = {layer.name for layer in model.layers}
    return ("detections", *(name for name in HEAD_TAIL_LAYERS if name in names))


def _resized(images, size):
    return [
        np.asarray(tf.image.resize(tf.cast(image, tf.float32), size))
        if image.shape[:2] != tuple(size)
        else np.asarray(image, np.float32)
        for image in images
    ]


def tflite_predict(path, images, image_size):
    """Detections of a detection ``.tflite`` (``detection_model`` export) in each image's pixels.

    Args:
        path: the ``.tflite`` file.
        images: a list of ``(H_i, W_i, 3)`` images, 0-255.
        image_size: the model's ``(height, width)``; images are resized to it (bilinear).

    Returns:
        A list of ``{"boxes" (xyxy pixels), "scores", "classes"}``, one per image.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))  # opened once for all the images
    results = []
    for image, resized in zip(images, _resized(images, image_size), strict=True):
        out = run_tflite(interpreter, resized[None])
        n = int(out["num_detections"][0])
        height, width = image.shape[:2]
        ymin, xmin, ymax, xmax = np.asarray(out["detection_boxes"][0, :n]).T
        boxes = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
        results.append(
            {
                "boxes": boxes.astype(np.float32).reshape(-1, 4),
                "scores": np.asarray(out["detection_scores"][0, :n], np.float32),
                "classes": np.asarray(out["detection_classes"][0, :n]).astype(np.int32),
            }
        )
    return results


def _calibration_images(data, image_size, count):
    images = [e["images"] for e in data.dataset.take(count).as_numpy_iterator()]
    return np.stack(_resized(images, image_size))


def export_yolo(
    model,
    train_data,
    root,
    name,
    *,
    val_data=None,
    version=None,
    class_names=None,
    metrics=None,
    config=None,
    score_threshold=0.6,
    iou_threshold=0.5,
    max_detections=100,
    calibration_images=1000,
    int8_eval_images=200,
    int8_map50_tolerance=0.05,
    on_int8_drop="raise",
):
    """Export a trained YOLO for TF Serving and TFLite, with NMS inside, and verify it.

    Writes ``root/name/version/`` (SavedModel with ``serving_default`` on float images of any
    size and ``serving_bytes`` on encoded JPEG/PNG, ``manifest.json``), and in the same folder
    ``model_fp32.tflite`` and ``model_int8.tflite`` (int8 network, float32 interface, calibrated
    on ``calibration_images`` training images). The ``.tflite`` files take one image per call
    (batch 1, what phones run), so NMS has no loop: the converter leaves a loop body out of
    int8 calibration and quantized its scores and boxes blind (Fashion-objects, 10-minute model:
    int8 0.683 against fp32 0.719 mAP@.5 with the loop, 0.715 without). The int8 file keeps
    decoding + NMS (the ``detections`` layer) in float32: quantized, those ops fall off the
    XNNPACK fast path and made the int8 file slower than fp32 (1.07 vs 0.80 ms at batch 1;
    0.71 ms with them float). The head's output convs and the layers joining them stay float too
    (``int8_float_layers``): int8, they shared one range with the box offsets' and clipped the
    logits of a long-trained model (Fashion-objects, 30 minutes: int8 mAP@.5 0.642 with them
    int8, 0.797 with them float, fp32 0.799).

    Args:
        model: a trained ``YOLO``.
        train_data: ``DetectionData`` for int8 calibration.
        root, name: TF Serving model root and model name.
        val_data: ``DetectionData`` for the int8-vs-fp32 mAP check (default ``train_data``).
        version: version number (default: the next free one).
        class_names, metrics, config: recorded in the manifest.
        score_threshold, iou_threshold, max_detections: the in-graph NMS settings.
        calibration_images: int8 calibration sample size (all are used). 1,000: on the
            Fashion-objects 10-minute model int8 − fp32 mAP@.5 went from −0.041 (200) to −0.028
            (3,000: −0.026).
        int8_eval_images: images for the int8 mAP check.
        int8_map50_tolerance: the int8 file's mAP@0.5 may fall at most this far below the fp32
            file's; past it the int8 detector counts as collapsed.
        on_int8_drop: ``"raise"`` (default) or ``"warn"`` (log a warning and return with
            ``int8_ok`` False: the files stay for inspection, the failure is not hidden).

    Returns:
        ``{"saved_model", "tflite_fp32", "tflite_int8"`` (paths), ``"verify"`` (report),
        ``"int8_map50"``, ``"fp32_map50"``, ``"summary"`` (one line per artifact)``}``.

    Raises:
        zoo.export.ExportMismatchError: an artifact disagrees with Keras past its tolerance.
        RuntimeError: the int8 file lost more than ``int8_map50_tolerance`` of mAP@0.5
            (with ``on_int8_drop="raise"``).
    """
    check_int8_drop_action(on_int8_drop)
    size = tuple(int(d) for d in model.input.shape[1:3])
    names = list(class_names or train_data.class_names)
    detector = detection_model(
        model,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        max_detections=max_detections,
    )
    version = next_version(root, name) if version is None else version
    saved = export_saved_model(
        detector,
        root,
        name,
        version=version,
        class_names=names,
        metrics=metrics,
        config={
            **(config or {}),
            "score_threshold": score_threshold,
            "iou_threshold": iou_threshold,
            "max_detections": max_detections,
        },
        preprocessing={
            "input": "RGB float32 pixels 0-255 (or encoded JPEG/PNG bytes)",
            "resize": f"bilinear to {size[0]}x{size[1]} inside the graph",
            "boxes": "detection_boxes normalised [ymin, xmin, ymax, xmax]",
            "classes": "detection_classes are 0-based indices into class_names",
        },
    )
    calibration = _calibration_images(train_data, size, calibration_images)
    # The .tflite files take one image (phones): the batch-1 detector runs NMS without the
    # per-image WHILE loop, whose body full-integer quantization would leave uncalibrated.
    phone = detection_model(
        model,
        batch_size=1,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        max_detections=max_detections,
    )
    fp32 = export_tflite(phone, saved / "model_fp32.tflite")
    int8 = export_tflite(
        phone,
        saved / "model_int8.tflite",
        "int8",
        representative_dataset=calibration,
        num_calibration_samples=len(calibration),  # all of them (the converter's default: 200)
        float_layers=int8_float_layers(model),
    )
    sample = calibration[:8]
    report = verify_export(
        detector,
        sample,
        saved_model_dir=saved,
        tflite_paths=[fp32],
        compare=detection_compare(detector, sample),
    )

    check_data = val_data or train_data
    maps = {}
    for label, path in (("fp32", fp32), ("int8", int8)):
        _, truth, dets = collect_detections(
            lambda imgs, path=path: tflite_predict(path, imgs, size),
            check_data,
            max_images=int8_eval_images,
        )
        maps[label] = coco_map(truth, dets, class_names=names)["map50"]
    summary = {
        "saved_model": _verify_line(report["saved_model"]),
        fp32.name: _verify_line(report["tflite"][str(fp32)]),
        int8.name: f"mAP@.5 {maps['int8']:.4f} vs fp32 .tflite {maps['fp32']:.4f} on "
        f"{int8_eval_images} images, {int8.stat().st_size} bytes",
    }
    int8_ok = maps["int8"] >= maps["fp32"] - int8_map50_tolerance
    if not int8_ok:
        message = (
            f"{int8}: int8 mAP@0.5 {maps['int8']:.4f} is more than {int8_map50_tolerance} below "
            f"the fp32 file's {maps['fp32']:.4f}: the int8 detector collapsed"
        )
        report_int8_drop(message, on_int8_drop)
        summary[int8.name] = "WARNING, collapsed: " + summary[int8.name]
    return {
        "int8_ok": int8_ok,
        "saved_model": saved,
        "tflite_fp32": fp32,
        "tflite_int8": int8,
        "verify": report,
        "fp32_map50": maps["fp32"],
        "int8_map50": maps["int8"],
        "summary": summary,
    }


def _verify_line(entry):
    if "near_ties" in entry:
        ties = entry["near_ties"]
        return (
            f"detections equal up to near-tied scores ({ties['matched']} matched, "
            f"{ties['near_ties']} near-ties), {entry['size_bytes']} bytes"
        )
    worst = max(entry["outputs"].values(), key=lambda d: d["max_abs"] / max(d["limit"], 1e-12))
    return (
        f"max |diff| {worst['max_abs']:.3g} (limit {worst['limit']:.3g}), "
        f"{entry['size_bytes']} bytes"
    )
