"""Export an encoder (image → feature / embedding vector) for serving, in one call.

The metric-learning towers, the self-supervised encoders and the multimodal towers all ship the
same way: a TF Serving SavedModel (``serving_default``: images → vector; ``serving_bytes`` for
image models), a ``model_fp32.tflite`` (and optionally an int8 one) beside it, all checked
against the Keras model with ``verify_export``.

Example:
    >>> saved, report = export_encoder(encoder, "saved_models", "ssl_rotation", images[:8])
"""

from __future__ import annotations

import numpy as np

from zoo.export.saved_model import export_saved_model, next_version
from zoo.export.tflite import export_tflite
from zoo.export.verify import verify_export

__all__ = ["export_encoder"]


def export_encoder(
    encoder,
    root,
    name,
    sample,
    *,
    version=None,
    class_names=None,
    metrics=None,
    config=None,
    preprocessing=None,
    int8_samples=None,
    tolerances=None,
    image_input=True,
    verbose=True,
):
    """SavedModel + ``.tflite`` files of ``encoder`` under ``root/name/<version>/``, verified.

    Args:
        encoder: single-input ``keras.Model`` (image models take float32 pixels 0–255).
        root, name: TF Serving model root and model name.
        sample: a batch of inputs for the parity check (e.g. 8 test images).
        version: TF Serving version; ``None`` takes the next free one.
        class_names, metrics, config, preprocessing: written to ``manifest.json``.
        int8_samples: calibration inputs; when given, ``model_int8.tflite`` is written too.
        tolerances: ``verify_export`` tolerances (by kind or path).
        image_input: the input is an image (adds the image-bytes signature).
        verbose: print where the files went.

    Returns:
        ``(saved_model_dir, verify_export report)``.
    """
    version = next_version(root, name) if version is None else version
    saved = export_saved_model(
        encoder,
        root,
        name,
        version=version,
        class_names=class_names,
        metrics=metrics,
        config=config,
        preprocessing=preprocessing,
        image_input=image_input,
    )
    paths = [export_tflite(encoder, saved / "model_fp32.tflite")]
    if int8_samples is not None:
        paths.append(
            export_tflite(
                encoder,
                saved / "model_int8.tflite",
                "int8",
                representative_dataset=np.asarray(int8_samples),
            )
        )
    report = verify_export(
        encoder, sample, saved_model_dir=saved, tflite_paths=paths, tolerances=tolerances
    )
    if verbose:
        print(f"exported {saved} (+ {', '.join(p.name for p in paths)}); verify_export passed")
    return saved, report
