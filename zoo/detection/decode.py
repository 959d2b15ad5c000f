"""YOLO post-processing: decode the raw head, class-aware NMS, and predictions in pixels.

Pipeline (one graph, the same in Python, in the SavedModel and in the ``.tflite``):

1. ``zoo.detection.grid.decode_yolo_grid``: boxes (``rel_xyxy``, clipped to the image), objectness
   ``p_o`` and class probabilities ``P(c | object)``;
2. scores: the class-specific confidence ``p_o * P(c | object)`` (the paper's
   ``P(class) * IoU``); one candidate per predicted box with its best class, or with
   ``multi_label=True`` one candidate per box and class (the paper scores all ``C`` classes);
3. ``zoo.ops.batched_non_max_suppression`` (builtin ``NON_MAX_SUPPRESSION_V5``, per class by
   offsetting boxes): drop scores ``<= score_threshold`` (0.6), keep the best, drop
   ``IoU >= iou_threshold`` (0.5) within its class, at most ``max_detections`` (100).

Outputs follow the TF Object Detection API serving names: ``detection_boxes`` float32
``(batch, K, 4)`` normalised ``[ymin, xmin, ymax, xmax]``, ``detection_scores`` ``(batch, K)``,
``detection_classes`` float32 ``(batch, K)`` holding **0-based** class ids (index into the
manifest's ``class_names``; the TFLite detection post-process convention), ``num_detections``
float32 ``(batch,)``. Rows past ``num_detections`` are padding: boxes and scores 0, classes -1.

Example:
    >>> model = zoo.detection.build_yolo(3, (128, 128, 3), grid_size=2, width_multiplier=0.25)
    >>> detections = predict(model, images)          # [{"boxes", "scores", "classes"}, ...]
    >>> export_saved_model(model, "saved_models", "yolo", 1, outputs_fn=yolo_outputs_fn(model))
    >>> export_tflite(model, "yolo.tflite", outputs_fn=yolo_outputs_fn(model))
"""

import keras
import numpy as np
import tensorflow as tf

from zoo.detection.grid import decode_yolo_grid
from zoo.ops.nms import batched_non_max_suppression

__all__ = [
    "YoloDetections",
    "decode_yolo_predictions",
    "detection_model",
    "predict",
    "yolo_detections",
    "yolo_outputs_fn",
]

OUTPUT_BOX_FORMATS = ("rel_yxyx", "rel_xyxy")
DETECTION_KEYS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def decode_yolo_predictions(
    raw, num_classes, boxes_per_cell=2, anchors=None, multi_label=False, xy_scale=1.0
):
    """Candidate boxes, scores and classes of a raw YOLO head output (before NMS).

    Args:
        raw: ``(batch, S, S, 5B + C)`` (v1) or ``(batch, S, S, A, 5 + C)`` (anchors).
        num_classes: ``C``.
        boxes_per_cell: ``B`` of the v1 head.
        anchors: ``None`` or the model's anchors.
        multi_label: one candidate per box and class (``N = S*S*P*C``) instead of one per box
            with its best class (``N = S*S*P``).
        xy_scale: the model's centre-offset scale (``zoo.detection.grid.decode_yolo_grid``).

    Returns:
        ``(boxes, scores, classes)``: float32 ``(batch, N, 4)`` ``rel_xyxy`` boxes clipped to
        ``[0, 1]``, float32 ``(batch, N)`` scores ``p_o * P(c | object)``, int32 ``(batch, N)``
        classes. Candidates are ordered by cell (row-major), predictor, then class.
    """
    dec = decode_yolo_grid(raw, num_classes, boxes_per_cell, anchors, xy_scale)
    boxes = tf.clip_by_value(dec["boxes"], 0.0, 1.0)  # (b, S, S, P, 4)
    class_scores = dec["objectness"][..., None] * dec["class_probs"]  # (b, S, S, P, C)
    S, P = boxes.shape[1], boxes.shape[3]
    n = S * S * P
    if multi_label:
        boxes = tf.broadcast_to(boxes[..., None, :], tf.concat([tf.shape(class_scores), [4]], 0))
        classes = tf.broadcast_to(tf.range(num_classes, dtype=tf.int32), tf.shape(class_scores))
        n *= num_classes
        return (
            tf.reshape(boxes, [-1, n, 4]),
            tf.reshape(class_scores, [-1, n]),
            tf.reshape(classes, [-1, n]),
        )
    scores = tf.reduce_max(class_scores, axis=-1)
    classes = tf.argmax(class_scores, axis=-1, output_type=tf.int32)
    return tf.reshape(boxes, [-1, n, 4]), tf.reshape(scores, [-1, n]), tf.reshape(classes, [-1, n])


def check_nms_args(score_threshold, iou_threshold, max_detections, box_format):
    if box_format not in OUTPUT_BOX_FORMATS:
        raise ValueError(
            f"box_format must be one of {OUTPUT_BOX_FORMATS}. Received: box_format={box_format!r}"
        )
    if isinstance(max_detections, bool) or not isinstance(max_detections, (int, np.integer)):
        raise ValueError(
            f"max_detections must be an int. Received: max_detections={max_detections!r}"
        )
    if max_detections < 1:
        raise ValueError(f"max_detections must be >= 1. Received: max_detections={max_detections}")
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(
            f"iou_threshold must be in (0, 1]. Received: iou_threshold={iou_threshold}"
        )
    if not np.isfinite(float(score_threshold)):
        raise ValueError(
            f"score_threshold must be finite. Received: score_threshold={score_threshold}"
        )


def yolo_detections(
    raw,
    num_classes,
    boxes_per_cell=2,
    anchors=None,
    score_threshold=0.6,
    iou_threshold=0.5,
    max_detections=100,
    multi_label=False,
    box_format="rel_yxyx",
    xy_scale=1.0,
):
    """Decoding + class-aware NMS of a raw YOLO head output, with TF OD API output names.

    Args:
        raw: the model's raw output (see ``decode_yolo_predictions``).
        num_classes, boxes_per_cell, anchors, multi_label, xy_scale: see
            ``decode_yolo_predictions``.
        score_threshold: candidates with score ``<= score_threshold`` are dropped (0.6).
        iou_threshold: a box with ``IoU >= iou_threshold`` to a kept box of its class is
            dropped (0.5).
        max_detections: ``K``, the most detections per image (100).
        box_format: ``"rel_yxyx"`` (the TF OD API's) or ``"rel_xyxy"``.

    Returns:
        ``{"detection_boxes": (batch, K, 4), "detection_scores": (batch, K),
        "detection_classes": (batch, K), "num_detections": (batch,)}``, all float32 (module
        docstring); rows best first.

    Example:
        >>> out = yolo_detections(model(images), num_classes=3, score_threshold=0.3)
        >>> out["detection_boxes"][0, : int(out["num_detections"][0])]
    """
    check_nms_args(score_threshold, iou_threshold, max_detections, box_format)
    boxes, scores, classes = decode_yolo_predictions(
        raw, num_classes, boxes_per_cell, anchors, multi_label, xy_scale
    )
    nms_kwargs = dict(
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        max_output_size=int(max_detections),
        box_format="xyxy",  # relative corners: IoU does not depend on the scale
    )
    if boxes.shape[0] == 1:
        # A static batch of one (phones): NMS without the per-image loop. A WHILE loop around
        # NMS is what full-integer TFLite quantization gets wrong (its body is not calibrated).
        out = batched_non_max_suppression(boxes[0], scores[0], classes[0], **nms_kwargs)
        out = {key: value[None] for key, value in out.items()}
    else:
        out = batched_non_max_suppression(boxes, scores, classes, **nms_kwargs)
    detection_boxes = out["detection_boxes"]
    if box_format == "rel_yxyx":
        detection_boxes = tf.gather(detection_boxes, [1, 0, 3, 2], axis=-1)
    return {
        "detection_boxes": detection_boxes,
        "detection_scores": out["detection_scores"],
        "detection_classes": tf.cast(out["detection_classes"], tf.float32),
        "num_detections": tf.cast(out["num_detections"], tf.float32),
    }


def _head_config(model, num_classes=None, boxes_per_cell=None, anchors=None):
    """Head settings from explicit arguments or a ``YOLO`` model's attributes."""
    num_classes = num_classes if num_classes is not None else getattr(model, "num_classes", None)
    if num_classes is None:
        raise ValueError(
            f"model {getattr(model, 'name', model)!r} has no num_classes attribute (not built "
            "by build_yolo); pass num_classes (and boxes_per_cell / anchors)."
        )
    if anchors is None:
        anchors = getattr(model, "anchors", None)
    if boxes_per_cell is None:
        boxes_per_cell = getattr(model, "boxes_per_cell", None) or 2
    return int(num_classes), int(boxes_per_cell), anchors, float(getattr(model, "xy_scale", 1.0))


@keras.saving.register_keras_serializable(package="zoo")
class YoloDetections(keras.layers.Layer):
    """Keras layer: raw YOLO head output -> TF OD API detections (``yolo_detections``).

    Args:
        num_classes, boxes_per_cell, anchors, xy_scale: the head's settings.
        score_threshold, iou_threshold, max_detections, multi_label, box_format: see
            ``yolo_detections``.

    Example:
        >>> outputs = YoloDetections(num_classes=3)(model.output)
        >>> detector = keras.Model(model.input, outputs)
    """

    def __init__(
        self,
        num_classes,
        boxes_per_cell=2,
        anchors=None,
        score_threshold=0.6,
        iou_threshold=0.5,
        max_detections=100,
        multi_label=False,
        box_format="rel_yxyx",
        xy_scale=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_nms_args(score_threshold, iou_threshold, max_detections, box_format)
        self.num_classes = int(num_classes)
        self.boxes_per_cell = int(boxes_per_cell)
        self.anchors = None if anchors is None else np.asarray(anchors, "float64").tolist()
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.multi_label = bool(multi_label)
        self.box_format = box_format
        self.xy_scale = float(xy_scale)

    def call(self, raw):
        return yolo_detections(
            raw,
            self.num_classes,
            self.boxes_per_cell,
            self.anchors,
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            max_detections=self.max_detections,
            multi_label=self.multi_label,
            box_format=self.box_format,
            xy_scale=self.xy_scale,
        )

    def compute_output_spec(self, raw):
        batch, k = raw.shape[0], self.max_detections
        return {
            "detection_boxes": keras.KerasTensor((batch, k, 4), "float32"),
            "detection_scores": keras.KerasTensor((batch, k), "float32"),
            "detection_classes": keras.KerasTensor((batch, k), "float32"),
            "num_detections": keras.KerasTensor((batch,), "float32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            boxes_per_cell=self.boxes_per_cell,
            anchors=self.anchors,
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            max_detections=self.max_detections,
            multi_label=self.multi_label,
            box_format=self.box_format,
            xy_scale=self.xy_scale,
        )
        return config


def detection_model(model, batch_size=None, **kwargs):
    """``model`` followed by ``YoloDetections``: images -> TF OD API detections.

    Export this model directly (``export_saved_model`` / ``export_tflite`` without an
    ``outputs_fn``) or check it with ``verify_export``, whose comparison then covers decoding and
    NMS by output name.

    Args:
        model: a ``YOLO`` from ``build_yolo`` (or pass ``num_classes`` etc. in ``kwargs``).
        batch_size: ``None`` (any batch) or a fixed batch size; ``1`` gives the loop-free graph
            that ``.tflite`` exports use (and that int8 quantization needs).
        **kwargs: ``num_classes``, ``boxes_per_cell``, ``anchors`` (default: the model's) and the
            ``YoloDetections`` settings.

    Returns:
        A functional ``keras.Model`` named ``model.name + "_detections"``.
    """
    num_classes, boxes_per_cell, anchors, xy_scale = _head_config(
        model,
        kwargs.pop("num_classes", None),
        kwargs.pop("boxes_per_cell", None),
        kwargs.pop("anchors", None),
    )
    kwargs.setdefault("xy_scale", xy_scale)
    layer = YoloDetections(num_classes, boxes_per_cell, anchors, name="detections", **kwargs)
    inputs = keras.Input(model.input.shape[1:], batch_size=batch_size, name="images")
    return keras.Model(inputs, layer(model(inputs)), name=f"{model.name}_detections")


def yolo_outputs_fn(
    model,
    score_threshold=0.6,
    iou_threshold=0.5,
    max_detections=100,
    multi_label=False,
    num_classes=None,
    boxes_per_cell=None,
    anchors=None,
):
    """An ``outputs_fn`` for ``zoo.export.export_saved_model`` / ``export_tflite``.

    The exported signatures then return the TF OD API detections (decoding + NMS in the graph,
    builtin ops only) instead of the raw head. Boxes are normalised, so they hold for the
    caller's original image size whatever resize the SavedModel applied.

    Args:
        model: the ``YOLO`` being exported (gives the head settings unless passed).
        score_threshold, iou_threshold, max_detections, multi_label: see ``yolo_detections``.
        num_classes, boxes_per_cell, anchors: override the model's head settings.

    Returns:
        ``fn(model_outputs: dict, image_shapes) -> dict`` of the four detection tensors.

    Example:
        >>> export_saved_model(model, "saved_models", "yolo", 1,
        ...                    outputs_fn=yolo_outputs_fn(model, score_threshold=0.25))
    """
    num_classes, boxes_per_cell, anchors, xy_scale = _head_config(
        model, num_classes, boxes_per_cell, anchors
    )
    check_nms_args(score_threshold, iou_threshold, max_detections, "rel_yxyx")

    def outputs_fn(model_outputs, image_shapes=None):
        del image_shapes  # boxes are normalised
        if isinstance(model_outputs, dict):
            if len(model_outputs) != 1:
                raise ValueError(
                    f"yolo_outputs_fn expects a single-output model; got outputs "
                    f"{sorted(model_outputs)}"
                )
            model_outputs = next(iter(model_outputs.values()))
        return yolo_detections(
            model_outputs,
            num_classes,
            boxes_per_cell,
            anchors,
            score_threshold=score_threshold,
            iou_threshold=iou_threshold,
            max_detections=max_detections,
            multi_label=multi_label,
            xy_scale=xy_scale,
        )

    return outputs_fn


def _as_image_list(images):
    if isinstance(images, (list, tuple)):
        return [np.asarray(im.numpy() if hasattr(im, "numpy") else im) for im in images]
    array = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(
            f"images must be (N, H, W, C), (H, W, C) or a list of (H, W, C) arrays. Received: "
            f"shape={array.shape}"
        )
    return list(array)


def predict(
    model,
    images,
    score_threshold=0.6,
    iou_threshold=0.5,
    max_detections=100,
    multi_label=False,
    batch_size=32,
    num_classes=None,
    boxes_per_cell=None,
    anchors=None,
):
    """Detections in the user's pixel coordinates, one dict per image.

    Each image (any size, 0-255) is resized (bilinear) to the model's input size when it differs,
    run through the model, decoded and NMS'd (``yolo_detections``); the normalised boxes are then
    scaled back to that image's own height and width. Usable as the ``predict_fn`` of
    ``zoo.metrics.DetectionMetricsCallback`` (``predict_fn(model, images)``).

    Args:
        model: a ``YOLO`` (or any raw-head model with ``num_classes`` etc. passed explicitly).
        images: ``(N, H, W, 3)`` array / tensor, one ``(H, W, 3)`` image, or a list of
            ``(H_i, W_i, 3)`` images.
        score_threshold, iou_threshold, max_detections, multi_label: see ``yolo_detections``.
        batch_size: images per model call.
        num_classes, boxes_per_cell, anchors: override the model's head settings.

    Returns:
        A list with one ``{"boxes": float32 (K, 4) xyxy pixels of the original image,
        "scores": float32 (K,), "classes": int32 (K,)}`` per image, best first.

    Example:
        >>> dets = predict(model, [image_640x480, image_320x320], score_threshold=0.3)
        >>> dets[0]["boxes"]  # pixels of the 640 x 480 image
    """
    num_classes, boxes_per_cell, anchors, xy_scale = _head_config(
        model, num_classes, boxes_per_cell, anchors
    )
    check_nms_args(score_threshold, iou_threshold, max_detections, "rel_xyxy")
    height, width = (int(d) for d in model.input.shape[1:3])
    image_list = _as_image_list(images)
    results = []
    for start in range(0, len(image_list), batch_size):
        chunk = image_list[start : start + batch_size]
        batch = []
        for image in chunk:
            image = tf.convert_to_tensor(image, tf.float32)
            if tuple(image.shape[:2]) != (height, width):
                image = tf.image.resize(image, (height, width), method="bilinear")
            batch.append(image)
        raw = model(tf.stack(batch), training=False)
        out = yolo_detections(
            raw,
            num_classes,
            boxes_per_cell,
            anchors,
            score_threshold=score_threshold,
            iou_threshold=iou_threshold,
            max_detections=max_detections,
            multi_label=multi_label,
            box_format="rel_xyxy",
            xy_scale=xy_scale,
        )
        out = {k: np.asarray(v) for k, v in out.items()}
        for i, image in enumerate(chunk):
            k = int(out["num_detections"][i])
            h, w = image.shape[:2]
            scale = np.array([w, h, w, h], dtype=np.float32)
            results.append(
                {
                    "boxes": (out["detection_boxes"][i, :k] * scale).astype(np.float32),
                    "scores": out["detection_scores"][i, :k].astype(np.float32),
                    "classes": out["detection_classes"][i, :k].astype(np.int32),
                }
            )
    return results
