"""An exported model of any family, loaded from its file and run on one image at a time.

Three formats, told apart by the path:

- a SavedModel folder (``saved_model.pb`` inside; a model folder holding numbered versions
  takes the highest), run with ``tf.saved_model.load`` through ``serving_default``, no zoo code
  needed. Its image signature resizes in the graph, so each image is sent at its own size and
  results come back in its pixels (landmarks) or normalised (boxes);
- a ``.tflite`` file, run with LiteRT (``ai_edge_litert``); it takes the model's own size, so
  the image is resized first, bilinear, as ``tf.image.resize`` (what the SavedModel graph
  does);
- a ``.keras`` file, loaded with ``keras.saving.load_model`` after the zoo's families are
  imported (their custom objects registered), run with ``predict`` (the family's own decoding),
  on the image resized like the ``.tflite``.

The family comes from the outputs: ``detection_boxes`` / ``detection_scores`` /
``detection_classes`` / ``num_detections`` (exported detectors, TF Object Detection API names)
or ``boxes`` / ``scores`` / ``classes`` / ``num_detections`` (a YOLO's ``predict``) make a
detector; ``presence`` + ``landmarks`` a landmark model; a single ``(batch, D)`` output an
embedding (a ``classifier`` when ``manifest.json`` lists ``D`` class names and does not
describe an encoder); anything else is reported as raw ``outputs``. Landmarks are pixels of the
image the model was given (the family's exports and ``predict``), or fractions of it when the
file holds the raw model (``presence`` of shape ``(batch, 1)``). ``manifest.json`` beside
the model (the SavedModel's, also for the ``.tflite`` files exported into its folder) gives the
class names.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from zoo.data.errors import DataError

__all__ = ["FAMILIES", "FORMATS", "Predictor", "load_predictor", "resolve_model"]

FORMATS = ("saved_model", "tflite", "keras")
FAMILIES = ("detection", "landmarks", "embedding", "classifier", "outputs")
SERVING_DEFAULT = "serving_default"
MODEL_KINDS = "an exported SavedModel folder, a .keras file or a .tflite file"
TF_OD_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
KERAS_DETECTION_KEYS = ("boxes", "scores", "classes", "num_detections")
LANDMARK_KEYS = ("presence", "landmarks")
# manifest config keys of the encoder exports (metric learning, SSL, multimodal towers)
ENCODER_CONFIG_KEYS = ("embedding_dim", "output", "projection_dim", "distance", "pair")
# what the zoo's non-image inputs hold, for the error message
INPUT_HINTS = {
    "tokens": "token ids from the caption tokenizer (zoo.text / zoo.multimodal)",
    "token_ids": "token ids from zoo.text.TextTokenizer",
    "spectrograms": "log-mel spectrograms (zoo.multimodal.audio.log_mel_spectrogram)",
    "features": "feature vectors",
}


def _version_dirs(folder):
    return sorted(
        (p for p in folder.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()),
        key=lambda p: int(p.name),
    )


def resolve_model(path):
    """``(format, model path)`` of a MODEL argument, checked without loading anything.

    A SavedModel folder is the version folder (``saved_model.pb`` inside); a TF Serving model
    folder (numbered versions inside) resolves to its highest version, and the
    ``saved_model.pb`` file itself to its folder.

    Raises:
        DataError: the path does not exist or is not a model.
    """
    given = path
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file or folder; MODEL is {MODEL_KINDS}", file=given)
    if path.is_file() and path.name == "saved_model.pb":
        path = path.parent
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model", path
        versions = _version_dirs(path)
        if versions:
            return "saved_model", versions[-1]
        raise DataError(
            f"not a SavedModel folder (no saved_model.pb in it or in a numbered version "
            f"folder); MODEL is {MODEL_KINDS}",
            file=given,
        )
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return "keras", path
    if suffix == ".tflite":
        return "tflite", path
    raise DataError(
        f"not a model file (suffix {path.suffix or 'none'}); MODEL is {MODEL_KINDS}", file=given
    )


def _read_manifest(folder):
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"unreadable manifest ({error})", file=path) from None
    return manifest if isinstance(manifest, dict) else {}


def _describe(name, shape, dtype):
    dims = ", ".join("None" if d is None or d < 0 else str(int(d)) for d in shape)
    text = f"{name!r} {dtype} [{dims}]"
    hint = INPUT_HINTS.get(name)
    return f"{text} ({hint})" if hint else text


def _check_image_input(model_path, inputs, manifest):
    """``(name, (height or None, width or None), channels)`` of the model's image input.

    ``inputs`` is a list of ``(name, shape, dtype name)``; an image input is the only input,
    rank 4, float, with 1 or 3 channels, and the manifest (when there is one) does not name
    another modality.
    """
    modality = (manifest.get("preprocessing") or {}).get("modality", "image")
    if len(inputs) == 1 and modality == "image":
        name, shape, dtype = inputs[0]
        if len(shape) == 4 and shape[3] in (1, 3) and dtype.startswith("float"):
            size = tuple(None if d is None or d < 0 else int(d) for d in shape[1:3])
            return name, size, int(shape[3])
    takes = "; ".join(_describe(*spec) for spec in inputs) or "no inputs"
    raise DataError(
        f"this model takes {takes}, not images. `python -m zoo predict` runs models that take "
        "images (float32 pixels 0-255, 1 or 3 channels); a text or audio model would need a "
        "signature on raw strings or waveforms, which the zoo's towers do not export: run it "
        "from Python with its family's preprocessing",
        file=model_path,
        field="inputs",
    )


def _family(keys, shapes, manifest):
    """The family of a model whose outputs are ``keys`` with ``shapes`` (batch included)."""
    keys = set(keys)
    if set(TF_OD_KEYS) <= keys or set(KERAS_DETECTION_KEYS) <= keys:
        return "detection"
    if set(LANDMARK_KEYS) <= keys:
        return "landmarks"
    if len(keys) == 1:
        shape = next(iter(shapes.values()))
        if len(shape) == 2:
            names = manifest.get("class_names") or []
            config = manifest.get("config") or {}
            encoder = any(k in config for k in ENCODER_CONFIG_KEYS)
            if names and len(names) == shape[1] and not encoder:
                return "classifier"
            return "embedding"
    return "outputs"


def _resize(image, size):
    """Bilinear resize of a float32 ``(H, W, C)`` image to ``size`` (skipped when equal)."""
    if size is None or None in size or tuple(image.shape[:2]) == tuple(size):
        return image
    import tensorflow as tf

    return np.asarray(tf.image.resize(image, size, method="bilinear"), np.float32)


class Predictor:
    """An exported model ready for images: ``predict(pixels)`` -> results in the image's pixels.

    Use ``load_predictor(path)`` to make one.

    Attributes:
        path: the model's path (a SavedModel: its version folder).
        format: ``"saved_model"``, ``"tflite"`` or ``"keras"``.
        family: one of ``FAMILIES``.
        channels: 3 (RGB) or 1 (grayscale) input channels.
        input_size: the ``(height, width)`` images are resized to before the model; ``None``
            entries where the model (a SavedModel image signature) takes any size.
        model_size: the network's own ``(height, width)`` (for a SavedModel from
            ``manifest.json``), or ``None`` when unknown.
        class_names: from ``manifest.json``, or ``None``.
        manifest: the manifest dict (empty when there is none).
    """

    def __init__(
        self, path, format, family, channels, input_size, class_names, manifest, run, shapes
    ):
        self.path = Path(path)
        self.format = format
        self.family = family
        self.channels = channels
        self.input_size = input_size
        size = (manifest.get("input_spec") or {}).get("model_size")
        if input_size is not None and None not in input_size:
            self.model_size = tuple(input_size)
        elif isinstance(size, list) and len(size) == 2:
            self.model_size = tuple(int(d) for d in size)
        else:
            self.model_size = None
        self.class_names = list(class_names) if class_names else None
        self.manifest = manifest
        self._run = run  # float32 (1, h, w, C) -> {name: array without the batch axis}
        self.output_shapes = dict(shapes)  # {name: shape with the batch axis}

    def __repr__(self):
        return (
            f"Predictor({str(self.path)!r}, format={self.format!r}, family={self.family!r}, "
            f"model_size={self.model_size})"
        )

    def raw(self, pixels):
        """The model's own outputs on ``pixels`` (after the resize), batch axis removed.

        Returns:
            ``(outputs, sent_size)``: ``{name: array}`` and the ``(height, width)`` the model
            was given.
        """
        x = _resize(np.asarray(pixels, np.float32), self.input_size)
        return self._run(x[None]), tuple(x.shape[:2])

    def predict(self, pixels, score_threshold=None):
        """Results of the model on one image, in that image's pixel coordinates.

        Args:
            pixels: ``(H, W, C)`` image, 0-255 (uint8 or float).
            score_threshold: detection: drop detections with ``score <= score_threshold``
                (on top of the NMS threshold inside an exported detector; a ``.keras`` YOLO
                uses it as its NMS threshold, see ``load_predictor``).

        Returns:
            detection: a list of ``{"box_xyxy", "score", "class_id"[, "class_name"]}``, best
            first; landmarks: ``{"presence", "points": [[x, y], ...]}``; embedding:
            ``{"vector"}``; classifier: ``{"vector", "class_scores": [{"class_id",
            "class_name", "score"}, ...] best first}``; outputs: ``{name: nested list}``.
        """
        height, width = np.shape(pixels)[:2]
        out, (sent_h, sent_w) = self.raw(pixels)
        # the scale from what the model saw to the original image
        sx, sy = width / sent_w, height / sent_h
        if self.family == "detection":
            return self._detections(out, width, height, sx, sy, score_threshold)
        if self.family == "landmarks":
            points = np.asarray(out["landmarks"], np.float64).reshape(-1, 2)
            if len(self.output_shapes.get("presence", ())) == 2:
                # the raw model (presence (B, 1)): points are fractions of the image
                points = points * [width, height]
            else:  # the family's export / predict: pixels of what the model was given
                points = points * [sx, sy]
            presence = float(np.asarray(out["presence"]).reshape(-1)[0])
            return {"presence": presence, "points": points.tolist()}
        if self.family in ("embedding", "classifier"):
            vector = np.asarray(next(iter(out.values())), np.float64).reshape(-1)
            result = {"vector": vector.tolist()}
            if self.family == "classifier":
                order = np.argsort(-vector, kind="stable")
                result["class_scores"] = [
                    {"class_id": int(i), "class_name": self.class_names[i], "score": vector[i]}
                    for i in order
                ]
            return result
        return {k: np.asarray(v).tolist() for k, v in out.items()}

    def _detections(self, out, width, height, sx, sy, score_threshold):
        n = int(np.asarray(out["num_detections"]).reshape(-1)[0])
        if "detection_boxes" in out:  # normalised [ymin, xmin, ymax, xmax]
            ymin, xmin, ymax, xmax = np.asarray(out["detection_boxes"], np.float64)[:n].T
            boxes = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
            scores = np.asarray(out["detection_scores"])[:n]
            classes = np.asarray(out["detection_classes"])[:n]
        else:  # a YOLO's predict: pixel xyxy of the model input
            boxes = np.asarray(out["boxes"], np.float64)[:n] * [sx, sy, sx, sy]
            scores = np.asarray(out["scores"])[:n]
            classes = np.asarray(out["classes"])[:n]
        detections = []
        for box, score, cls in zip(boxes.reshape(-1, 4), scores, classes, strict=True):
            if score_threshold is not None and not score > score_threshold:
                continue
            det = {"box_xyxy": [float(v) for v in box], "score": float(score)}
            det["class_id"] = int(round(float(cls)))
            if self.class_names and 0 <= det["class_id"] < len(self.class_names):
                det["class_name"] = self.class_names[det["class_id"]]
            detections.append(det)
        return detections


# === Loaders, one per format ===


def _load_saved_model(path, manifest):
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # noqa: BLE001 - any load failure means "not a usable model"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot load the SavedModel ({first})", file=path) from None
    signatures = dict(loaded.signatures)
    if SERVING_DEFAULT not in signatures:
        raise DataError(
            f"the SavedModel has no {SERVING_DEFAULT!r} signature (it has "
            f"{sorted(signatures) or 'none'})",
            file=path,
        )
    fn = signatures[SERVING_DEFAULT]
    specs = fn.structured_input_signature[1]
    inputs = [(name, tuple(spec.shape.as_list()), spec.dtype.name) for name, spec in specs.items()]
    name, size, channels = _check_image_input(path, inputs, manifest)
    shapes = {k: tuple(v.shape.as_list()) for k, v in fn.structured_outputs.items()}

    def run(batch):
        out = fn(**{name: tf.constant(batch)})
        return {k: np.asarray(v)[0] for k, v in out.items()}

    return run, size, channels, shapes, loaded


def _load_tflite(path, manifest):
    from ai_edge_litert.interpreter import Interpreter

    from zoo.export.verify import run_tflite

    try:
        interpreter = Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner()
    except Exception as error:  # noqa: BLE001 - a broken or foreign file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot load the .tflite file ({first})", file=path) from None
    details = runner.get_input_details()
    inputs = []
    for input_name, d in details.items():
        shape = d.get("shape_signature", d["shape"])
        dtype = np.dtype(d["dtype"]).name
        if d.get("quantization", (0.0, 0))[0]:
            dtype = "float32"  # run_tflite quantizes float feeds with the tensor's scale
        inputs.append((input_name, tuple(int(v) for v in shape), dtype))
    name, size, channels = _check_image_input(path, inputs, manifest)
    shapes = {k: tuple(int(v) for v in d["shape"]) for k, d in runner.get_output_details().items()}

    def run(batch):
        return {k: np.asarray(v)[0] for k, v in run_tflite(interpreter, {name: batch}).items()}

    return run, size, channels, shapes, interpreter


def _register_zoo_objects():
    """Import every family, so their custom Keras objects can be deserialised."""
    import importlib

    for family in ("detection", "landmarks", "metric_learning", "ssl", "text", "multimodal"):
        importlib.import_module(f"zoo.{family}")


def _load_keras(path, manifest, score_threshold):
    import keras

    _register_zoo_objects()
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # noqa: BLE001 - a broken file or a missing custom object
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot load the .keras file ({first})", file=path) from None
    specs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    inputs = [
        (str(t.name), tuple(-1 if d is None else d for d in t.shape), str(t.dtype)) for t in specs
    ]
    name, size, channels = _check_image_input(path, inputs, manifest)
    if score_threshold is not None and hasattr(model, "score_threshold"):
        model.score_threshold = score_threshold  # a YOLO: its NMS rule, not only a filter

    def run(batch):
        out = model.predict_on_batch(batch)
        if isinstance(out, dict):
            return {k: np.asarray(v)[0] for k, v in out.items()}
        if isinstance(out, (list, tuple)):
            return {f"output_{i}": np.asarray(v)[0] for i, v in enumerate(out)}
        return {"outputs": np.asarray(out)[0]}

    probe = np.zeros((1, *(d or 32 for d in size), channels), np.float32)
    shapes = {k: (1, *np.shape(v)) for k, v in run(probe).items()}
    return run, size, channels, shapes, model


def load_predictor(path, score_threshold=None):
    """Load an exported model of any zoo family for ``Predictor.predict``.

    Args:
        path: a SavedModel folder (or its model folder of numbered versions), a ``.keras``
            file or a ``.tflite`` file.
        score_threshold: a ``.keras`` YOLO takes it as its NMS score threshold (exported
            detectors have theirs in the graph; ``Predictor.predict`` filters on top).

    Returns:
        A ``Predictor``.

    Raises:
        DataError: the path is not a model, cannot be loaded, or the model does not take
            images (the message lists the inputs it takes).

    Example:
        >>> predictor = load_predictor("saved_models/yolo/1")
        >>> predictor.family, predictor.predict(read_image("street.jpg"))[:1]
        ('detection', [{'box_xyxy': [...], 'score': 0.91, 'class_id': 2, 'class_name': 'car'}])
    """
    if score_threshold is not None and not math.isfinite(float(score_threshold)):
        raise DataError("must be a finite number", field="score_threshold", value=score_threshold)
    format, path = resolve_model(path)
    manifest = _read_manifest(path if format == "saved_model" else path.parent)
    if format == "saved_model":
        run, size, channels, shapes, keep = _load_saved_model(path, manifest)
    elif format == "tflite":
        run, size, channels, shapes, keep = _load_tflite(path, manifest)
    else:
        run, size, channels, shapes, keep = _load_keras(path, manifest, score_threshold)
    family = _family(shapes, shapes, manifest)
    predictor = Predictor(
        path, format, family, channels, size, manifest.get("class_names"), manifest, run, shapes
    )
    predictor.model = keep  # the loaded object (keeps a SavedModel's functions alive)
    return predictor
