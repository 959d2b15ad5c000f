"""YOLO detectors: a backbone and the YOLOv1 head or the YOLOv2 anchor head.

The model outputs the **raw** head tensor (pre-activation values, "logits"); the activations are
applied by ``zoo.detection.grid.decode_yolo_grid``, which both the loss (``zoo.detection.YoloLoss``) and
decoding (``zoo.detection``) call, so the two can never disagree. Logits let the loss use
numerically safe forms (e.g. cross-entropy from logits) and keep the exported graph the same as
the trained one.

Output layouts (``S = grid_size``, ``B = boxes_per_cell``, ``C = num_classes``):

- YOLOv1 head (``anchors=None``): ``(batch, S, S, 5B + C)``, the paper's layout: for each of the
  ``B`` boxes ``(t_x, t_y, t_w, t_h, t_o)``, then ``C`` class logits shared by the cell.
  Activated: ``x = sigmoid(t_x)``, ``y = sigmoid(t_y)`` (centre offset inside the cell, 0-1),
  ``sqrt(w) = sigmoid(t_w)``, ``sqrt(h) = sigmoid(t_h)`` (``w``, ``h`` fractions of the image,
  predicted through their square roots as in the paper), objectness ``sigmoid(t_o)``,
  ``P(class | object) = softmax(class logits)``.
- Anchor head (``anchors=[(w, h), ...]``): ``(batch, S, S, A, 5 + C)``, one
  ``(t_x, t_y, t_w, t_h, t_o, class logits...)`` per anchor (YOLOv2): ``x = sigmoid(t_x)``,
  ``w = anchor_w * exp(t_w)`` (anchors are ``(w, h)`` fractions of the image size, e.g. from
  ``zoo.ops.anchors.kmeans_anchors`` on relative box sizes), objectness ``sigmoid(t_o)``, class
  ``softmax``.

In both cases the detection score of a box for class ``c`` is
``objectness * P(c | object)`` (the paper's class-specific confidence, ``P(class) * IoU``).

Reference:
    Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", CVPR 2016;
    Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017.
"""

import math

import keras
import numpy as np

from zoo.backbones.cnn import (
    BACKBONE_STRIDES,
    BACKBONES,
    OUTPUT_STRIDES,
    build_backbone,
    scale_filters,
)
from zoo.detection.decode import check_nms_args, yolo_detections
from zoo.detection.grid import check_xy_scale
from zoo.detection.loss import YoloLoss
from zoo.ops.checks import check_int

__all__ = ["YOLO", "build_yolo", "check_anchors"]

V1_HEADS = ("fc", "conv")
ANCHOR_HEADS = ("conv", "decoupled")
# The layers after each head's last hidden activation (output convs / dense and the reshapes and
# concatenation that form the raw output), by the names ``build_yolo`` gives them.
HEAD_TAIL_LAYERS = (
    "head_box_out",
    "head_cls_out",
    "head_box_grid",
    "head_cls_grid",
    "head_out_conv",
    "head_fc2",
    "head_output",
)
# YOLO nets drop their last down-sampling steps to reach finer grids (see build_backbone).
_OBJECTNESS_PRIOR = 0.1  # initial sigmoid(t_o): most cells hold no object


def check_anchors(anchors):
    """Validates anchors given as ``(w, h)`` fractions of the image size.

    Args:
        anchors: a sequence of ``(width, height)`` pairs, each in ``(0, 1]``.

    Returns:
        A list of ``[float, float]`` pairs.

    Example:
        >>> check_anchors([(0.1, 0.2), (0.5, 0.4)])
        [[0.1, 0.2], [0.5, 0.4]]
    """
    try:
        array = np.asarray(anchors, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"anchors must be a list of (width, height) pairs. Received: anchors={anchors!r}"
        ) from None
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
        raise ValueError(
            f"anchors must be a non-empty list of (width, height) pairs. Received: "
            f"anchors={anchors!r}"
        )
    if not np.all(np.isfinite(array)) or np.any(array <= 0) or np.any(array > 1):
        raise ValueError(
            "anchors are (width, height) fractions of the image size, each in (0, 1] (divide "
            f"pixel anchors by the input size). Received: anchors={anchors!r}"
        )
    return array.tolist()


def _conv_bn_leaky(x, filters, name):
    """3x3 conv (no bias) -> batch norm -> LeakyReLU(0.1), the head's hidden layer."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.97, epsilon=1e-3, name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(negative_slope=0.1, name=f"{name}_leaky")(x)


@keras.saving.register_keras_serializable(package="zoo")
class YOLO(keras.Model):
    """A YOLO detector (functional model): images -> raw head tensor.

    See the module docstring for the output layouts and activations. Build it with
    ``build_yolo``; every constructor argument is kept as an attribute and returned by
    ``get_config``, so ``.keras`` files round-trip.

    Args:
        num_classes: number of object classes ``C``.
        input_shape: ``(height, width, 3)`` of the float32 0-255 input.
        grid_size: ``S``; must equal ``height / stride`` and ``width / stride`` of the backbone.
        boxes_per_cell: ``B`` for the v1 head (default 2); for the anchor head it defaults to
            (and must equal) ``len(anchors)``.
        anchors: ``None`` for the YOLOv1 head, else ``(w, h)`` fractions of the image.
        backbone: a name from ``zoo.backbones.cnn.BACKBONES``.
        width_multiplier, depth_multiplier: backbone (and head) scaling.
        head: ``None`` (``"fc"`` for v1, ``"conv"`` with anchors), ``"fc"`` (the paper:
            flatten -> Dense(head_width) -> LeakyReLU -> Dropout -> Dense(S*S*(5B+C)); v1 only),
            ``"conv"`` (3x3 conv -> 1x1 conv per cell) or ``"decoupled"`` (anchors only:
            YOLOX's separate box + objectness and class branches, each a 3x3 conv of
            ``head_width / 2`` filters and a 1x1 conv; same output layout).
        head_width: units of the FC layer (default ``4096 * width_multiplier``) or filters of the
            head's 3x3 conv (default ``512 * width_multiplier``).
        dropout: dropout rate after the first FC layer (``"fc"`` head only); the paper's 0.5.
        backbone_weights: ``None`` or a local weights file for the backbone (not stored in the
            config: a loaded ``.keras`` file carries its own weights).
        xy_scale: centre offsets are ``xy_scale * sigmoid(t) - (xy_scale - 1) / 2`` (1: the
            papers'; 2: YOLOv5's, which lets neighbouring cells predict a box, see
            ``zoo.detection.grid.decode_yolo_grid``). Decoding and the loss read it from the model.
        name: model name.
    """

    def __init__(
        self,
        num_classes,
        input_shape=(448, 448, 3),
        grid_size=None,
        boxes_per_cell=None,
        anchors=None,
        backbone="yolov1_fast",
        width_multiplier=1.0,
        depth_multiplier=1.0,
        head=None,
        head_width=None,
        dropout=0.5,
        backbone_weights=None,
        xy_scale=1.0,
        score_threshold=0.6,
        iou_threshold=0.5,
        max_detections=100,
        name="yolo",
        **kwargs,
    ):
        # === Arguments ===
        num_classes = check_int("num_classes", num_classes)
        try:
            input_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"input_shape must be (height, width, channels). Received: "
                f"input_shape={input_shape!r}"
            ) from None
        if len(input_shape) != 3 or min(input_shape) < 1 or input_shape[2] != 3:
            raise ValueError(
                f"input_shape must be (height, width, 3) with positive sizes. Received: "
                f"input_shape={input_shape!r}"
            )
        if backbone not in BACKBONE_STRIDES:
            raise ValueError(
                f"Unknown backbone. Expected one of {BACKBONES}. Received: backbone={backbone!r}"
            )
        if anchors is not None:
            anchors = check_anchors(anchors)
            if boxes_per_cell is None:
                boxes_per_cell = len(anchors)
            elif boxes_per_cell != len(anchors):
                raise ValueError(
                    f"With anchors, boxes_per_cell must equal len(anchors)={len(anchors)}. "
                    f"Received: boxes_per_cell={boxes_per_cell!r}"
                )
        elif boxes_per_cell is None:
            boxes_per_cell = 2
        boxes_per_cell = check_int("boxes_per_cell", boxes_per_cell)
        if head is None:
            head = "fc" if anchors is None else "conv"
        allowed = V1_HEADS if anchors is None else ANCHOR_HEADS
        if head not in allowed:
            raise ValueError(
                f"head must be one of {allowed} "
                + ("(YOLOv1 head)" if anchors is None else "with anchors")
                + f". Received: head={head!r}"
            )
        for arg, value in (
            ("width_multiplier", width_multiplier),
            ("depth_multiplier", depth_multiplier),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{arg} must be a number > 0. Received: {arg}={value!r}")
        if head_width is not None:
            head_width = check_int("head_width", head_width)
        xy_scale = check_xy_scale(xy_scale)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout < 1
        ):
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
        height, width = input_shape[:2]
        stride = BACKBONE_STRIDES[backbone]
        if grid_size is None:
            grid_size = max(1, height // stride)
        grid_size = check_int("grid_size", grid_size)
        check_nms_args(score_threshold, iou_threshold, max_detections, "rel_xyxy")
        others = [s for s in OUTPUT_STRIDES.get(backbone, ()) if s != stride]
        if height == width and height % grid_size == 0 and height // grid_size in others:
            stride = height // grid_size  # YOLOv1 nets: fewer down-sampling steps; nano: stride 4
        if (
            height % stride
            or width % stride
            or height // stride != grid_size
            or (width // stride != grid_size)
        ):
            raise ValueError(
                f"grid_size={grid_size} does not match input_shape={input_shape} with "
                f"backbone={backbone!r} (stride {BACKBONE_STRIDES[backbone]}"
                + (f", or {'/'.join(map(str, others))} on request" if others else "")
                + f"): the feature map would be {height / stride:g} x {width / stride:g}. "
                "Height and width must be equal and grid_size * stride."
            )

        # === Functional Model ===
        inputs = keras.Input(input_shape, name="images")
        features = build_backbone(
            backbone,
            input_shape,
            width_multiplier,
            depth_multiplier,
            weights=backbone_weights,
            output_stride=stride,
        )(inputs)
        S, B, C = grid_size, boxes_per_cell, num_classes
        if anchors is None and head == "fc":
            units = head_width or scale_filters(4096, width_multiplier)
            x = keras.layers.Flatten(name="head_flatten")(features)
            x = keras.layers.Dense(units, name="head_fc1")(x)
            x = keras.layers.LeakyReLU(negative_slope=0.1, name="head_fc1_leaky")(x)
            x = keras.layers.Dropout(dropout, name="head_dropout")(x)
            x = keras.layers.Dense(S * S * (5 * B + C), name="head_fc2")(x)
            outputs = keras.layers.Reshape((S, S, 5 * B + C), name="head_output")(x)
            output_layer = "head_fc2"
        elif head == "decoupled":
            # YOLOX-style: a box + objectness branch and a class branch, each half the conv
            # head's filters (about the same compute), joined back into (S, S, A, 5 + C).
            filters = max(1, (head_width or scale_filters(512, width_multiplier)) // 2)
            parts = []
            for branch, channels in (("box", 5), ("cls", C)):
                x = _conv_bn_leaky(features, filters, f"head_{branch}")
                x = keras.layers.Conv2D(B * channels, 1, name=f"head_{branch}_out")(x)
                parts.append(
                    keras.layers.Reshape((S, S, B, channels), name=f"head_{branch}_grid")(x)
                )
            outputs = keras.layers.Concatenate(axis=-1, name="head_output")(parts)
            output_layer = "head_box_out"
        else:
            filters = head_width or scale_filters(512, width_multiplier)
            x = _conv_bn_leaky(features, filters, "head")
            channels = 5 * B + C if anchors is None else B * (5 + C)
            x = keras.layers.Conv2D(channels, 1, name="head_out_conv")(x)
            shape = (S, S, 5 * B + C) if anchors is None else (S, S, B, 5 + C)
            outputs = keras.layers.Reshape(shape, name="head_output")(x)
            output_layer = "head_out_conv"
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        # Objectness biases start at logit(_OBJECTNESS_PRIOR); overwritten by loaded weights.
        bias_layer = self.get_layer(output_layer)
        bias = np.zeros(bias_layer.bias.shape, dtype="float32")
        prior = math.log(_OBJECTNESS_PRIOR / (1 - _OBJECTNESS_PRIOR))
        if anchors is None:
            per_cell = bias.reshape(-1, 5 * B + C)
            per_cell[:, 4 : 5 * B : 5] = prior
        else:
            bias.reshape(B, -1)[:, 4] = prior  # (A, 5 + C) or, decoupled, (A, 5)
        bias_layer.bias.assign(bias)

        # === Config ===
        self.num_classes = num_classes
        self.image_shape = input_shape
        self.grid_size = grid_size
        self.boxes_per_cell = boxes_per_cell
        self.anchors = anchors
        self.backbone_name = backbone
        self.width_multiplier = width_multiplier
        self.depth_multiplier = depth_multiplier
        self.head = head
        self.head_width = head_width
        self.dropout = dropout
        self.stride = stride
        self.xy_scale = xy_scale
        self._nms = {
            "score_threshold": float(score_threshold),
            "iou_threshold": float(iou_threshold),
            "max_detections": int(max_detections),
        }

    # === Workflow ===

    def _set_nms(self, key, value):
        nms = {**self._nms, key: value}
        check_nms_args(**nms, box_format="rel_xyxy")
        self._nms = {k: type(self._nms[k])(v) for k, v in nms.items()}
        self.predict_function = None  # the traced predict step holds the old value

    score_threshold = property(
        lambda self: self._nms["score_threshold"],
        lambda self, value: self._set_nms("score_threshold", value),
        doc="``predict`` drops detections with score <= this (the NMS rule's 0.6).",
    )
    iou_threshold = property(
        lambda self: self._nms["iou_threshold"],
        lambda self, value: self._set_nms("iou_threshold", value),
        doc="``predict`` drops a box with IoU >= this to a kept box of its class (0.5).",
    )
    max_detections = property(
        lambda self: self._nms["max_detections"],
        lambda self, value: self._set_nms("max_detections", value),
        doc="``predict`` keeps at most this many detections per image (100).",
    )

    def yolo_loss(self, **options):
        """A ``YoloLoss`` that matches this head (classes, grid, anchors, centre-offset scale).

        The anchor head gets the settings the YOLO recipe trains with (CIoU box term with
        ``lambda_coord=10``, cross-entropy objectness and classes, YOLOv2's ignore rule at 0.6,
        every anchor with shape IoU >= 0.5, YOLOv5's neighbour cells when ``xy_scale=2``); the
        YOLOv1 head keeps the paper's sums of squares. ``options`` override any of them.
        """
        settings = dict(boxes_per_cell=None if self.anchors is not None else self.boxes_per_cell)
        if self.anchors is not None:
            settings.update(
                box_loss="ciou",
                lambda_coord=10.0,
                objectness_loss="bce",
                class_loss="ce",
                ignore_iou=0.6,
                anchor_iou_threshold=0.5,
                neighbour_cells=self.xy_scale == 2.0,
            )
        settings.update(options)
        return YoloLoss(
            self.num_classes,
            self.grid_size,
            anchors=self.anchors,
            xy_scale=self.xy_scale,
            **settings,
        )

    def compile(self, optimizer="adamw", loss=None, **kwargs):
        """``keras.Model.compile``; without a ``loss``, ``self.yolo_loss()`` is used."""
        super().compile(
            optimizer=optimizer, loss=self.yolo_loss() if loss is None else loss, **kwargs
        )

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (loss and optimizer included)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def predict_step(self, data):
        """Decoded detections: ``{"boxes" (B, K, 4) pixel xyxy of the model input, "scores"
        (B, K), "classes" (B, K) int32, "num_detections" (B,) int32}``, rows best first, after
        the NMS rule with the model's ``score_threshold`` / ``iou_threshold`` /
        ``max_detections`` (attributes a user may change on a trained model). ``model(images)``
        still returns the raw head output, for the loss and export."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        raw = self(x, training=False)
        head = (self.num_classes, self.boxes_per_cell, self.anchors)
        out = yolo_detections(
            raw, *head, **self._nms, box_format="rel_xyxy", xy_scale=self.xy_scale
        )
        height, width = self.image_shape[:2]
        scale = keras.ops.convert_to_tensor([width, height, width, height], "float32")
        return {
            "boxes": out["detection_boxes"] * scale,
            "scores": out["detection_scores"],
            "classes": keras.ops.cast(out["detection_classes"], "int32"),
            "num_detections": keras.ops.cast(out["num_detections"], "int32"),
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "input_shape": list(self.image_shape),
            "grid_size": self.grid_size,
            "boxes_per_cell": self.boxes_per_cell,
            "anchors": self.anchors,
            "backbone": self.backbone_name,
            "width_multiplier": self.width_multiplier,
            "depth_multiplier": self.depth_multiplier,
            "head": self.head,
            "head_width": self.head_width,
            "dropout": self.dropout,
            "xy_scale": self.xy_scale,
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "max_detections": self.max_detections,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_yolo(
    num_classes,
    input_shape=(448, 448, 3),
    grid_size=None,
    boxes_per_cell=None,
    anchors=None,
    backbone="yolov1_fast",
    width_multiplier=1.0,
    depth_multiplier=1.0,
    head=None,
    head_width=None,
    dropout=0.5,
    backbone_weights=None,
    xy_scale=1.0,
    score_threshold=0.6,
    iou_threshold=0.5,
    max_detections=100,
    name="yolo",
    **kwargs,
):
    """Builds a YOLO detector: float32 pixels 0-255 -> raw head tensor.

    Args:
        num_classes: number of object classes.
        input_shape: ``(height, width, 3)``; the paper's 448 x 448.
        grid_size: ``S``; by default ``input size / backbone stride`` (7 for 448 with the
            YOLOv1 nets, stride 64; MobileNets have stride 32; ``darknet_nano`` stride 8).
        boxes_per_cell: ``B``; 2 for the v1 head by default, ``len(anchors)`` with anchors.
        anchors: ``None`` (YOLOv1 head, output ``(S, S, 5B + C)``) or a list of ``(w, h)``
            fractions of the image (anchor head, output ``(S, S, len(anchors), 5 + C)``).
        backbone: ``"yolov1"``, ``"yolov1_fast"``, ``"mobilenet_v2"``, ``"mobilenet_v3_small"``
            or ``"mobilenet_v3_large"``.
        width_multiplier: scales backbone filters and the head width.
        depth_multiplier: scales the backbone's repeated blocks (YOLO nets).
        head: ``None`` (the default: ``"fc"`` for v1, ``"conv"`` with anchors), ``"fc"`` (the
            paper's two fully connected layers, v1 only), ``"conv"`` or ``"decoupled"``
            (anchors only: separate box + objectness and class branches, same output).
        head_width: FC units / head conv filters (defaults scale with ``width_multiplier``).
        dropout: dropout after the first FC layer (paper: 0.5).
        backbone_weights: ``None`` or a local weights file (no downloads).
        xy_scale: centre-offset scale (1: the papers' sigmoid; 2: YOLOv5's), see ``YOLO``.
        score_threshold, iou_threshold, max_detections: the NMS rule of ``predict`` (drop
            ``p <= 0.6``, keep the best, drop ``IoU >= 0.5`` to it; at most 100 per image).
        name: model name.

    Returns:
        A ``YOLO`` task model: ``model(images)`` gives the raw head (see
        ``zoo.detection.model``), ``compile()`` without a loss uses ``model.yolo_loss()``, and
        ``predict(images)`` returns decoded detections in pixels.

    Raises:
        ValueError: on an unknown keyword argument, backbone or head, or a ``grid_size`` that
            does not match the input size and the backbone stride (the message echoes them).

    Example:
        >>> model = build_yolo(3, input_shape=(128, 128, 3), grid_size=2,
        ...                    width_multiplier=0.25)
        >>> model.output_shape
        (None, 2, 2, 13)
        >>> model = build_yolo(3, (96, 96, 3), grid_size=3, backbone="mobilenet_v3_small",
        ...                    anchors=[(0.1, 0.1), (0.4, 0.3)])
        >>> model.output_shape
        (None, 3, 3, 2, 8)
    """
    if kwargs:
        raise ValueError(
            f"build_yolo got unknown arguments {sorted(kwargs)}. Received: "
            + ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
        )
    return YOLO(
        num_classes=num_classes,
        input_shape=input_shape,
        grid_size=grid_size,
        boxes_per_cell=boxes_per_cell,
        anchors=anchors,
        backbone=backbone,
        width_multiplier=width_multiplier,
        depth_multiplier=depth_multiplier,
        head=head,
        head_width=head_width,
        dropout=dropout,
        backbone_weights=backbone_weights,
        xy_scale=xy_scale,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        max_detections=max_detections,
        name=name,
    )
