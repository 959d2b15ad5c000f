"""Export: SavedModel for TF Serving (image + bytes signatures, manifest), TFLite, verification.

Example:
    >>> from zoo.export import export_saved_model, export_tflite, verify_export
    >>> path = export_saved_model(model, "saved_models", "classifier", version=1,
    ...                           class_names=["cat", "dog"])
    >>> export_tflite(model, "classifier_fp16.tflite", quantization="float16")
    >>> verify_export(model, images, saved_model_dir=path,
    ...               tflite_paths=["classifier_fp16.tflite"])
"""

from zoo.export.encoder import export_encoder
from zoo.export.saved_model import (
    BYTES_INPUT,
    IMAGES_INPUT,
    MANIFEST,
    SERVING_BYTES,
    SERVING_DEFAULT,
    export_saved_model,
    model_input_specs,
    next_version,
    output_dict,
    read_manifest,
)
from zoo.export.tflite import export_tflite, representative_samples
from zoo.export.verify import (
    DEFAULT_TOLERANCES,
    ExportMismatchError,
    check_tflite_structure,
    compare_outputs,
    run_saved_model_subprocess,
    run_tflite,
    tflite_quantization,
    verify_export,
)

__all__ = [
    "BYTES_INPUT",
    "DEFAULT_TOLERANCES",
    "ExportMismatchError",
    "IMAGES_INPUT",
    "MANIFEST",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "check_tflite_structure",
    "compare_outputs",
    "export_encoder",
    "export_saved_model",
    "export_tflite",
    "model_input_specs",
    "next_version",
    "output_dict",
    "read_manifest",
    "representative_samples",
    "run_saved_model_subprocess",
    "run_tflite",
    "tflite_quantization",
    "verify_export",
]
