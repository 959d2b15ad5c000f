"""TFLite (LiteRT) export: fp32, float16, dynamic-range and full-integer int8.

The model goes through ``keras.export.ExportArchive`` -> SavedModel (in a temporary directory) ->
``tf.lite.TFLiteConverter.from_saved_model``: this path freezes the tracked Keras 3 variables into
the flatbuffer (a hand-made ``tf.Module`` wrapper was seen to give a weightless file that outputs
NaN). Only builtin ops are allowed (``TFLITE_BUILTINS``; ``TFLITE_BUILTINS_INT8`` for int8), never
``SELECT_TF_OPS``, so the file runs on the plain LiteRT runtime.

The ``.tflite`` takes the model's own inputs (names from ``model_input_specs``; an image model
takes float32 pixels 0–255 at the model's own size, batch dimension dynamic, no in-graph resize)
and returns the same named outputs as the SavedModel (``output_dict``), as one
``serving_default`` signature.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.export.saved_model import SERVING_DEFAULT, build_archive, model_input_specs
from zoo.export.verify import check_tflite_structure

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
IO_DTYPES = ("float32", "int8", "uint8")


def _as_numpy(value):
    if isinstance(value, tf.Tensor):
        return value.numpy()
    return np.asarray(value)


def _sample_to_feeds(sample, names, specs):
    """One representative sample -> list of ``{name: array with batch 1}`` feeds."""
    if isinstance(sample, dict):
        if all(n in sample for n in names):
            arrays = [sample[n] for n in names]
        elif len(names) == 1 and "images" in sample:
            arrays = [sample["images"]]
        else:
            raise ValueError(
                f"representative_dataset: a dict sample needs the keys {names}; "
                f"got keys {sorted(map(str, sample))}"
            )
    elif isinstance(sample, (list, tuple)):
        if len(names) == 1 and len(sample) >= 1:
            # A single-input model: the sample is [x] or an (x, y) pair as fed to fit().
            arrays = [sample[0]]
        elif len(sample) == len(names):
            arrays = list(sample)
        else:
            raise ValueError(
                f"representative_dataset: a sample has {len(sample)} parts, the model has "
                f"{len(names)} inputs {names}"
            )
    else:
        if len(names) != 1:
            raise ValueError(
                f"representative_dataset: the model has inputs {names}; yield a dict or a "
                "tuple per sample"
            )
        arrays = [sample]

    batched = []
    for name, spec, array in zip(names, specs, arrays, strict=True):
        array = _as_numpy(array).astype(spec.dtype.as_numpy_dtype)
        rank = spec.shape.rank
        if array.ndim == rank - 1:
            array = array[np.newaxis]
        if array.ndim != rank or any(
            d is not None and d != a for d, a in zip(spec.shape[1:], array.shape[1:], strict=True)
        ):
            raise ValueError(
                f"representative_dataset: input {name!r} expects shape {spec.shape.as_list()}, "
                f"got a sample of shape {list(array.shape)}"
            )
        batched.append(array)
    count = batched[0].shape[0]
    return [{n: a[i : i + 1] for n, a in zip(names, batched, strict=True)} for i in range(count)]


def _op_output_names(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [
        tensors[op["outputs"][0]]
        for op in interpreter._get_ops_details()
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and len(op["outputs"])
    ]


def _keep_layers_float(converter, flatbuffer, layers, feeds):
    """Re-quantize with the ops of ``layers`` (matched in the int8 file's tensor names, which
    carry the Keras layer path ``.../<layer>_<n>/...``) left in float32."""
    import re

    names = _op_output_names(flatbuffer)
    nodes = []
    for layer in layers:
        pattern = re.compile(rf"(^|/){re.escape(layer)}(_\d+)?/")
        found = [n for n in names if pattern.search(n)]
        if not found:
            raise ValueError(
                f"float_layers: no op of layer {layer!r} in the converted model. "
                f"Received: float_layers={layers}"
            )
        nodes.extend(found)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: iter(feeds[:8]),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes),
    )
    return debugger.get_nondebug_quantized_model()


def representative_samples(dataset, model, limit=200):
    """Normalise a representative dataset into ``{input_name: array[1, ...]}`` feeds.

    Args:
        dataset: a callable returning an iterable (e.g. a generator function), a numpy array of
            samples (first axis = samples) or a ``tf.data.Dataset``. Each element may be an array
            (one sample or a batch), a tuple ``(x,)`` / ``(x, y)`` (targets ignored for a
            single-input model), a tuple with one array per input, or a dict keyed by input name
            (``{"images": ...}`` also works for a single-input model).
        model: the model being converted (gives input names, shapes and dtypes).
        limit: the most samples used for calibration.

    Returns:
        A list of feed dicts, each holding arrays with batch size 1.
    """
    names, specs, _ = model_input_specs(model)
    if isinstance(dataset, tf.data.Dataset):
        elements = dataset.take(limit).as_numpy_iterator()
    elif isinstance(dataset, np.ndarray):
        rank = specs[0].shape.rank
        elements = [dataset] if dataset.ndim == rank - 1 else list(dataset[:limit])
    elif callable(dataset):
        elements = dataset()
    else:
        raise TypeError(
            "representative_dataset must be a callable generator, a numpy array or a "
            f"tf.data.Dataset. Received: {type(dataset).__name__}"
        )
    feeds = []
    for sample in elements:
        feeds.extend(_sample_to_feeds(sample, names, specs))
        if len(feeds) >= limit:
            break
    if not feeds:
        raise ValueError("representative_dataset yielded no samples.")
    return feeds[:limit]


def export_tflite(
    model,
    path,
    quantization=None,
    representative_dataset=None,
    *,
    io_dtype="float32",
    num_calibration_samples=200,
    outputs_fn=None,
    float_layers=(),
):
    """Convert ``model`` to a ``.tflite`` file that uses builtin ops only.

    Quantization modes:

    - ``None``: float32 weights and activations.
    - ``"float16"``: float16 weights (dequantized at load), float32 compute.
    - ``"dynamic"``: int8 weights (tensors of 1024+ elements), activations quantized on the fly.
    - ``"int8"``: full-integer: weights and activations int8, calibrated on
      ``representative_dataset`` (required), only ``TFLITE_BUILTINS_INT8`` ops, so an op without
      an int8 kernel makes the conversion fail instead of silently staying float. The interface
      stays float32 by default (a QUANTIZE op in front, DEQUANTIZE at the end); ``io_dtype="int8"``
      or ``"uint8"`` makes inputs and outputs integer too (use each tensor's scale/zero point).

    Args:
        model: a built functional or Sequential ``keras.Model``.
        path: output file, must end with ``.tflite``; parent directories are created, an existing
            file is replaced.
        quantization: ``None``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
        representative_dataset: int8 only: a callable generator, a numpy array of samples or a
            ``tf.data.Dataset`` of model inputs (see ``representative_samples``).
        io_dtype: ``"float32"`` (default), ``"int8"`` or ``"uint8"`` (int8 quantization only).
        num_calibration_samples: the most samples drawn from ``representative_dataset``.
        outputs_fn: optional in-graph post-processing as in ``export_saved_model``
            (``image_shapes`` is ``None`` here); it must use builtin-convertible ops.
        float_layers: int8 only: names of layers whose ops stay float32 (mixed int8: the
            TensorFlow Lite quantization debugger's ``denylisted_nodes``), for a numerically
            delicate head, e.g. a soft-argmax, on an int8 body. Float builtin ops are then
            allowed next to the int8 ones; an unknown name raises ``ValueError``. Layers are
            found by the Keras layer path in the converted ops' names; the op that produces a
            model output is named after the output instead, so name a layer before it.

    Returns:
        ``pathlib.Path`` of the written file.

    Example:
        >>> export_tflite(model, "out/model_int8.tflite", "int8",
        ...               representative_dataset=images[:100])
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization must be one of {QUANTIZATIONS}. Received: quantization={quantization!r}"
        )
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype must be one of {IO_DTYPES}. Received: io_dtype={io_dtype!r}")
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(
            f"io_dtype={io_dtype!r} needs quantization='int8'. Received: "
            f"quantization={quantization!r}"
        )
    if quantization == "int8" and representative_dataset is None:
        raise ValueError(
            "quantization='int8' needs representative_dataset (a callable generator, a numpy "
            "array of samples or a tf.data.Dataset of model inputs) to calibrate activations."
        )
    if quantization != "int8" and representative_dataset is not None:
        raise ValueError(
            f"representative_dataset is only used with quantization='int8'. Received: "
            f"quantization={quantization!r}"
        )
    float_layers = tuple(float_layers or ())
    if float_layers and quantization != "int8":
        raise ValueError(
            f"float_layers needs quantization='int8'. Received: quantization={quantization!r}, "
            f"float_layers={float_layers}"
        )
    path = Path(path)
    if path.suffix != ".tflite":
        raise ValueError(f"path must end with '.tflite'. Received: path={str(path)!r}")

    feeds = None
    if quantization == "int8":
        feeds = representative_samples(representative_dataset, model, num_calibration_samples)

    archive, _ = build_archive(model, image_input=False, outputs_fn=outputs_fn)
    with tempfile.TemporaryDirectory(prefix="zoo-tflite-") as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[SERVING_DEFAULT])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = lambda: iter(feeds)
            if io_dtype != "float32":
                converter.inference_input_type = tf.as_dtype(io_dtype)
                converter.inference_output_type = tf.as_dtype(io_dtype)
        with warnings.catch_warnings():
            # The converter's int8 calibrator still uses the deprecated tf.lite.Interpreter.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            flatbuffer = converter.convert()
            if float_layers:
                converter.target_spec.supported_ops = [
                    tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                    tf.lite.OpsSet.TFLITE_BUILTINS,
                ]
                flatbuffer = _keep_layers_float(converter, flatbuffer, float_layers, feeds)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    try:
        check_tflite_structure(path, model)
    except Exception:
        path.unlink()  # never leave a weightless file behind for someone to ship
        raise
    return path
