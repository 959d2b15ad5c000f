"""Check exported artifacts against the in-memory Keras model.

``verify_export`` runs the SavedModel in a fresh Python subprocess that imports only TensorFlow
and NumPy (never ``zoo``, so a SavedModel that secretly depends on zoo code fails here, as it
would on TF Serving), and every ``.tflite`` with the LiteRT interpreter
(``ai_edge_litert.interpreter.Interpreter``). Differences are reported per output name.

Tolerances (``limit`` on the largest absolute difference of an output):

============== ======= ===================================================
artifact kind  default limit = default * scale, scale =
============== ======= ===================================================
saved_model    1e-4    max(1, max |reference|)
float32        1e-4    max(1, max |reference|)
float16        1e-2    max(1, max |reference|)
dynamic        5e-2    max(1, max |reference|)
int8           1e-1    max |reference| - min |reference| (output range)
============== ======= ===================================================

The kind of a ``.tflite`` is read from the file (float16 tensors -> float16; a QUANTIZE op or an
integer input -> int8; int8 weights only -> dynamic; else float32). Besides the differences,
verification fails on NaN / Inf in any output, on a missing or reshaped output, on a ``.tflite``
that reads variables at run time (a weightless conversion) and on a ``.tflite`` too small to
hold the model's parameters.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from zoo.export.saved_model import SERVING_DEFAULT, model_input_specs, output_dict

DEFAULT_TOLERANCES = {
    "saved_model": 1e-4,
    "float32": 1e-4,
    "float16": 1e-2,
    "dynamic": 5e-2,
    "int8": 1e-1,
}
# Fewest bytes a parameter can take in each kind of file (dynamic leaves small tensors float32,
# int8 stores biases as int32: both are >= 1 byte a parameter).
_BYTES_PER_PARAMETER = {"float32": 4, "float16": 2, "dynamic": 1, "int8": 1}
# The file must hold at least this fraction of that (batch-norm folding removes parameters).
_SIZE_SLACK = 0.5
_VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}

_SUBPROCESS_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

assert "zoo" not in sys.modules, "the SavedModel check must not import zoo"
model_dir, signature, in_path, out_path, meta_path = sys.argv[1:6]
loaded = tf.saved_model.load(model_dir)
if signature not in loaded.signatures:
    raise SystemExit(f"{model_dir}: no signature {signature!r}; has {sorted(loaded.signatures)}")
fn = loaded.signatures[signature]
specs = fn.structured_input_signature[1]
with np.load(in_path) as data:
    feeds = {k: data[k] for k in data.files}
if set(feeds) != set(specs):
    if len(feeds) == 1 and len(specs) == 1:
        feeds = {next(iter(specs)): next(iter(feeds.values()))}
    else:
        raise SystemExit(
            f"{model_dir}: signature {signature!r} takes {sorted(specs)}, got {sorted(feeds)}"
        )
outputs = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in feeds.items()})
np.savez(out_path, **{k: v.numpy() for k, v in outputs.items()})
with open(meta_path, "w") as f:
    json.dump(
        {
            "zoo_in_sys_modules": "zoo" in sys.modules,
            "tensorflow": tf.__version__,
            "inputs": sorted(specs),
        },
        f,
    )
"""


class ExportMismatchError(Exception):
    """An exported artifact disagrees with the Keras model (``.report`` holds the details)."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


# === TFLite helpers ===


INT8_DROP_ACTIONS = ("raise", "warn")


def check_int8_drop_action(on_int8_drop):
    """Validates ``on_int8_drop``: ``"raise"`` or ``"warn"``."""
    if on_int8_drop not in INT8_DROP_ACTIONS:
        raise ValueError(f"on_int8_drop must be 'raise' or 'warn'. Received: {on_int8_drop!r}")


def report_int8_drop(message, on_int8_drop):
    """An int8 file scored too far below its fp32 twin: ``"raise"`` -> ``RuntimeError``,
    ``"warn"`` -> a logged warning (the caller marks the file in its summary)."""
    check_int8_drop_action(on_int8_drop)
    if on_int8_drop == "raise":
        raise RuntimeError(message)
    logging.getLogger("zoo.export").warning(message)


def _interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path, Interpreter):  # an already-open file: callers that run it many times
        return path
    return Interpreter(model_path=str(path))


def _op_names(interpreter):
    return {op["op_name"] for op in interpreter._get_ops_details()}


def tflite_quantization(path):
    """Guess how a ``.tflite`` file was quantized from its tensors and ops.

    Args:
        path: a ``.tflite`` file.

    Returns:
        ``"float32"``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
    """
    interpreter = _interpreter(path)
    dtypes = {np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()}
    io_dtypes = {
        np.dtype(d["dtype"])
        for d in interpreter.get_input_details() + interpreter.get_output_details()
    }
    if np.dtype("float16") in dtypes:
        return "float16"
    integer_io = io_dtypes & {np.dtype("int8"), np.dtype("uint8")}
    if integer_io or "QUANTIZE" in _op_names(interpreter):
        return "int8"
    if np.dtype("int8") in dtypes:
        return "dynamic"
    return "float32"


def check_tflite_structure(path, model, quantization=None):
    """Fail loudly on a ``.tflite`` that cannot hold the model's weights.

    Two checks: no op reads a resource variable at run time (such variables are never
    initialised by the converter: the file runs and outputs garbage or NaN), and the file is at
    least ``0.5 * parameters * bytes-per-parameter`` large (4 for float32, 2 for float16, 1 for
    dynamic / int8).

    Args:
        path: the ``.tflite`` file.
        model: the Keras model it was converted from.
        quantization: the file's kind; read from the file when None.

    Returns:
        ``{"size_bytes", "parameters", "min_plausible_bytes", "quantization"}``.

    Raises:
        ExportMismatchError: on either failure.
    """
    path = Path(path)
    interpreter = _interpreter(path)
    kind = quantization or tflite_quantization(path)
    variable_ops = sorted(_op_names(interpreter) & _VARIABLE_OPS)
    if variable_ops:
        raise ExportMismatchError(
            f"{path}: uses variable ops {variable_ops}: the weights were not frozen into the "
            "file (weightless conversion); export through zoo.export.export_tflite."
        )
    size = path.stat().st_size
    parameters = int(model.count_params())
    minimum = int(_SIZE_SLACK * parameters * _BYTES_PER_PARAMETER[kind])
    if size < minimum:
        raise ExportMismatchError(
            f"{path}: {size} bytes cannot hold {parameters} parameters as {kind} "
            f"(expected >= {minimum} bytes): the weights are missing."
        )
    return {
        "size_bytes": size,
        "parameters": parameters,
        "min_plausible_bytes": minimum,
        "quantization": kind,
    }


def _quantize(array, details):
    scale, zero_point = details["quantization"]
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f" or not scale:
        return array.astype(dtype)
    info = np.iinfo(dtype)
    q = np.round(array / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(array, details):
    scale, zero_point = details["quantization"]
    if np.dtype(details["dtype"]).kind == "f" or not scale:
        return array.astype(np.float32)
    return ((array.astype(np.float32) - zero_point) * scale).astype(np.float32)


def run_tflite(path, feeds):
    """Run the default signature of a ``.tflite`` file on a batch.

    Args:
        path: the ``.tflite`` file.
        feeds: ``{input_name: array}``; a single array is accepted for a single-input file.
            Integer-quantized inputs / outputs are (de)quantized with each tensor's scale and
            zero point, so callers always see float values.

    Returns:
        ``{output_name: float32 array}``.
    """
    interpreter = _interpreter(path)
    runner = interpreter.get_signature_runner()
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    if not isinstance(feeds, dict):
        feeds = {"__single__": feeds}
    if set(feeds) != set(in_details):
        if len(feeds) == 1 and len(in_details) == 1:
            feeds = {next(iter(in_details)): next(iter(feeds.values()))}
        else:
            raise ValueError(f"{path}: inputs are {sorted(in_details)}, got {sorted(feeds)}")
    feeds = {k: np.asarray(v) for k, v in feeds.items()}
    fixed_one = all(
        len(d.get("shape_signature", d["shape"])) and d.get("shape_signature", d["shape"])[0] == 1
        for d in in_details.values()
    )
    count = len(next(iter(feeds.values())))
    if fixed_one and count > 1:  # a batch-1 file (e.g. the loop-free detector): one at a time
        rows = [run_tflite(path, {k: v[i : i + 1] for k, v in feeds.items()}) for i in range(count)]
        return {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}
    outputs = runner(**{k: _quantize(v, in_details[k]) for k, v in feeds.items()})
    return {k: _dequantize(v, out_details[k]) for k, v in outputs.items()}


# === SavedModel in a fresh process ===


def _savable(array):
    """``array`` as ``np.savez`` stores it without pickling: strings (str or bytes objects, e.g.
    the inputs of a tf.string signature) become UTF-8 bytes (dtype ``S``)."""
    array = np.asarray(array)
    if array.dtype.kind in "OU":
        encode = np.vectorize(
            lambda s: s.encode("utf-8") if isinstance(s, str) else bytes(s), otypes=[object]
        )
        return np.asarray(encode(array).tolist() if array.size else array, dtype=np.bytes_)
    return array


def run_script_subprocess(script, args, *, cwd, timeout, what):
    """Run ``python -c script *args`` in ``cwd`` (TensorFlow's C++ logs quiet); raise on failure.

    The SavedModel checks run their script in a fresh interpreter, so nothing of the calling
    process (zoo above all) is imported there.

    Raises:
        RuntimeError: ``"{what} failed (exit N):"`` and the tail of its output.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-3000:]}"
        )
    return proc


def run_saved_model_subprocess(saved_model_dir, feeds, signature=SERVING_DEFAULT, timeout=600):
    """Run a SavedModel signature in a fresh Python that imports only TensorFlow and NumPy.

    Args:
        saved_model_dir: the exported version directory.
        feeds: ``{input_name: array}`` (a single entry is mapped onto a single-input signature);
            a string array (str or bytes, for a tf.string input) is passed as UTF-8 bytes.
        signature: the signature key.
        timeout: seconds before the subprocess is killed.

    Returns:
        ``(outputs, meta)``: ``{output_name: array}`` and the subprocess's report
        (``zoo_in_sys_modules`` (always False, the subprocess asserts it), ``tensorflow``,
        ``inputs``).
    """
    with tempfile.TemporaryDirectory(prefix="zoo-verify-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "inputs.npz", **{k: _savable(v) for k, v in feeds.items()})
        run_script_subprocess(
            _SUBPROCESS_SCRIPT,
            [
                str(Path(saved_model_dir).resolve()),
                signature,
                str(tmp / "inputs.npz"),
                str(tmp / "outputs.npz"),
                str(tmp / "meta.json"),
            ],
            cwd=tmp,
            timeout=timeout,
            what=f"{saved_model_dir}: the SavedModel subprocess",
        )
        with np.load(tmp / "outputs.npz") as data:
            outputs = {k: data[k] for k in data.files}
        with open(tmp / "meta.json") as f:
            meta = json.load(f)
    return outputs, meta


# === Comparison ===


def _feeds(model, inputs):
    names, specs, rebuild = model_input_specs(model)
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ValueError(f"inputs is missing {missing}; the model takes {names}")
        arrays = [inputs[n] for n in names]
    elif isinstance(inputs, (list, tuple)) and len(names) > 1:
        if len(inputs) != len(names):
            raise ValueError(f"inputs has {len(inputs)} arrays; the model takes {names}")
        arrays = list(inputs)
    else:
        if len(names) != 1:
            raise ValueError(f"the model takes {names}; pass a dict or a list of arrays")
        arrays = [inputs]
    arrays = [
        np.asarray(a, dtype=s.dtype.as_numpy_dtype) for a, s in zip(arrays, specs, strict=True)
    ]
    return dict(zip(names, arrays, strict=True)), rebuild(arrays)


def _resolve_tolerance(tolerances, key, kind):
    if key in tolerances:
        return float(tolerances[key])
    return float(tolerances.get(kind, DEFAULT_TOLERANCES[kind]))


def compare_outputs(label, reference, outputs, kind, tolerance):
    """Output-by-output comparison of an artifact with the Keras model (``verify_export``'s).

    Args:
        label: the artifact's name in failure messages.
        reference: the Keras model's outputs, ``{name: array}``.
        outputs: the artifact's outputs, ``{name: array}``.
        kind: the artifact kind (a key of ``DEFAULT_TOLERANCES``; sets the scale).
        tolerance: the limit on the largest absolute difference, before scaling.

    Returns:
        ``(entry, failures)``: the report entry (``kind``, ``tolerance``, per output
        ``max_abs``, ``mean_abs``, ``limit``, ``ok``; ``not_compared``) and a list of failure
        lines (empty when the artifact agrees).
    """
    entries, failures = {}, []
    for name, value in outputs.items():
        if not np.all(np.isfinite(value)):
            failures.append(f"{label}: output {name!r} has NaN/Inf values")
    common = [n for n in reference if n in outputs]
    if not common:
        failures.append(
            f"{label}: no output name in common with the Keras model "
            f"(artifact {sorted(outputs)}, model {sorted(reference)})"
        )
    for name in common:
        ref = reference[name].astype(np.float64)
        got = np.asarray(outputs[name]).astype(np.float64)
        if ref.shape != got.shape:
            failures.append(f"{label}: output {name!r} has shape {got.shape}, model {ref.shape}")
            entries[name] = {"shape": list(got.shape), "expected_shape": list(ref.shape)}
            continue
        diff = np.abs(ref - got)
        if kind == "int8":
            scale = float(ref.max() - ref.min()) if ref.size else 0.0
            if scale <= 0:
                scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
        else:
            scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
        limit = tolerance * scale
        max_abs = float(diff.max()) if diff.size else 0.0  # NaN propagates and fails below
        entry = {
            "max_abs": max_abs,
            "mean_abs": float(diff.mean()) if diff.size else 0.0,
            "limit": limit,
            "shape": list(got.shape),
        }
        entry["ok"] = bool(max_abs <= limit)
        if not entry["ok"]:
            failures.append(
                f"{label}: output {name!r} max |diff| = {max_abs:.4g} > {limit:.4g} "
                f"({kind} tolerance {tolerance:g} x scale {scale:.4g})"
            )
        entries[name] = entry
    return {
        "kind": kind,
        "tolerance": tolerance,
        "outputs": entries,
        "not_compared": sorted(set(outputs) ^ set(reference)),
    }, failures


def _dir_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def verify_export(
    model,
    inputs,
    *,
    saved_model_dir=None,
    tflite_paths=(),
    signature=SERVING_DEFAULT,
    tolerances=None,
    compare=compare_outputs,
):
    """Compare exported artifacts with ``model`` on ``inputs`` and raise past tolerance.

    Args:
        model: the in-memory Keras model that was exported.
        inputs: a batch of model inputs: an array for a single-input model (image models:
            float32 0–255 at the model's size; a string model: a list of str), else a dict by
            input name or a list.
        saved_model_dir: a ``root/name/version`` directory, run in a fresh subprocess that does
            not import zoo. Its ``signature`` (numeric outputs; numeric or tf.string inputs) is
            fed with the same batch.
        tflite_paths: ``.tflite`` files, run with LiteRT.
        signature: the SavedModel signature to check (numeric outputs, e.g. ``serving_default``).
        tolerances: overrides of ``DEFAULT_TOLERANCES`` (module docstring), keyed by kind
            (``"saved_model"``, ``"float32"``, ``"float16"``, ``"dynamic"``, ``"int8"``) or by
            artifact path (``str(path)``).
        compare: the comparison run on each artifact, with ``compare_outputs``'s arguments
            and return value; a family whose outputs may legitimately differ in order (e.g.
            detections after NMS, where near-tied scores can swap) passes its own, which should
            call ``compare_outputs`` first.

    Returns:
        ``{"ok": True, "failures": [], "reference": {...}, "saved_model": {...} | None,
        "tflite": {str(path): {...}}}``; each artifact has ``kind``, ``tolerance``,
        ``size_bytes`` and per output ``max_abs``, ``mean_abs``, ``limit``, ``ok``.

    Raises:
        ExportMismatchError: listing every failure, with the report as ``.report``.

    Example:
        >>> report = verify_export(model, images, saved_model_dir=path,
        ...                        tflite_paths=["m.tflite", "m_int8.tflite"])
        >>> report["tflite"]["m_int8.tflite"]["outputs"]["logits"]["max_abs"]
    """
    if isinstance(tflite_paths, (str, Path)):
        tflite_paths = [tflite_paths]
    tflite_paths = [Path(p) for p in tflite_paths]
    if saved_model_dir is None and not tflite_paths:
        raise ValueError("verify_export needs saved_model_dir and/or tflite_paths.")
    tolerances = dict(tolerances or {})
    known = set(DEFAULT_TOLERANCES) | {str(p) for p in tflite_paths}
    if saved_model_dir is not None:
        known.add(str(saved_model_dir))
    unknown = sorted(set(tolerances) - known)
    if unknown:
        raise ValueError(
            f"tolerances has unknown keys {unknown}; use {sorted(DEFAULT_TOLERANCES)} or an "
            "artifact path"
        )

    feeds, model_inputs = _feeds(model, inputs)
    reference = {
        k: np.asarray(v) for k, v in output_dict(model, model(model_inputs, training=False)).items()
    }
    failures = []
    for name, value in reference.items():
        if not np.all(np.isfinite(value)):
            failures.append(f"Keras model: output {name!r} has NaN/Inf values")
    report = {
        "ok": True,
        "failures": failures,
        "reference": {
            k: {"shape": list(v.shape), "min": float(v.min()), "max": float(v.max())}
            for k, v in reference.items()
        },
        "saved_model": None,
        "tflite": {},
    }

    if saved_model_dir is not None:
        outputs, meta = run_saved_model_subprocess(saved_model_dir, feeds, signature)
        tolerance = _resolve_tolerance(tolerances, str(saved_model_dir), "saved_model")
        entry, errors = compare(
            f"{saved_model_dir} [{signature}]", reference, outputs, "saved_model", tolerance
        )
        entry.update(
            path=str(saved_model_dir),
            signature=signature,
            size_bytes=_dir_size(saved_model_dir),
            subprocess=meta,
        )
        report["saved_model"] = entry
        failures.extend(errors)

    for path in tflite_paths:
        try:
            structure = check_tflite_structure(path, model)
        except ExportMismatchError as err:
            failures.append(str(err))
            report["tflite"][str(path)] = {"path": str(path), "size_bytes": path.stat().st_size}
            continue
        kind = structure["quantization"]
        outputs = run_tflite(path, feeds)
        tolerance = _resolve_tolerance(tolerances, str(path), kind)
        entry, errors = compare(str(path), reference, outputs, kind, tolerance)
        entry.update(path=str(path), **structure)
        report["tflite"][str(path)] = entry
        failures.extend(errors)

    if failures:
        report["ok"] = False
        raise ExportMismatchError(
            "export verification failed:\n  " + "\n  ".join(failures), report=report
        )
    return report
