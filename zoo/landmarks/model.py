"""Landmark model: is the object there, and where are its K points?

``build_landmark_model`` returns a ``LandmarkModel`` (a functional ``keras.Model``) that takes
float32 pixels 0-255 and returns a dict of two named outputs:

- ``presence``: ``(B, 1)`` probability that the object is in the image (sigmoid);
- ``landmarks``: ``(B, K, 2)`` x, y of each landmark as fractions ``[0, 1]`` of the input width
  and height (continuous coordinates: 0 is the left edge of the first pixel, 1 the right edge of
  the last one).

Two heads give the same outputs:

- ``"regression"``: the stride-16 feature map -> 1x1 conv -> flatten -> dense -> ``2K``
  sigmoids (presence + coordinates as numbers);
- ``"heatmap"``: an upsampling path with skip connections back to stride 4 -> one heatmap per
  landmark, decoded by a differentiable soft-argmax (``SoftArgmax2D``: softmax over positions,
  expected cell centre; "integral regression", Sun et al. 2018), so the same loss trains it.

``DEFAULT_HEAD`` holds the head the benchmark (``benchmarks/bench_landmarks.py``) found better.

Backbones: ``"tiny"`` (default: four conv-BN-ReLU stages of two 3x3 convs, filters 16-128, built
for 2-core CPU training and clean int8 export) or any name of ``zoo.backbones.cnn.BACKBONES``
(its last feature map feeds the head; the heatmap head upsamples it without skips).

``LandmarkModel.compile`` takes a ``zoo.landmarks.loss.LandmarkLoss`` (default: Wing) and its
``compute_loss`` gives that loss the whole target dict ``{"presence", "landmarks",
"visibility"}`` and the output dict, so plain ``fit()`` / ``evaluate()`` work.

Example:
    >>> model = build_landmark_model(5, input_shape=(96, 96, 3), head="heatmap")
    >>> out = model(np.zeros((2, 96, 96, 3), "float32"))
    >>> out["presence"].shape, out["landmarks"].shape
    (TensorShape([2, 1]), TensorShape([2, 5, 2]))
"""

import keras
import numpy as np
from keras import ops

from zoo.backbones.cnn import conv_bn_relu
from zoo.landmarks.loss import COORDINATE_LOSSES, LandmarkLoss
from zoo.ops.checks import check_int

HEADS = ("regression", "heatmap")
# The default head: flip this one constant when the benchmark says the other head is better.
DEFAULT_HEAD = "heatmap"
TINY_BACKBONE = "tiny"
_TINY_FILTERS = (16, 32, 64, 128)
# Soft-argmax: probability mass added at the image centre (see SoftArgmax2D), 2 int8 steps.
_PRIOR_MASS = 2.0 / 256.0  # stages at strides 2, 4, 8, 16


def _backbone_names():
    from zoo.backbones.cnn import BACKBONES

    return (TINY_BACKBONE, *BACKBONES)


def _scale(filters, multiplier):
    return max(8, int(round(filters * multiplier / 8)) * 8)


@keras.saving.register_keras_serializable(package="zoo")
class SoftArgmax2D(keras.layers.Layer):
    """Differentiable arg-max of per-channel heatmaps: ``(B, H, W, K)`` logits -> ``(B, K, 2)``.

    For each channel the logits are turned into a distribution over the ``H * W`` cells
    (``softmax(beta * logits)``) and the output is the expected cell centre
    ``x = sum p_ij (j + 0.5) / W``, ``y = sum p_ij (i + 0.5) / H``: normalized ``[0, 1]``
    coordinates, differentiable in the logits. Int8 safety: the sums are divided by the
    probability mass plus a prior mass ``m = 2/256`` placed at the centre,
    ``(sum p g + m / 2) / (sum p + m)``. In float the mass is 1, so this only shrinks the
    range by 0.8 % towards the centre; in an int8 ``.tflite`` the softmax output is rounded to
    multiples of 1/256 and loses mass, and renormalizing removes the resulting pull towards
    the origin (measured on peaked heatmaps: mean int8 error 0.2-0.5 px at 96 px instead of
    0.6-2.8 px), while a flat map (every probability rounded to 0) gives the centre.

    Args:
        beta: inverse temperature applied to the logits.

    Example:
        >>> logits = np.full((1, 4, 4, 1), -50.0, "float32"); logits[0, 1, 3, 0] = 50.0
        >>> SoftArgmax2D()(logits)  # [[[0.875, 0.375]]]

    Reference:
        Sun et al., "Integral Human Pose Regression", ECCV 2018.
    """

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"beta must be a number > 0. Received: beta={beta!r}")
        self.beta = float(beta)

    def call(self, logits):
        height, width, channels = logits.shape[1], logits.shape[2], logits.shape[3]
        ys, xs = np.meshgrid(
            (np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij"
        )
        # (HW, 3): x, y of each cell centre and a column of ones that sums the probabilities
        grid = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=-1).astype("float32")
        x = ops.reshape(logits, (-1, height * width, channels))
        x = ops.transpose(x, (0, 2, 1))  # (B, K, HW): softmax over the last axis
        if self.beta != 1.0:
            x = x * self.beta
        probabilities = ops.softmax(x, axis=-1)
        sums = ops.matmul(probabilities, ops.convert_to_tensor(grid, dtype=probabilities.dtype))
        # Dividing by the probability mass is (almost) the identity in float, where the mass is
        # 1, but an int8 softmax rounds each probability to a multiple of 1/256 and loses mass;
        # without it the int8 points drift towards the origin. The prior weight _PRIOR_MASS at
        # the image centre keeps a flat map (all probabilities rounded to 0) at the centre.
        prior = ops.convert_to_tensor(
            np.array([0.5 * _PRIOR_MASS, 0.5 * _PRIOR_MASS, _PRIOR_MASS], "float32"),
            dtype=sums.dtype,
        )
        sums = sums + prior
        return sums[..., :2] / sums[..., 2:]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3], 2)

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta)
        return config


def _conv_bn_relu(x, filters, stride, name):
    return conv_bn_relu(x, filters, name, stride=stride, bn_momentum=0.97)


def _tiny_backbone(inputs, width_multiplier):
    """Features at strides 4, 8 and 16 of a small conv tower (float32 0-255 input)."""
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    features = {}
    for i, filters in enumerate(_TINY_FILTERS):
        filters = _scale(filters, width_multiplier)
        x = _conv_bn_relu(x, filters, 2, f"stage{i + 1}_down")
        x = _conv_bn_relu(x, filters, 1, f"stage{i + 1}_block")
        features[2 ** (i + 1)] = x
    return features


def _check_loss(loss):
    if loss is None:
        return LandmarkLoss()
    if isinstance(loss, str):
        if loss not in COORDINATE_LOSSES:
            raise ValueError(
                f"loss must be a LandmarkLoss, a callable (y_true, y_pred) -> loss, or one of "
                f"{COORDINATE_LOSSES}. Received: loss={loss!r}"
            )
        return LandmarkLoss(loss)
    if not callable(loss):
        raise ValueError(
            f"loss must be a LandmarkLoss or a callable (y_true, y_pred) -> loss. "
            f"Received: loss={loss!r}"
        )
    return loss


@keras.saving.register_keras_serializable(package="zoo")
class LandmarkModel(keras.Model):
    """Presence + K landmarks (functional model); build it with ``build_landmark_model``.

    Every constructor argument is kept as an attribute and returned by ``get_config``, so
    ``.keras`` files round-trip (compiled loss included).

    Args:
        num_landmarks: ``K``.
        input_shape: ``(height, width, 3)`` of the float32 0-255 input.
        backbone: ``"tiny"`` or a name of ``zoo.backbones.cnn.BACKBONES``.
        head: ``"regression"`` or ``"heatmap"``.
        width_multiplier: scales the filters of the backbone and head.
        heatmap_stride: heatmap head: the heatmaps are ``input / heatmap_stride`` cells a side
            (4 or 8 with the tiny backbone).
        hidden_units: regression head: units of its hidden dense layer.
        dropout: regression head: dropout before the output layer.
        backbone_weights: local weights file for a named backbone (not stored in the config).
        name: model name.
    """

    def __init__(
        self,
        num_landmarks,
        input_shape=(96, 96, 3),
        backbone=TINY_BACKBONE,
        head=DEFAULT_HEAD,
        width_multiplier=1.0,
        heatmap_stride=4,
        hidden_units=256,
        dropout=0.1,
        backbone_weights=None,
        name="landmark_model",
        **kwargs,
    ):
        # === Arguments ===
        unknown = sorted(set(kwargs) - {"trainable", "dtype"})
        if unknown:
            raise TypeError(f"Unknown arguments for the landmark model: {unknown}")
        num_landmarks = check_int("num_landmarks", num_landmarks)
        try:
            input_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"input_shape must be (height, width, 3). Received: input_shape={input_shape!r}"
            ) from None
        if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 16:
            raise ValueError(
                f"input_shape must be (height, width, 3) with height, width >= 16. "
                f"Received: input_shape={input_shape!r}"
            )
        names = _backbone_names()
        if backbone not in names:
            raise ValueError(f"backbone must be one of {names}. Received: backbone={backbone!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}. Received: head={head!r}")
        if (
            isinstance(width_multiplier, bool)
            or not isinstance(width_multiplier, (int, float))
            or not width_multiplier > 0
        ):
            raise ValueError(
                f"width_multiplier must be a number > 0. Received: "
                f"width_multiplier={width_multiplier!r}"
            )
        heatmap_stride = check_int("heatmap_stride", heatmap_stride)
        if heatmap_stride not in (1, 2, 4, 8, 16):
            raise ValueError(
                f"heatmap_stride must be 1, 2, 4, 8 or 16. Received: heatmap_stride={heatmap_stride}"
            )
        height, width = input_shape[:2]
        if height % 16 or width % 16:
            raise ValueError(
                f"input height and width must be multiples of 16 (the head works at stride 16). "
                f"Received: input_shape={input_shape}"
            )
        hidden_units = check_int("hidden_units", hidden_units)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0 <= dropout < 1
        ):
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
        if backbone_weights is not None and backbone == TINY_BACKBONE:
            raise ValueError(
                "backbone_weights is for a named backbone from zoo.backbones.cnn; the tiny "
                "backbone is trained with the model. Received: backbone_weights="
                f"{backbone_weights!r}"
            )

        # === Functional Model ===
        inputs = keras.Input(input_shape, name="images")
        if backbone == TINY_BACKBONE:
            features = _tiny_backbone(inputs, width_multiplier)
        else:
            from zoo.backbones.cnn import BACKBONE_STRIDES, build_backbone

            net = build_backbone(backbone, input_shape, width_multiplier, weights=backbone_weights)
            features = {BACKBONE_STRIDES[backbone]: net(inputs)}
        deepest = max(features)
        top = features[deepest]

        pooled = keras.layers.GlobalAveragePooling2D(name="presence_pool")(top)
        presence = keras.layers.Dense(1, activation="sigmoid", name="presence")(pooled)

        K = num_landmarks
        if head == "regression":
            x = keras.layers.Conv2D(
                _scale(32, width_multiplier), 1, use_bias=False, name="reg_reduce_conv"
            )(top)
            x = keras.layers.BatchNormalization(momentum=0.97, epsilon=1e-3, name="reg_reduce_bn")(
                x
            )
            x = keras.layers.ReLU(name="reg_reduce_relu")(x)
            x = keras.layers.Flatten(name="reg_flatten")(x)
            x = keras.layers.Dense(hidden_units, activation="relu", name="reg_hidden")(x)
            x = keras.layers.Dropout(dropout, name="reg_dropout")(x)
            x = keras.layers.Dense(2 * K, activation="sigmoid", name="reg_output")(x)
            landmarks = keras.layers.Reshape((K, 2), name="landmarks")(x)
        else:
            x, stride = top, deepest
            while stride > heatmap_stride:
                stride //= 2
                x = keras.layers.UpSampling2D(2, name=f"hm_up{stride}")(x)
                if stride in features:
                    x = keras.layers.Concatenate(name=f"hm_skip{stride}")([x, features[stride]])
                filters = _scale(max(16, 8 * stride), width_multiplier)
                x = _conv_bn_relu(x, filters, 1, f"hm_s{stride}")
            logits = keras.layers.Conv2D(K, 1, name="hm_logits")(x)
            landmarks = SoftArgmax2D(name="landmarks")(logits)
        super().__init__(
            inputs=inputs,
            outputs={"presence": presence, "landmarks": landmarks},
            name=name,
            **kwargs,
        )

        # === Config ===
        self.num_landmarks = num_landmarks
        self.image_shape = input_shape
        self.backbone_name = backbone
        self.head = head
        self.width_multiplier = width_multiplier
        self.heatmap_stride = heatmap_stride
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.landmark_loss = None

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_landmarks": self.num_landmarks,
            "input_shape": list(self.image_shape),
            "backbone": self.backbone_name,
            "head": self.head,
            "width_multiplier": self.width_multiplier,
            "heatmap_stride": self.heatmap_stride,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # === Training ===
    def compile(self, optimizer="adam", loss=None, **kwargs):
        """``keras.Model.compile`` with a landmark loss.

        Args:
            optimizer: as ``keras.Model.compile``.
            loss: a ``LandmarkLoss`` (default ``LandmarkLoss()``: Wing), one of ``"l2"``,
                ``"l1"``, ``"wing"``, or any callable ``(y_true, y_pred[, sample_weight])``
                taking the target and output dicts.
            **kwargs: the other ``keras.Model.compile`` arguments (``metrics`` see the dict
                outputs).
        """
        if kwargs.get("loss_weights") is not None:
            raise ValueError(
                "loss_weights is not used by the landmark model; set presence_weight / "
                "coordinate_weight on the LandmarkLoss."
            )
        self.landmark_loss = _check_loss(loss)
        super().compile(optimizer=optimizer, loss=None, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.landmark_loss is None or y is None:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        if not isinstance(y, dict) or "presence" not in y or "landmarks" not in y:
            raise ValueError(
                "The landmark model trains on targets {'presence': (B,), 'landmarks': (B, K, 2), "
                f"'visibility': (B, K)}}. Received: y={y!r}"
            )
        loss = self.landmark_loss(y, y_pred, sample_weight=sample_weight)
        if self.losses:
            loss = loss + ops.sum(ops.stack(self.losses))
        return loss

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and self.landmark_loss is not None:
            config["loss"] = keras.saving.serialize_keras_object(self.landmark_loss)
        return config

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def predict_step(self, data):
        """What a user wants from ``predict``: ``{"presence": (B,) probability, "landmarks":
        (B, K, 2) x, y in pixels of the model input}``; ``model(images)`` still returns the
        raw ``[0, 1]`` coordinates the loss trains on."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return serving_outputs_fn(self.image_shape[:2])(self(x, training=False), None)


def build_landmark_model(
    num_landmarks,
    input_shape=(96, 96, 3),
    backbone=TINY_BACKBONE,
    head=DEFAULT_HEAD,
    width_multiplier=1.0,
    heatmap_stride=4,
    hidden_units=256,
    dropout=0.1,
    backbone_weights=None,
    name="landmark_model",
    **kwargs,
):
    """A landmark model: images -> ``{"presence": (B, 1), "landmarks": (B, K, 2)}``.

    Args:
        num_landmarks: ``K``, the number of points.
        input_shape: ``(height, width, 3)``, multiples of 16; float32 pixels 0-255.
        backbone: ``"tiny"`` (default) or a name of ``zoo.backbones.cnn.BACKBONES``
            (e.g. ``"mobilenet_v3_small"``).
        head: ``"regression"`` or ``"heatmap"`` (default ``DEFAULT_HEAD``).
        width_multiplier: scales filters of backbone and head.
        heatmap_stride: heatmap cells are this many input pixels a side.
        hidden_units: hidden dense units of the regression head.
        dropout: dropout of the regression head.
        backbone_weights: local weights file for a named backbone.
        name: model name.
        **kwargs: unknown keywords raise (``keras.Model`` keywords pass through).

    Returns:
        A ``LandmarkModel``; compile it with a ``LandmarkLoss`` and fit on
        ``(images, {"presence", "landmarks", "visibility"})`` batches.

    Example:
    ```python
    model = build_landmark_model(5, head="regression")
    model.compile(keras.optimizers.Adam(1e-3), LandmarkLoss("wing"))
    model.fit(train_batches, epochs=10)
    ```
    """
    return LandmarkModel(
        num_landmarks,
        input_shape=input_shape,
        backbone=backbone,
        head=head,
        width_multiplier=width_multiplier,
        heatmap_stride=heatmap_stride,
        hidden_units=hidden_units,
        dropout=dropout,
        backbone_weights=backbone_weights,
        name=name,
        **kwargs,
    )


# === Serving ===


def serving_outputs_fn(input_size):
    """``outputs_fn`` for ``zoo.export``: presence ``(B,)`` and landmarks in input pixels.

    Args:
        input_size: ``(height, width)`` of the model input, used when the export passes no
            image shapes (``.tflite``: the input is the model size).

    Returns:
        ``fn(outputs, image_shapes) -> {"presence": (B,), "landmarks": (B, K, 2)}`` where the
        landmarks are x, y in pixels of the image the client sent (``image_shapes`` holds each
        image's height and width before the in-graph resize), continuous coordinates.

    Example:
        >>> export_saved_model(model, "saved_models", "faces", outputs_fn=serving_outputs_fn(
        ...     model.image_shape[:2]))
    """
    height, width = int(input_size[0]), int(input_size[1])

    def fn(outputs, image_shapes):
        presence = ops.reshape(outputs["presence"], (-1,))
        landmarks = outputs["landmarks"]
        if image_shapes is None:
            scale = ops.convert_to_tensor(np.array([width, height], "float32"))
        else:
            scale = ops.cast(ops.flip(image_shapes, axis=-1), landmarks.dtype)[:, None, :]
        return {"presence": presence, "landmarks": landmarks * scale}

    return fn


def pixel_landmark_model(model):
    """A functional wrapper returning what the export signatures return at the model's size.

    Args:
        model: a landmark model (dict outputs ``presence``, ``landmarks``).

    Returns:
        A ``keras.Model``: images -> ``{"presence": (B,), "landmarks": (B, K, 2) pixels}``;
        the reference that ``zoo.export.verify_export`` compares the artifacts with.
    """
    shape = tuple(model.input_shape[1:])
    inputs = keras.Input(shape, name="images")
    outputs = serving_outputs_fn(shape[:2])(model(inputs), None)
    return keras.Model(inputs, outputs, name=f"{model.name}_pixels")
