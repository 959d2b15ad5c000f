"""Keras callbacks that run detection evaluation during ``fit``."""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np

from zoo.metrics.detection import COCO_METRIC_NAMES, coco_map

__all__ = ["DetectionMetricsCallback"]


def _to_numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _split_batch(batch):
    """(images, boxes, labels) from a batch in the common layout or an (images, targets) pair."""
    if isinstance(batch, Mapping):
        images, targets = batch.get("images"), batch.get("bounding_boxes")
    elif isinstance(batch, tuple | list) and len(batch) >= 2:
        images, targets = batch[0], batch[1]
        if isinstance(images, Mapping):
            images = images.get("images")
    else:
        images, targets = None, None
    if images is None or not isinstance(targets, Mapping) or "boxes" not in targets:
        raise ValueError(
            "validation_data: expected batches {'images': (B, H, W, 3), 'bounding_boxes': "
            "{'boxes': (B, N, 4), 'labels': (B, N)}} or (images, {'boxes', 'labels'}) pairs; "
            f"got {type(batch).__name__}"
            + (f" with keys {sorted(batch)}" if isinstance(batch, Mapping) else "")
        )
    labels = targets.get("labels", targets.get("classes"))
    if labels is None:
        raise ValueError(
            f"validation_data: bounding_boxes has keys {sorted(targets)}: expected 'labels'"
        )
    return images, _to_numpy(targets["boxes"]), _to_numpy(labels)


def _split_predictions(pred, batch_size):
    """Per-image detection dicts from ``predict_fn``'s output (a list, or a batched dict)."""
    if isinstance(pred, Mapping):
        boxes = _to_numpy(pred["boxes"])
        scores = _to_numpy(pred["scores"] if "scores" in pred else pred["confidence"])
        classes = _to_numpy(pred["classes"])
        num = pred.get("num_detections")
        num = None if num is None else _to_numpy(num).reshape(-1)
        out = []
        for b in range(boxes.shape[0]):
            keep = classes[b] >= 0
            if num is not None:
                keep &= np.arange(classes[b].shape[0]) < int(num[b])
            out.append(
                {"boxes": boxes[b][keep], "scores": scores[b][keep], "classes": classes[b][keep]}
            )
        pred = out
    pred = list(pred)
    if len(pred) != batch_size:
        raise ValueError(
            f"predict_fn returned {len(pred)} detection entries for a batch of {batch_size} "
            "images: expected one {'boxes', 'scores', 'classes'} dict per image"
        )
    return pred


class DetectionMetricsCallback(keras.callbacks.Callback):
    """Computes COCO mAP on a validation set at epoch end and writes it into the epoch logs.

    Every ``every`` epochs (and at the last epoch), ``predict_fn(model, images)`` runs over each
    batch of ``validation_data``; its detections and the batch's ground truth (label ``-1`` rows
    are padding and dropped) go to :func:`zoo.metrics.coco_map`, and the twelve COCO numbers are
    written into ``logs`` as ``prefix + name`` (``"val_map"``, ``"val_map50"``, ...). On other
    epochs the same keys are written as ``nan``, so History and CSVLogger keep one value per
    epoch.

    Place this callback **before** ``History`` consumers such as ``CSVLogger``, ``TensorBoard``,
    ``EarlyStopping`` and ``ModelCheckpoint`` in the ``callbacks`` list: Keras calls callbacks in
    list order with the same ``logs`` dict, so only the ones after it see the values (``History``
    and the progress bar are appended by ``fit`` and always come after). Monitoring
    ``"val_map"`` needs ``mode="max"``; with ``every > 1`` the ``nan`` epochs count as no
    improvement for ``EarlyStopping``'s patience.

    Args:
        validation_data: iterable of batches (a ``tf.data.Dataset`` included) in the common
            layout ``{"images": (B, H, W, 3), "bounding_boxes": {"boxes": (B, N, 4) xyxy pixels,
            "labels": (B, N)}}``, or ``(images, {"boxes", "labels"})`` pairs.
        predict_fn: ``predict_fn(model, images) -> detections``, ``images`` the batch's images
            as a NumPy array (dtype as stored); ``detections`` a list, one
            ``{"boxes" (M, 4) xyxy pixels, "scores" (M,), "classes" (M,)}`` per image, or one
            batched dict of the same keys (padding rows with class ``-1``, optional
            ``"num_detections"``).
        every: evaluate every this many epochs (epochs ``every - 1``, ``2 * every - 1``, ...,
            and the last one).
        prefix: prefix of the log keys.
        class_names: passed to :func:`coco_map`.
        max_dets: passed to :func:`coco_map`.
        steps: evaluate only the first ``steps`` batches (all when ``None``).
        log_per_class: also log ``prefix + "ap_" + name`` for every class (AP@[.5:.95]).
        verbose: 1 prints the mAP line after each evaluation.

    Example:
        >>> def predict_fn(model, images):
        ...     out = model.predict_on_batch(images.astype("float32"))
        ...     return [{"boxes": b, "scores": s, "classes": c} for b, s, c in decode(out)]
        >>> cb = DetectionMetricsCallback(val_ds, predict_fn, every=5)
        >>> model.fit(train_ds, epochs=50, callbacks=[cb, keras.callbacks.CSVLogger("log.csv")])
    """

    def __init__(
        self,
        validation_data,
        predict_fn,
        *,
        every=1,
        prefix="val_",
        class_names=None,
        max_dets=100,
        steps=None,
        log_per_class=False,
        verbose=0,
    ):
        super().__init__()
        if not callable(predict_fn):
            raise ValueError(f"predict_fn = {predict_fn!r}: expected a callable")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every = {every!r}: expected an int >= 1")
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise ValueError(f"steps = {steps!r}: expected None or an int >= 1")
        self.validation_data = validation_data
        self.predict_fn = predict_fn
        self.every = every
        self.prefix = prefix
        self.class_names = None if class_names is None else list(class_names)
        self.max_dets = max_dets
        self.steps = steps
        self.log_per_class = log_per_class
        self.verbose = verbose
        self.last_result = None

    def _keys(self):
        keys = [self.prefix + name for name in COCO_METRIC_NAMES]
        if self.log_per_class and self.class_names is not None:
            keys += [f"{self.prefix}ap_{name}" for name in self.class_names]
        return keys

    def _batches(self):
        data = self.validation_data
        if hasattr(data, "as_numpy_iterator"):
            data = data.as_numpy_iterator()
        for step, batch in enumerate(data):
            if self.steps is not None and step >= self.steps:
                break
            yield batch

    def evaluate(self):
        """Runs ``predict_fn`` over the validation data; returns :func:`coco_map`'s dict."""
        ground_truth, detections = [], []
        for batch in self._batches():
            images, boxes, labels = _split_batch(batch)
            images = _to_numpy(images)
            pred = _split_predictions(self.predict_fn(self.model, images), images.shape[0])
            for b in range(images.shape[0]):
                keep = labels[b] >= 0
                ground_truth.append(
                    {
                        "boxes": boxes[b][keep],
                        "classes": labels[b][keep],
                        "image_size": images.shape[1:3],
                    }
                )
            detections.extend(pred)
        return coco_map(
            ground_truth, detections, class_names=self.class_names, max_dets=self.max_dets
        )

    def _due(self, epoch):
        last = (self.params or {}).get("epochs")
        return (epoch + 1) % self.every == 0 or (last is not None and epoch + 1 == last)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if not self._due(epoch):
            logs.update({key: float("nan") for key in self._keys()})
            return
        result = self.evaluate()
        self.last_result = result
        for name in COCO_METRIC_NAMES:
            logs[self.prefix + name] = result[name]
        if self.log_per_class and self.class_names is not None:
            for name in self.class_names:
                logs[f"{self.prefix}ap_{name}"] = result["per_class"][name]
        if self.verbose:
            fmt = lambda v: "nan" if math.isnan(v) else f"{v:.4f}"  # noqa: E731
            print(
                f"Epoch {epoch + 1}: {self.prefix}map = {fmt(result['map'])}, "
                f"{self.prefix}map50 = {fmt(result['map50'])}"
            )
