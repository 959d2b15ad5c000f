"""Deployable landmark model: SavedModel (TF Serving) + fp32 / int8 ``.tflite``, verified.

Every artifact returns what ``pixel_landmark_model`` returns: ``presence (B,)`` and
``landmarks (B, K, 2)`` in pixels of the input image (the SavedModel: of the image the client
sent, at any size). The int8 file is an int8 body with a float32 interface; for the heatmap
head the soft-argmax (the ``landmarks`` layer) stays float, because int8 probabilities lose the
small weights that place a point between heatmap cells (int8 − fp32 NME +0.10 points with it
float, +0.63 fully int8; docs/landmarks.md). ``verify_export`` checks every artifact output by
output against Keras, and the NME of both ``.tflite`` files on validation batches measures the
int8 drift the way users judge it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.export import (
    export_saved_model,
    export_tflite,
    next_version,
    run_tflite,
    verify_export,
)
from zoo.export.verify import check_int8_drop_action, report_int8_drop
from zoo.landmarks.metrics import collect_predictions, metrics_from_predictions, nme
from zoo.landmarks.model import pixel_landmark_model, serving_outputs_fn

__all__ = ["export_landmarks", "int8_tolerance", "tflite_predict"]

LANDMARKS_UNITS = "pixels of the input image (continuous: pixel i spans [i, i+1])"


def tflite_predict(path, batch_size=64):
    """``fn(images) -> {"presence", "landmarks"}`` running a landmark ``.tflite`` in batches."""

    def predict(images):
        outs = [
            run_tflite(path, images[i : i + batch_size]) for i in range(0, len(images), batch_size)
        ]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    return predict


def int8_tolerance(pixel_model, sample, floor=0.02):
    """The int8 ``verify_export`` tolerance of a landmark model on ``sample``.

    10 % of each output's range on ``sample`` (``verify_export``'s int8 default), but never
    below ``floor`` of the output's full scale (1 for presence, the image side for landmarks):
    an untrained model has nearly constant outputs, and a limit relative to a near-zero range
    would reject ordinary int8 rounding.

    Args:
        pixel_model: ``pixel_landmark_model(model)``.
        sample: float32 images ``(B, H, W, 3)``.
        floor: the smallest tolerance as a fraction of the full scale.

    Returns:
        The relative tolerance (a float) to pass for the int8 file.
    """
    outputs = pixel_model.predict_on_batch(sample)
    side = float(max(sample.shape[1:3]))
    tolerance = 0.1
    for name, full_scale in (("presence", 1.0), ("landmarks", side)):
        spread = float(np.ptp(np.asarray(outputs[name])))
        tolerance = max(tolerance, floor * full_scale / max(spread, 1e-6))
    return tolerance


def _images(batches, count):
    """The first ``count`` images of ``(images, targets)`` batches (float32)."""
    images, total = [], 0
    for batch, _ in batches:
        batch = np.asarray(batch, np.float32)
        images.append(batch)
        total += len(batch)
        if total >= count:
            break
    if not images:
        raise ValueError("the batches hold no images")
    return np.concatenate(images)[:count]


def _nme_options(eye_indices):
    if eye_indices is None:
        return {"normalization": "box_diagonal"}
    return {"normalization": "inter_ocular", "eye_indices": eye_indices}


def export_landmarks(
    model,
    train_batches,
    val_batches,
    root,
    name="landmarks",
    *,
    version=None,
    eye_indices=None,
    metrics=None,
    config=None,
    calibration_images=200,
    verify_images=8,
    float_layers=None,
    int8_nme_tolerance=0.005,
    on_int8_drop="warn",
):
    """Export a trained landmark model for TF Serving and TFLite, verify it, measure int8 drift.

    Writes ``root/name/version/`` (SavedModel: ``serving_default`` on float images of any size,
    ``serving_bytes`` on encoded JPEG/PNG, outputs ``presence`` and ``landmarks`` in pixels of
    the sent image; ``manifest.json``) and, in the same folder, ``model_fp32.tflite`` and
    ``model_int8.tflite`` (int8 body calibrated on ``calibration_images`` training images,
    float32 interface; the heatmap head's soft-argmax stays float). All three are checked
    against the Keras model with ``verify_export`` on the first ``verify_images`` validation
    images; then both ``.tflite`` files predict every validation batch and their NME is compared.

    Args:
        model: a trained ``LandmarkModel`` (``build_landmark_model``).
        train_batches: ``(images, targets)`` batches for int8 calibration (e.g. the training
            ``landmark_pipeline``; augmented batches are fine). Only the first images are read.
        val_batches: ``(images, targets)`` batches for the parity check and the NME of the
            ``.tflite`` files (``landmark_pipeline`` of the validation split, finite).
        root, name: TF Serving model root and model name.
        version: version number (default: the next free one).
        eye_indices: the eyes for inter-ocular NME (``LandmarkData.eye_indices``); ``None``
            normalises by the box diagonal.
        metrics, config: recorded in the manifest (``config`` gains ``landmarks_units`` and
            ``head``).
        calibration_images: int8 calibration sample size.
        verify_images: validation images for ``verify_export``.
        float_layers: layers kept float in the int8 file; ``None``: ``("landmarks",)`` (the
            soft-argmax) for the heatmap head, none for the regression head.
        int8_nme_tolerance: the int8 file's NME may exceed the fp32 file's by at most this
            much (0.005 = 0.5 points of NME, the family's target).
        on_int8_drop: ``"warn"`` (default: log a warning, ``int8_ok`` False) or ``"raise"``.

    Returns:
        ``{"saved_model", "tflite_fp32", "tflite_int8"`` (paths), ``"verify"`` (the
        ``verify_export`` report), ``"metrics"`` (``{"tflite_fp32": ..., "tflite_int8": ...}``
        landmark metrics), ``"nme"`` (per-image NME of each file, for CED plots),
        ``"int8_nme_minus_fp32"``, ``"int8_ok"``, ``"max_abs"`` (largest difference to Keras
        per artifact and output)``}``.

    Raises:
        zoo.export.ExportMismatchError: an artifact disagrees with Keras past its tolerance.
        RuntimeError: the int8 NME exceeds the fp32 NME by more than ``int8_nme_tolerance``
            (with ``on_int8_drop="raise"``).

    Example:
        >>> out = export_landmarks(model, train_ds, val_ds, "saved_models",
        ...                        eye_indices=val_data.eye_indices)
        >>> out["int8_nme_minus_fp32"]
    """
    check_int8_drop_action(on_int8_drop)
    size = tuple(int(d) for d in model.input_shape[1:3])
    head = getattr(model, "head", None)
    if float_layers is None:
        float_layers = ("landmarks",) if head == "heatmap" else ()
    pixels = pixel_landmark_model(model)
    version = next_version(root, name) if version is None else version
    saved = export_saved_model(
        model,
        root,
        name,
        version=version,
        outputs_fn=serving_outputs_fn(size),
        metrics=metrics,
        config={**(config or {}), "landmarks_units": LANDMARKS_UNITS, "head": head},
    )
    calibration = _images(train_batches, calibration_images)
    fp32 = export_tflite(pixels, saved / "model_fp32.tflite")
    int8 = export_tflite(
        pixels,
        saved / "model_int8.tflite",
        quantization="int8",
        representative_dataset=calibration,
        float_layers=tuple(float_layers),
    )
    sample = _images(val_batches, verify_images)
    report = verify_export(
        pixels,
        sample,
        saved_model_dir=saved,
        tflite_paths=[fp32, int8],
        tolerances={str(int8): int8_tolerance(pixels, sample)},
    )

    options = _nme_options(eye_indices)
    file_metrics, curves = {}, {}
    for kind, path in (("tflite_fp32", fp32), ("tflite_int8", int8)):
        got = collect_predictions(tflite_predict(path), val_batches, size)
        file_metrics[kind] = metrics_from_predictions(got, **options)
        curves[kind] = nme(
            got["pred_landmarks"],
            got["true_landmarks"],
            got["visibility"],
            got["true_presence"],
            **options,
        )
    drift = file_metrics["tflite_int8"]["nme"] - file_metrics["tflite_fp32"]["nme"]
    int8_ok = bool(drift <= int8_nme_tolerance)
    if not int8_ok:
        message = (
            f"{int8}: int8 NME {file_metrics['tflite_int8']['nme']:.4f} is more than "
            f"{int8_nme_tolerance} above the fp32 file's {file_metrics['tflite_fp32']['nme']:.4f}"
        )
        report_int8_drop(message, on_int8_drop)
    return {
        "saved_model": saved,
        "tflite_fp32": fp32,
        "tflite_int8": int8,
        "verify": report,
        "metrics": file_metrics,
        "nme": curves,
        "int8_nme_minus_fp32": drift,
        "int8_ok": int8_ok,
        "max_abs": {
            Path(k).name: {o: e["max_abs"] for o, e in v["outputs"].items()}
            for k, v in {"saved_model": report["saved_model"], **report["tflite"]}.items()
        },
    }
