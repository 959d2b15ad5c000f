"""Backbones by name: image (float32 pixels 0-255) -> feature map, with a known stride.

=====================  ======  =====================================================================
name                   stride  network
=====================  ======  =====================================================================
``"yolov1"``           64      the YOLOv1 paper's 24 conv layers (7x7/2, 3x3-192, alternating 1x1
                               reductions and 3x3 layers, 4 max-pools, a 3x3/2): 448 -> 7x7x1024
``"yolov1_fast"``      64      Fast YOLO's idea: 9 conv layers with fewer filters (16 ... 1024),
                               six 2x2 max-pools: 448 -> 7x7x256
``"darknet_nano"``     8       a small modern Darknet for CPUs (the zoo's YOLO default): strided 3x3
                               convs (no full-resolution layer), residual 1x1/3x3 stages at /4, /8,
                               /16 (1, 2, 2 blocks) and one top-down merge (FPN-style: /16 upsampled
                               onto /8), so a stride-8 grid sees small objects and wide context:
                               128 -> 16x16x128 (width 1); ``output_stride=4`` merges once more,
                               onto the /4 stage: 128 -> 32x32x64
``"mobilenet_v2"``     32      ``keras.applications.MobileNetV2`` (no top)
``"mobilenet_v3_small"`` 32    ``keras.applications.MobileNetV3Small`` (no top)
``"mobilenet_v3_large"`` 32    ``keras.applications.MobileNetV3Large`` (no top)
=====================  ======  =====================================================================

Every backbone takes float32 pixels in 0-255 and normalises inside (``Rescaling(1/255)`` for the
YOLO nets, ``[-1, 1]`` for MobileNets). The YOLO nets use conv -> BatchNorm -> LeakyReLU(0.1):
the v1 paper had no batch norm; YOLOv2 added it, and it is what makes these nets train from
scratch at small sizes.

``width_multiplier`` scales every conv's filters (rounded to a multiple of 8, at least 8); for
MobileNets it is the ``alpha`` argument. ``depth_multiplier`` scales the repeated blocks of the
YOLO nets (the paper's 4x and 2x repeated 1x1/3x3 pairs; Fast YOLO's 3x3 layers after the
pyramid), never below one repetition; MobileNets only take 1.0. Keras applications backbones are
built with ``weights=None`` or a local weights file (nothing is downloaded).

Example:
    >>> backbone = build_backbone("yolov1_fast", (448, 448, 3), width_multiplier=0.5)
    >>> backbone.output_shape, BACKBONE_STRIDES["yolov1_fast"]
    ((None, 7, 7, 128), 64)
"""

import math
import os

import keras

__all__ = ["BACKBONES", "BACKBONE_STRIDES", "OUTPUT_STRIDES", "build_backbone", "scale_filters"]

BACKBONE_STRIDES = {
    "yolov1": 64,
    "yolov1_fast": 64,
    "darknet_nano": 8,
    "mobilenet_v2": 32,
    "mobilenet_v3_small": 32,
    "mobilenet_v3_large": 32,
}
BACKBONES = tuple(BACKBONE_STRIDES)
# The strides ``build_backbone(output_stride=...)`` accepts (other backbones: the native one):
# the YOLOv1 nets drop their last down-sampling steps; darknet_nano adds a second top-down merge
# onto its stride-4 stage.
OUTPUT_STRIDES = {
    "yolov1": (8, 16, 32, 64),
    "yolov1_fast": (8, 16, 32, 64),
    "darknet_nano": (4, 8),
}

# The paper's 24 conv layers, Figure 3: (kernel, filters, stride) or "M" (2x2 max-pool) or
# ("repeat", n, [(k, f, s), ...]) for the repeated 1x1-reduction / 3x3 pairs.
_YOLOV1_LAYERS = [
    (7, 64, 2),
    "M",
    (3, 192, 1),
    "M",
    (1, 128, 1),
    (3, 256, 1),
    (1, 256, 1),
    (3, 512, 1),
    "M",
    ("repeat", 4, [(1, 256, 1), (3, 512, 1)]),
    (1, 512, 1),
    (3, 1024, 1),
    "M",
    ("repeat", 2, [(1, 512, 1), (3, 1024, 1)]),
    (3, 1024, 1),
    (3, 1024, 2),
    (3, 1024, 1),
    (3, 1024, 1),
]

# Fast YOLO: 9 conv layers (6 with a max-pool after each, then 3x3-1024 x2 and a 1x1-256).
_YOLOV1_FAST_LAYERS = [
    (3, 16, 1),
    "M",
    (3, 32, 1),
    "M",
    (3, 64, 1),
    "M",
    (3, 128, 1),
    "M",
    (3, 256, 1),
    "M",
    (3, 512, 1),
    "M",
    ("repeat", 2, [(3, 1024, 1)]),
    (1, 256, 1),
]


def scale_filters(filters, width_multiplier, divisor=8):
    """``filters * width_multiplier`` rounded to a multiple of ``divisor`` (at least ``divisor``).

    Args:
        filters: the paper's filter count.
        width_multiplier: float > 0.
        divisor: the multiple to round to.

    Returns:
        An int.

    Example:
        >>> scale_filters(1024, 0.25), scale_filters(16, 0.25)
        (256, 8)
    """
    return max(divisor, int(round(filters * width_multiplier / divisor)) * divisor)


def conv_bn_relu(x, filters, name, suffix="", stride=1, bn_momentum=0.99, bn_epsilon=1e-3):
    """3x3 conv (no bias) -> BatchNormalization -> ReLU, the unit of the zoo's small CNNs.

    Layers are named ``{name}_conv{suffix}``, ``{name}_bn{suffix}`` and ``{name}_relu{suffix}``.
    """
    x = keras.layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv{suffix}"
    )(x)
    x = keras.layers.BatchNormalization(
        momentum=bn_momentum, epsilon=bn_epsilon, name=f"{name}_bn{suffix}"
    )(x)
    return keras.layers.ReLU(name=f"{name}_relu{suffix}")(x)


def _repeats(n, depth_multiplier):
    return max(1, int(math.ceil(n * depth_multiplier)))


def _conv_bn_leaky(x, kernel, filters, stride, name):
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(momentum=0.97, epsilon=1e-3, name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(negative_slope=0.1, name=f"{name}_leaky")(x)


def _yolo_net(inputs, layers, width_multiplier, depth_multiplier, prefix, output_stride=64):
    x = keras.layers.Rescaling(1.0 / 255.0, name=f"{prefix}_rescale")(inputs)
    conv_index, pool_index, stride = 0, 0, 1

    def conv(x, spec):
        nonlocal conv_index, stride
        kernel, filters, conv_stride = spec
        if stride * conv_stride > output_stride:  # past the requested stride: keep resolution
            conv_stride = 1
        stride *= conv_stride
        conv_index += 1
        return _conv_bn_leaky(
            x,
            kernel,
            scale_filters(filters, width_multiplier),
            conv_stride,
            f"{prefix}_{conv_index}",
        )

    for spec in layers:
        if spec == "M":
            if stride * 2 > output_stride:
                continue
            stride *= 2
            pool_index += 1
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool{pool_index}")(x)
        elif spec[0] == "repeat":
            for _ in range(_repeats(spec[1], depth_multiplier)):
                for sub in spec[2]:
                    x = conv(x, sub)
        else:
            x = conv(x, spec)
    return x


def _residual(x, filters, name):
    y = _conv_bn_leaky(x, 1, max(8, filters // 2), 1, f"{name}_a")
    y = _conv_bn_leaky(y, 3, filters, 1, f"{name}_b")
    return keras.layers.Add(name=f"{name}_add")([x, y])


def _nano_net(inputs, width_multiplier, depth_multiplier, output_stride=8, prefix="nano"):
    """Strided-conv Darknet with residual stages and top-down merges to stride 8 (or 4).

    Measured on the 2-core CPU (128x128, 5 anchors, batch 32, forward + backward + YOLO loss):
    147 ms at width 0.25 against 190 ms for ``yolov1_fast`` at stride 16, whose full-resolution
    8-channel first layer alone took a quarter of the step. ``output_stride=4`` repeats the
    merge once more, from the stride-8 output onto the stride-4 stage.
    """
    f = [scale_filters(n, width_multiplier) for n in (32, 64, 128, 256)]
    x = keras.layers.Rescaling(1.0 / 255.0, name=f"{prefix}_rescale")(inputs)
    x = _conv_bn_leaky(x, 3, f[0], 2, f"{prefix}_stem")  # /2
    levels = []
    for stage, (filters, blocks) in enumerate(zip(f[1:], (1, 2, 2), strict=True), start=1):
        x = _conv_bn_leaky(x, 3, filters, 2, f"{prefix}_down{stage}")  # /4, /8, /16
        for block in range(_repeats(blocks, depth_multiplier)):
            x = _residual(x, filters, f"{prefix}_s{stage}_r{block}")
        levels.append(x)
    x = _top_down(levels[-1], levels[-2], f[2], prefix, "")  # /16 -> /8
    if output_stride == 4:
        x = _top_down(x, levels[-3], f[1], prefix, "4")  # /8 -> /4
    return x


def _top_down(deep, lateral, filters, prefix, suffix):
    """FPN-style merge: 1x1 conv of ``deep``, 2x upsampling, concat with ``lateral``, 2 3x3 convs."""
    top = _conv_bn_leaky(deep, 1, filters, 1, f"{prefix}_lateral{suffix}")
    top = keras.layers.UpSampling2D(2, name=f"{prefix}_up{suffix}")(top)
    x = keras.layers.Concatenate(name=f"{prefix}_merge{suffix}")([lateral, top])
    x = _conv_bn_leaky(x, 3, filters, 1, f"{prefix}_out1{suffix}")
    return _conv_bn_leaky(x, 3, filters, 1, f"{prefix}_out2{suffix}")


def _check_weights(weights, name):
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise ValueError(
            f"backbone_weights must be None or the path of a local weights file (nothing is "
            f"downloaded). Received: backbone_weights={weights!r} for backbone={name!r}"
        )
    return os.fspath(weights)


def build_backbone(
    name,
    input_shape,
    width_multiplier=1.0,
    depth_multiplier=1.0,
    weights=None,
    output_stride=None,
):
    """A backbone ``keras.Model``: float32 pixels 0-255 ``(H, W, 3)`` -> features ``(H/s, W/s, F)``.

    Args:
        name: one of ``BACKBONES`` (see the module docstring).
        input_shape: ``(height, width, channels)``.
        width_multiplier: float > 0, scales filters (MobileNet ``alpha``).
        depth_multiplier: float > 0, scales repeated blocks (YOLO nets only; 1.0 for MobileNets).
        weights: ``None`` or a local weights file: for Keras applications passed to the
            application (``weights=path``), for the YOLO nets loaded with ``load_weights``.
        output_stride: ``None`` (the native ``BACKBONE_STRIDES[name]``) or one of
            ``OUTPUT_STRIDES[name]``.

    Returns:
        A functional ``keras.Model`` named ``"backbone"``; its stride is ``output_stride``.

    Example:
        >>> build_backbone("mobilenet_v3_small", (96, 96, 3)).output_shape
        (None, 3, 3, 576)
    """
    if name not in BACKBONE_STRIDES:
        raise ValueError(
            f"Unknown backbone. Expected one of {BACKBONES}. Received: backbone={name!r}"
        )
    for arg, value in (
        ("width_multiplier", width_multiplier),
        ("depth_multiplier", depth_multiplier),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{arg} must be a number > 0. Received: {arg}={value!r}")
    weights = _check_weights(weights, name)
    native = BACKBONE_STRIDES[name]
    if output_stride is None:
        output_stride = native
    allowed = OUTPUT_STRIDES.get(name, (native,))
    if output_stride not in allowed:
        raise ValueError(
            f"backbone={name!r} gives output_stride {' or '.join(map(str, allowed))}. Received: "
            f"output_stride={output_stride!r}"
        )
    input_shape = tuple(input_shape)
    inputs = keras.Input(input_shape, name="images")

    if name in ("yolov1", "yolov1_fast", "darknet_nano"):
        if name == "darknet_nano":
            outputs = _nano_net(inputs, width_multiplier, depth_multiplier, output_stride)
        else:
            layers = _YOLOV1_LAYERS if name == "yolov1" else _YOLOV1_FAST_LAYERS
            outputs = _yolo_net(
                inputs, layers, width_multiplier, depth_multiplier, name, output_stride
            )
        model = keras.Model(inputs, outputs, name="backbone")
        if weights is not None:
            model.load_weights(weights)
        return model

    if depth_multiplier != 1.0:
        raise ValueError(
            f"backbone={name!r} has no depth multiplier; pass depth_multiplier=1.0. Received: "
            f"depth_multiplier={depth_multiplier!r}"
        )
    if name == "mobilenet_v2":
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="mobilenet_rescale")(inputs)
        app = keras.applications.MobileNetV2(
            input_shape=input_shape,
            alpha=float(width_multiplier),
            include_top=False,
            weights=weights,
        )
    else:
        cls = (
            keras.applications.MobileNetV3Small
            if name == "mobilenet_v3_small"
            else keras.applications.MobileNetV3Large
        )
        x = inputs  # MobileNetV3 rescales 0-255 to [-1, 1] itself (include_preprocessing)
        app = cls(
            input_shape=input_shape,
            alpha=float(width_multiplier),
            include_top=False,
            weights=weights,
            include_preprocessing=True,
        )
    return keras.Model(inputs, app(x), name="backbone")
