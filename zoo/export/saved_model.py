"""SavedModel export in the TF Serving layout (``root/name/version/``) with a JSON manifest.

The archive is written with ``keras.export.ExportArchive`` (the model is tracked, the serving
functions are added as endpoints), never with a hand-made ``tf.Module``: a Keras 3 model wrapped
by hand was seen to lose its weights on the way to ``.tflite``.

Serving contract of an image model (``image_input=True``):

- ``serving_default``: input ``images``, float32 ``[batch, height, width, C]``, pixel values 0–255
  (the model normalises inside). Any height and width are accepted: the batch is resized in the
  graph to the model's input size with bilinear interpolation (``tf.image.resize``, half-pixel
  centres, no antialiasing). When the batch already has the model's size the resize is skipped, so
  the result equals ``model(images)`` exactly.
- ``serving_bytes``: input ``image_bytes``, tf.string ``[batch]``, each element the raw bytes of
  a JPEG / PNG / GIF / BMP file. TF Serving's REST API decodes ``{"b64": "..."}`` itself, so the
  graph does not base64-decode: it decodes each image with ``tf.io.decode_image(channels=C,
  expand_animations=False)``, resizes it to the model size (skipped when it matches) and runs the
  same outputs as ``serving_default``.

``C`` is the model's channel count: 3 for RGB models, 1 for grayscale ones.

Outputs are a dict of named tensors (see ``output_dict``): a dict-output model keeps its keys, a
list-output model uses ``model.output_names`` (the output layers' names), a single-output model
returns ``{"outputs": tensor}``. ``outputs_fn(model_outputs, image_shapes)`` replaces that dict
inside the graph, e.g. with box decoding + NMS and the TF Object Detection API names
(``detection_boxes``, ``detection_scores``, ``detection_classes``, ``num_detections``).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.training.run_dir import json_safe

SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
SINGLE_OUTPUT = "outputs"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "zoo.export/1"


# === Names and specs shared with tflite.py / verify.py ===


def _clean_input_name(name, index, count):
    if not name or name.startswith("keras_tensor"):
        return "inputs" if count == 1 else f"input_{index}"
    return name


def model_input_specs(model):
    """Named input specs of a functional or Sequential model.

    Args:
        model: a built ``keras.Model`` with symbolic inputs.

    Returns:
        ``(names, specs, rebuild)``: the input names (dict keys for a dict-input model, else the
        ``keras.Input`` names; auto-generated names become ``"inputs"`` / ``"input_{i}"``), one
        ``tf.TensorSpec`` per input (named by the input name; the batch dimension is the
        model's: ``None`` unless it was built with a fixed ``batch_size``, e.g. the loop-free
        batch-1 detector of ``zoo.detection.detection_model``), and a
        function turning a list of tensors in that order back into the structure the model
        expects.

    Example:
        >>> names, specs, rebuild = model_input_specs(model)
        >>> outputs = model(rebuild([tf.zeros([1, 32, 32, 3])]))
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model. Received: model={model!r}")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built; call it once or build it first.")
    try:
        struct = model.input
    except (AttributeError, ValueError):
        struct = getattr(model, "inputs", None)
    if struct is None:
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) has no symbolic inputs; export "
            "supports functional and Sequential models (wrap a subclassed model in a functional "
            "one: `keras.Model(inp, sub(inp))`)."
        )
    if isinstance(struct, dict):
        keys = list(struct)
        tensors = [struct[k] for k in keys]
        names = [str(k) for k in keys]

        def rebuild(args):
            return dict(zip(keys, args, strict=True))
    elif isinstance(struct, (list, tuple)):
        tensors = list(struct)
        names = [_clean_input_name(t.name, i, len(tensors)) for i, t in enumerate(tensors)]
        if len(tensors) == 1:

            def rebuild(args):
                return args[0]
        else:

            def rebuild(args):
                return list(args)
    else:
        tensors = [struct]
        names = [_clean_input_name(struct.name, 0, 1)]

        def rebuild(args):
            return args[0]

    if len(set(names)) != len(names):
        raise ValueError(f"model {model.name!r} has duplicate input names: {names}")
    specs = [
        tf.TensorSpec(tuple(t.shape), tf.as_dtype(t.dtype), name=n)
        for t, n in zip(tensors, names, strict=True)
    ]
    return names, specs, rebuild


def _name_outputs(model, outputs):
    if isinstance(outputs, dict):
        return {str(k): v for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        names = list(getattr(model, "output_names", None) or [])
        if len(names) != len(outputs) or len(set(names)) != len(names):
            names = [f"output_{i}" for i in range(len(outputs))]
        return dict(zip(names, outputs, strict=True))
    return {SINGLE_OUTPUT: outputs}


def output_dict(model, outputs):
    """Name a model's outputs the way every exported signature does.

    Args:
        model: the ``keras.Model`` that produced ``outputs``.
        outputs: its outputs: a dict, a list / tuple, or a single tensor.

    Returns:
        A dict ``{name: tensor}``: dict outputs keep their keys, a list uses
        ``model.output_names`` (the output layers' names; ``output_{i}`` when they do not match),
        a single tensor is named ``"outputs"``.

    Example:
        >>> output_dict(model, model(x))  # {"logits": ..., "embedding": ...}
    """
    result = _name_outputs(model, outputs)
    for name, value in result.items():
        if isinstance(value, (dict, list, tuple)):
            raise TypeError(
                f"model {model.name!r}: output {name!r} is a nested {type(value).__name__}; "
                "export needs a flat dict of tensors (pass outputs_fn to flatten it)."
            )
    return result


def image_input_spec(model):
    """``(height, width, channels)`` of a single-input image model, checked.

    Args:
        model: a built ``keras.Model`` whose only input is ``(None, height, width, channels)``.

    Returns:
        A tuple of three ints.
    """
    names, specs, _ = model_input_specs(model)
    if len(specs) != 1:
        raise ValueError(
            f"image_input=True needs a single-input model; model {model.name!r} has inputs "
            f"{names}. Pass image_input=False to serve its own input specs."
        )
    shape = tuple(specs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]) or shape[3] not in (1, 3):
        raise ValueError(
            f"image_input=True needs an input of shape (batch, height, width, 1 or 3) with a "
            f"known size; model {model.name!r} input {names[0]!r} has shape {shape}. Give the "
            "model a fixed input size or pass image_input=False."
        )
    if specs[0].dtype != tf.float32:
        raise ValueError(
            f"image_input=True needs a float32 input (0-255 pixels); model {model.name!r} input "
            f"{names[0]!r} is {specs[0].dtype.name}."
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def _call_outputs(model, inputs, outputs_fn, image_shapes):
    outputs = model(inputs, training=False)
    if outputs_fn is None:
        return output_dict(model, outputs)
    # outputs_fn may flatten nested outputs itself, so they are only named here, not checked.
    result = outputs_fn(_name_outputs(model, outputs), image_shapes)
    if not isinstance(result, dict) or not result:
        raise TypeError(
            f"outputs_fn must return a non-empty dict of named tensors; it returned "
            f"{type(result).__name__}: {result!r}"
        )
    return {str(k): v for k, v in result.items()}


def _resize_to(images, height, width):
    """Bilinear resize of a ``[..., h, w, c]`` float tensor, skipped when the size matches."""
    shape = tf.shape(images)
    rank = images.shape.rank
    same = tf.logical_and(tf.equal(shape[rank - 3], height), tf.equal(shape[rank - 2], width))
    resized = tf.cond(
        same,
        lambda: tf.identity(images),
        lambda: tf.image.resize(images, (height, width), method="bilinear"),
    )
    return tf.ensure_shape(
        resized, images.shape[:-3].concatenate([height, width, images.shape[-1]])
    )


def build_archive(model, *, image_input=True, outputs_fn=None):
    """An ``ExportArchive`` with the zoo's serving endpoints (not written yet).

    Args:
        model: a built functional / Sequential ``keras.Model``.
        image_input: add the image signatures (``serving_default`` on ``images``, any size, and
            ``serving_bytes`` on ``image_bytes``); when False ``serving_default`` takes the model's
            own input specs (see ``model_input_specs``).
        outputs_fn: optional ``outputs_fn(model_outputs, image_shapes) -> dict`` run in the graph;
            ``image_shapes`` is int32 ``[batch, 2]`` (height, width before the resize) for image
            models and ``None`` otherwise.

    Returns:
        ``(archive, endpoints)`` where ``endpoints`` maps a signature name to its ``tf.function``.
    """
    if outputs_fn is not None and not callable(outputs_fn):
        raise TypeError(f"outputs_fn must be callable. Received: outputs_fn={outputs_fn!r}")
    names, specs, rebuild = model_input_specs(model)  # validates before anything is traced
    if image_input:
        height, width, channels = image_input_spec(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = {}

    if not image_input:

        def serve(*args):
            return _call_outputs(model, rebuild(list(args)), outputs_fn, None)

        endpoints[SERVING_DEFAULT] = archive.add_endpoint(
            SERVING_DEFAULT, serve, input_signature=specs
        )
        return archive, endpoints

    def serve_images(images):
        batch = tf.shape(images)[0]
        shapes = tf.tile(tf.shape(images)[1:3][tf.newaxis], tf.stack([batch, 1]))
        x = _resize_to(images, height, width)
        return _call_outputs(model, x, outputs_fn, shapes)

    def serve_bytes(image_bytes):
        def decode(data):
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
            image.set_shape([None, None, channels])
            shape = tf.shape(image)[:2]
            image = _resize_to(tf.cast(image, tf.float32), height, width)
            return image, shape

        images, shapes = tf.map_fn(
            decode,
            image_bytes,
            fn_output_signature=(
                tf.TensorSpec([height, width, channels], tf.float32),
                tf.TensorSpec([2], tf.int32),
            ),
        )
        return _call_outputs(model, images, outputs_fn, shapes)

    endpoints[SERVING_DEFAULT] = archive.add_endpoint(
        SERVING_DEFAULT,
        serve_images,
        input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32, IMAGES_INPUT)],
    )
    endpoints[SERVING_BYTES] = archive.add_endpoint(
        SERVING_BYTES,
        serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, BYTES_INPUT)],
    )
    return archive, endpoints


# === Manifest ===


def _spec_json(spec):
    return {
        "dtype": tf.as_dtype(spec.dtype).name,
        "shape": None if spec.shape.rank is None else [d for d in spec.shape.as_list()],
    }


def _signature_json(fn):
    concrete = fn.get_concrete_function()
    args, kwargs = concrete.structured_input_signature
    inputs = {}
    for spec in tf.nest.flatten((args, kwargs)):
        inputs[spec.name] = _spec_json(spec)
    outputs = {name: _spec_json(t) for name, t in concrete.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs}


def _to_json(value, field):
    def default(obj):
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, (tuple, set, frozenset)):
            return list(obj)
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} {obj!r}")

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as err:
        raise TypeError(f"manifest field {field!r} is not JSON-serialisable: {err}") from None


def _zoo_version():
    module = sys.modules.get("zoo")
    return getattr(module, "__version__", None)


def build_manifest(
    model,
    name,
    version,
    endpoints,
    *,
    image_input,
    class_names=None,
    preprocessing=None,
    metrics=None,
    config=None,
):
    """The ``manifest.json`` dict written next to ``saved_model.pb``.

    Args:
        model: the exported model.
        name, version: the served name and version.
        endpoints: ``{signature: tf.function}`` from ``build_archive``.
        image_input: whether the image signatures were exported.
        class_names, preprocessing, metrics, config: user fields, stored as given (JSON-checked).

    Returns:
        A JSON-serialisable dict (no layer configs, so it stays small).
    """
    names, specs, _ = model_input_specs(model)
    if image_input:
        height, width, channels = image_input_spec(model)
        input_spec = {
            "name": IMAGES_INPUT,
            "dtype": "float32",
            "shape": [None, None, None, channels],
            "value_range": [0, 255],
            "model_size": [height, width],
            "resize": "bilinear (tf.image.resize, half-pixel centres), skipped when the size "
            "already matches",
            "bytes_signature": {
                "name": SERVING_BYTES,
                "input": BYTES_INPUT,
                "formats": ["jpeg", "png", "gif", "bmp"],
            },
        }
    else:
        input_spec = {n: _spec_json(s) for n, s in zip(names, specs, strict=True)}
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "zoo": _zoo_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": sys.version.split()[0],
        },
        "model": {
            "name": model.name,
            "class": type(model).__name__,
            "parameters": int(model.count_params()),
            "model_inputs": {n: _spec_json(s) for n, s in zip(names, specs, strict=True)},
        },
        "config": _to_json(config, "config"),
        "input_spec": input_spec,
        "signatures": {sig: _signature_json(fn) for sig, fn in endpoints.items()},
        "preprocessing": _to_json(preprocessing, "preprocessing"),
        "class_names": _to_json(class_names, "class_names"),
        "metrics": _to_json(metrics, "metrics"),
    }


# === Public entry point ===


def next_version(root, name):
    """The next free TF Serving version number under ``root/name`` (1 for a new model)."""
    versions = [int(p.name) for p in Path(root, name).glob("*") if p.name.isdigit()]
    return max(versions, default=0) + 1


def _check_name_version(name, version):
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(sep in name for sep in ("/", "\\", os.sep))
    ):
        raise ValueError(
            f"name must be a non-empty directory name without path separators. "
            f"Received: name={name!r}"
        )
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ValueError(
            f"version must be a positive integer (TF Serving loads numeric version "
            f"directories). Received: version={version!r}"
        )


def export_saved_model(
    model,
    root,
    name,
    version=1,
    *,
    class_names=None,
    preprocessing=None,
    metrics=None,
    config=None,
    outputs_fn=None,
    image_input=True,
    overwrite=False,
):
    """Export ``model`` as a SavedModel at ``root/name/version/`` for TF Serving.

    Signatures (see the module docstring for the full contract):

    - ``image_input=True``: ``serving_default`` takes ``images`` (float32 ``[batch, h, w, C]``,
      0–255, any size, resized in-graph to the model's size, bilinear, no resize when the size
      matches) and ``serving_bytes`` takes ``image_bytes`` (tf.string ``[batch]`` of encoded
      JPEG/PNG, decoded in the graph; TF Serving's REST API turns ``{"b64": ...}`` into bytes).
    - ``image_input=False``: ``serving_default`` takes the model's own inputs, named as in
      ``model_input_specs``; no bytes signature.

    Outputs are a dict (``output_dict``; a single-output model gives ``{"outputs": ...}``) or
    whatever ``outputs_fn(model_outputs, image_shapes)`` returns, computed inside the graph.

    The version directory is written to a hidden sibling first and then renamed, so TF Serving
    (which polls ``root/name/``) never sees a half-written version. ``manifest.json`` next to
    ``saved_model.pb`` records name, version, creation time (UTC), zoo/TF/Keras versions,
    ``config``, the input spec, every signature's inputs/outputs, ``preprocessing``,
    ``class_names`` and ``metrics``.

    Args:
        model: a built functional or Sequential ``keras.Model``; image models take float32
            pixels in 0–255 and normalise inside.
        root: the model base directory (e.g. ``"saved_models"``).
        name: the served model name (one directory name).
        version: positive int, the TF Serving version directory.
        class_names: optional list of class names (index order).
        preprocessing: optional JSON-able dict describing the input pipeline.
        metrics: optional JSON-able dict of evaluation results.
        config: optional JSON-able dict, e.g. the builder kwargs.
        outputs_fn: optional in-graph post-processing, ``fn(dict, image_shapes) -> dict``.
        image_input: whether to export the image signatures (see above).
        overwrite: replace an existing ``root/name/version``; otherwise that raises.

    Returns:
        ``pathlib.Path`` of ``root/name/version``.

    Example:
        >>> path = export_saved_model(model, "saved_models", "yolo_tiny", 3,
        ...                           class_names=["cat", "dog"], config={"width": 0.25})
        >>> sorted(p.name for p in path.iterdir())
        ['assets', 'fingerprint.pb', 'manifest.json', 'saved_model.pb', 'variables']
    """
    _check_name_version(name, version)
    version = int(version)
    if class_names is not None:
        class_names = list(class_names)
        bad = [c for c in class_names if not isinstance(c, str)]
        if bad:
            raise TypeError(f"class_names must be strings. Received: {bad[:3]!r}")
    target = Path(root) / name / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; pick a new version or pass overwrite=True."
        )

    archive, endpoints = build_archive(model, image_input=image_input, outputs_fn=outputs_fn)
    manifest = build_manifest(
        model,
        name,
        version,
        endpoints,
        image_input=image_input,
        class_names=class_names,
        preprocessing=preprocessing,
        metrics=metrics,
        config=config,
    )

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=target.parent))
    try:
        archive.write_out(str(staging / "model"), verbose=False)
        with open(staging / "model" / MANIFEST, "w") as f:  # strict JSON: NaN -> null
            json.dump(json_safe(manifest), f, indent=2, allow_nan=False)
            f.write("\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def read_manifest(path):
    """Load ``manifest.json`` from an exported version directory.

    Args:
        path: ``root/name/version`` (or the manifest file itself).

    Returns:
        The manifest dict.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    with open(path) as f:
        return json.load(f)
