"""Self-supervised vision: the encoder and the pretext-task models that train it.

``build_ssl_encoder`` maps float32 pixels 0–255 ``(B, H, W, C)`` (``C`` = 1 or 3) to a pooled
feature vector ``(B, D)``; it normalises inside. Its spatial feature map, just before pooling, is
the layer named ``"feature_map"``, so other families can use the encoder as a backbone
(``encoder_feature_map(encoder)``: image -> feature map, sharing the encoder's variables).

``build_pretext_model(encoder, task)`` puts the head of one pretext task on an encoder. The model
calls the SAME encoder object (or its feature-map view, which shares every layer), so training
the pretext model trains the encoder, which is then probed directly. Inputs and targets follow
the pretext transforms of ``zoo.ssl.pretext`` (shapes per example):

==============  ==========================  ===========================  =======================
task            inputs                      outputs (named layer)        target / loss
==============  ==========================  ===========================  =======================
rotation        ``(H, W, C)`` 0–255         ``(4,)`` logits              int k; sparse CE
                                            (``rotation_logits``)
jigsaw          ``(H', W', C)`` 0–255,      ``(num_permutations,)``      int p; sparse CE
                ``H' = 3 (H // 3)``         logits (``jigsaw_logits``)
jigsaw,         ``(9, th, tw, C)`` tiles    same                         same
tiles=True
colorization    ``(H, W, 1)`` L* · 2.55     ``(H, W, 2)`` tanh           ab / 128; MSE / Huber
(regression)                                (``colorization``)
colorization    ``(H, W, 1)``               ``(H, W, Q)`` logits         bin index; sparse CE
(quantized)                                 (``colorization``)
inpainting      ``(H, W, C)`` 0–255, holes  ``(H, W, C)`` sigmoid        concat(clean/255, mask);
                filled                      (``reconstruction``)         masked MSE
denoising       ``(H, W, C)`` 0–255 noisy   ``(H, W, C)`` sigmoid        clean / 255; MSE
                                            (``reconstruction``)
==============  ==========================  ===========================  =======================

(``zoo.ssl.loss.pretext_loss(task)`` returns the matching loss.)

Dense tasks (colorization, inpainting, denoising) use a plain decoder on the ``"feature_map"``
layer: nearest 2x upsampling -> conv3x3-BN-ReLU steps until the map is at least ``H x W``, a
centred crop to ``H x W``, then a 3x3 conv to the output channels. There are no skip connections,
so everything the decoder knows comes through the encoder's bottleneck.

Encoders whose spatial size is ``None`` (``input_shape=(None, None, C)``) accept any image size:
the jigsaw tile tower (``tiles=True``) needs one (or one built at the tile size), and the dense
tasks then need ``input_shape`` passed to ``build_pretext_model``.

Colorization inputs have one channel. Either build the encoder with ``input_shape=(H, W, 1)``
(the colorization papers' setting: the encoder sees the L channel, and is probed on grayscale
images), or pass a 3-channel encoder: the model then repeats the L channel to three channels
(layer ``"gray_to_rgb"``) so the same RGB encoder can be pretrained by colorization and probed on
colour images (it only ever saw gray images in pretraining).

Example:
    >>> encoder = build_ssl_encoder((32, 32, 3))
    >>> rotnet = build_pretext_model(encoder, "rotation")
    >>> rotnet.compile("adam", loss=pretext_loss("rotation"))
    >>> rotnet.fit(rotated_images, quarter_turns, epochs=1)  # then probe encoder(images)

Reference:
    Gidaris et al., "Unsupervised Representation Learning by Predicting Image Rotations",
    ICLR 2018; Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving
    Jigsaw Puzzles", ECCV 2016; Zhang et al., "Colorful Image Colorization", ECCV 2016;
    Pathak et al., "Context Encoders: Feature Learning by Inpainting", CVPR 2016; Vincent et al.,
    "Extracting and Composing Robust Features with Denoising Autoencoders", ICML 2008.
"""

from __future__ import annotations

import math
import os

import keras

from zoo.backbones.cnn import conv_bn_relu
from zoo.ops.checks import check_int

__all__ = [
    "COLORIZATION_MODES",
    "PRETEXT_TASKS",
    "SSL_BACKBONES",
    "build_pretext_model",
    "build_ssl_encoder",
    "encoder_feature_map",
]

SSL_BACKBONES = ("small_cnn", "resnet_small", "mobilenet_v3_small")
PRETEXT_TASKS = ("rotation", "jigsaw", "colorization", "inpainting", "denoising")
COLORIZATION_MODES = ("regression", "quantized")
FEATURE_MAP = "feature_map"
JIGSAW_GRID = 3

# Options each task accepts in build_pretext_model, with their defaults.
_TASK_OPTIONS = {
    "rotation": {"hidden_units": None, "dropout": 0.0},
    "jigsaw": {"num_permutations": 100, "tiles": False, "hidden_units": None, "dropout": 0.0},
    "colorization": {"mode": "regression", "num_bins": None, "decoder_width": 16},
    "inpainting": {"decoder_width": 16},
    "denoising": {"decoder_width": 16},
}


# === Argument checks ===


def _check_input_shape(input_shape, name="input_shape"):
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be (height, width, channels). Received: {name}={input_shape!r}"
        ) from None
    if len(shape) != 3 or shape[-1] not in (1, 3) or any(d is not None and d < 1 for d in shape):
        raise ValueError(
            f"{name} must be (height, width, channels) with channels 1 or 3 and sizes >= 1 "
            f"(or None). Received: {name}={input_shape!r}"
        )
    return shape


def _check_weights(weights):
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise ValueError(
            "weights must be None or the path of a local weights file (nothing is downloaded). "
            f"Received: weights={weights!r}"
        )
    return os.fspath(weights)


# === Backbones ===


def _num_stages(height, width):
    """Stride-2 stages until the map is about 4x4: 3 for 28–32 px, 4 for 64 px (1..4)."""
    sizes = [d for d in (height, width) if d is not None]
    if not sizes:
        return 3  # same architecture as a 28-32 px encoder, so weights are interchangeable
    return int(min(4, max(1, math.ceil(math.log2(max(min(sizes), 4) / 4)))))


def _conv_bn_relu(x, filters, stride, name):
    return conv_bn_relu(x, filters, name, stride=stride)


def _small_cnn(x, width, stages):
    """Stem conv3x3 (``width``), then per stage a stride-2 and a stride-1 conv-BN-ReLU, filters
    ``width * 2**i`` for stage ``i``."""
    x = _conv_bn_relu(x, width, 1, "stem")
    for i in range(stages):
        filters = width * 2**i
        x = _conv_bn_relu(x, filters, 2, f"stage{i + 1}_down")
        x = _conv_bn_relu(x, filters, 1, f"stage{i + 1}_conv")
    return x


def _basic_block(x, filters, stride, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, stride, f"{name}_a")
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_b_bn")(y)
    if stride != 1 or int(shortcut.shape[-1]) != filters:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_proj_conv"
        )(shortcut)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def _resnet_small(x, width, stages):
    """Stem conv3x3, then per stage a stride-2 basic block (projection shortcut) and an identity
    basic block; filters ``width * 2**i`` for stage ``i`` (a ResNet-18 style net, shallower)."""
    x = _conv_bn_relu(x, width, 1, "stem")
    for i in range(stages):
        filters = width * 2**i
        x = _basic_block(x, filters, 2, f"stage{i + 1}_block1")
        x = _basic_block(x, filters, 1, f"stage{i + 1}_block2")
    return x


def build_ssl_encoder(
    input_shape=(32, 32, 3),
    backbone="small_cnn",
    width=32,
    feature_dim=None,
    weights=None,
    name="ssl_encoder",
):
    """The self-supervised encoder: float32 pixels 0–255 -> pooled feature vector ``(B, D)``.

    Backbones (``S`` = stride-2 stages: 3 for 28–32 px, 4 for 64 px and more, 3 when the size is
    ``None``; the feature map is ``ceil(H / 2**S)`` on a side):

    - ``"small_cnn"`` (default): ``Rescaling(1/255)``, a 3x3 conv-BN-ReLU stem, then ``S``
      stages of [3x3 stride-2 conv-BN-ReLU, 3x3 conv-BN-ReLU] with ``width * 2**i`` filters.
      ``D = width * 2**(S-1)`` (128 at 32 px, width 32). Any size from 8 px.
    - ``"resnet_small"``: the same stem and stages made of two basic residual blocks each (the
      first with stride 2 and a 1x1 projection shortcut). Same ``D``.
    - ``"mobilenet_v3_small"``: ``keras.applications.MobileNetV3Small`` without top, via
      ``zoo.backbones.cnn.build_backbone`` (it rescales 0–255 to [-1, 1] itself), alpha =
      ``width / 32`` (width 32 -> 1.0, 24 -> 0.75); stride 32, ``D = 576 * alpha`` (rounded to a
      multiple of 8: 576 at width 32, 432 at 24). Inputs at least
      32x32 (a Keras applications limit; ``None`` sizes are allowed); grayscale input is repeated
      to three channels so ImageNet-shaped weight files load.

    Args:
        input_shape: ``(height, width, channels)``, channels 1 or 3; height / width may be
            ``None`` (any size at call time; pretext models with decoders then need their own
            ``input_shape``).
        backbone: one of ``SSL_BACKBONES``.
        width: int, filters of the stem / first stage (doubled per stage); for MobileNet,
            ``alpha = width / 32``.
        feature_dim: ``None`` (the pooled feature map is the output) or an int: a
            ``Dense(feature_dim)`` projection named ``"projection"`` after pooling.
        weights: ``None`` or a local file: for ``"small_cnn"`` / ``"resnet_small"`` an encoder
            weights file (``encoder.save_weights("x.weights.h5")`` of the same architecture),
            for MobileNet a Keras applications weights file without top.
        name: model name.

    Returns:
        A functional ``keras.Model``: input ``"images"``, output ``(B, D)`` float32 (also under
        mixed precision). The layer ``"feature_map"`` holds the ``(B, h, w, F)`` map before
        global average pooling (layer ``"pool"``).

    Example:
        >>> encoder = build_ssl_encoder((28, 28, 1), width=16)
        >>> encoder.output_shape, encoder.get_layer("feature_map").output.shape
        ((None, 64), (None, 4, 4, 64))
    """
    input_shape = _check_input_shape(input_shape)
    if backbone not in SSL_BACKBONES:
        raise ValueError(
            f"backbone must be one of {SSL_BACKBONES}. Received: backbone={backbone!r}"
        )
    check_int("width", width)
    if feature_dim is not None:
        check_int("feature_dim", feature_dim)
    weights = _check_weights(weights)
    height, width_px, channels = input_shape
    if backbone == "small_cnn" or backbone == "resnet_small":
        small = [d for d in (height, width_px) if d is not None and d < 8]
        if small:
            raise ValueError(
                f"backbone={backbone!r} needs images of at least 8x8. Received: "
                f"input_shape={input_shape!r}"
            )
    else:
        small = [d for d in (height, width_px) if d is not None and d < 32]
        if small:
            raise ValueError(
                "backbone='mobilenet_v3_small' needs images of at least 32x32 (Keras "
                f"applications limit). Received: input_shape={input_shape!r}"
            )

    inputs = keras.Input(input_shape, name="images")
    if backbone == "mobilenet_v3_small":
        from zoo.backbones.cnn import build_backbone

        x = inputs
        if channels == 1:
            x = keras.layers.Concatenate(name="gray_to_rgb")([inputs, inputs, inputs])
        net = build_backbone(
            "mobilenet_v3_small",
            (height, width_px, 3),
            width_multiplier=width / 32.0,
            weights=weights,
        )
        x = net(x)
    else:
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        stages = _num_stages(height, width_px)
        body = _small_cnn if backbone == "small_cnn" else _resnet_small
        x = body(x, width, stages)
    x = keras.layers.Identity(name=FEATURE_MAP)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype="float32", name="pool")(x)
    if feature_dim is not None:
        x = keras.layers.Dense(feature_dim, dtype="float32", name="projection")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None and backbone != "mobilenet_v3_small":
        model.load_weights(weights)
    return model


def encoder_feature_map(encoder):
    """The encoder's image -> ``"feature_map"`` view (same layers, so the same variables).

    Args:
        encoder: a functional ``keras.Model`` with a layer named ``"feature_map"`` (every
            ``build_ssl_encoder`` model has one).

    Returns:
        A functional ``keras.Model`` named ``f"{encoder.name}_feature_map"``: the encoder's
        input -> ``(B, h, w, F)``. Training it (or a model that nests it) trains ``encoder``.

    Example:
        >>> fmap = encoder_feature_map(build_ssl_encoder((32, 32, 3)))
        >>> fmap.output_shape
        (None, 4, 4, 128)
    """
    if not isinstance(encoder, keras.Model) or len(encoder.inputs or ()) != 1:
        raise ValueError(
            f"encoder must be a built single-input functional keras.Model (build_ssl_encoder). "
            f"Received: encoder={encoder!r}"
        )
    try:
        layer = encoder.get_layer(FEATURE_MAP)
    except ValueError:
        raise ValueError(
            f"encoder has no layer named {FEATURE_MAP!r} (build it with build_ssl_encoder). "
            f"Received: encoder={encoder.name!r}"
        ) from None
    return keras.Model(encoder.inputs[0], layer.output, name=f"{encoder.name}_feature_map")


# === Pretext heads ===


def _check_options(task, options):
    allowed = _TASK_OPTIONS[task]
    unknown = sorted(set(options) - set(allowed) - {"name"})
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for task={task!r}; it takes {sorted(allowed)} and "
            f"'name'. Received: {', '.join(f'{k}={options[k]!r}' for k in unknown)}"
        )
    merged = {**allowed, **options}
    if "hidden_units" in allowed and merged["hidden_units"] is not None:
        check_int("hidden_units", merged["hidden_units"])
    if "dropout" in allowed:
        d = merged["dropout"]
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={d!r}")
    if "decoder_width" in allowed:
        check_int("decoder_width", merged["decoder_width"])
    if task == "jigsaw":
        check_int("num_permutations", merged["num_permutations"], minimum=2)
        if not isinstance(merged["tiles"], bool):
            raise ValueError(f"tiles must be True or False. Received: tiles={merged['tiles']!r}")
    if task == "colorization":
        if merged["mode"] not in COLORIZATION_MODES:
            raise ValueError(
                f"mode must be one of {COLORIZATION_MODES}. Received: mode={merged['mode']!r}"
            )
        if merged["mode"] == "quantized":
            if merged["num_bins"] is None:
                raise ValueError(
                    "mode='quantized' needs num_bins (the number of ab bins Q, e.g. "
                    "len(ab_bins(10))). Received: num_bins=None"
                )
            check_int("num_bins", merged["num_bins"], minimum=2)
        elif merged["num_bins"] is not None:
            raise ValueError(
                f"num_bins is only used with mode='quantized'. Received: "
                f"num_bins={merged['num_bins']!r}, mode={merged['mode']!r}"
            )
    return merged


def _encoder_shape(encoder):
    if not isinstance(encoder, keras.Model) or len(encoder.inputs or ()) != 1:
        raise ValueError(
            f"encoder must be a built single-input functional keras.Model (build_ssl_encoder). "
            f"Received: encoder={encoder!r}"
        )
    shape = tuple(encoder.inputs[0].shape[1:])
    if len(shape) != 3:
        raise ValueError(
            f"encoder must take images (height, width, channels). Received: encoder input shape "
            f"{shape!r}"
        )
    return shape


def _fits(encoder_shape, shape):
    """Whether an image of ``shape`` (H, W, C) can be fed to an encoder of ``encoder_shape``."""
    return all(e is None or e == s for e, s in zip(encoder_shape, shape, strict=True))


def _classifier_head(features, num_classes, hidden_units, dropout, prefix):
    x = features
    if hidden_units is not None:
        x = keras.layers.Dense(hidden_units, name=f"{prefix}_hidden")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_hidden_bn")(x)
        x = keras.layers.ReLU(name=f"{prefix}_hidden_relu")(x)
    if dropout:
        x = keras.layers.Dropout(float(dropout), name=f"{prefix}_dropout")(x)
    return keras.layers.Dense(num_classes, dtype="float32", name=f"{prefix}_logits")(x)


def _decoder(x, out_height, out_width, out_channels, activation, width, name):
    """Upsample a feature map ``(h, w, F)`` to ``(out_height, out_width, out_channels)``."""
    h, w, filters_in = (int(d) for d in x.shape[1:])
    steps = max(0, math.ceil(math.log2(out_height / h)), math.ceil(math.log2(out_width / w)))
    for i in range(steps):
        filters = max(width, filters_in // 2 ** (i + 1))
        x = keras.layers.UpSampling2D(2, name=f"decoder_up{i + 1}")(x)
        x = _conv_bn_relu(x, filters, 1, f"decoder{i + 1}")
    extra_h, extra_w = h * 2**steps - out_height, w * 2**steps - out_width
    if extra_h or extra_w:
        x = keras.layers.Cropping2D(
            ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
            name="decoder_crop",
        )(x)
    return keras.layers.Conv2D(
        out_channels, 3, padding="same", activation=activation, dtype="float32", name=name
    )(x)


def _shape_error(task, input_shape, encoder_shape, hint):
    return ValueError(
        f"task={task!r}: pretext inputs of shape {input_shape!r} do not fit the encoder's input "
        f"{encoder_shape!r}; {hint}. Received: input_shape={input_shape!r}"
    )


def build_pretext_model(encoder, task, input_shape=None, **options):
    """The pretext model of ``task`` on top of ``encoder`` (shared weights; see module table).

    Args:
        encoder: a ``build_ssl_encoder`` model (any single-input functional model with a
            ``"feature_map"`` layer works for the dense tasks; any image -> vector model for
            rotation and jigsaw). The model nests this object (or ``encoder_feature_map`` of it),
            so both read and train the same variables.
        task: one of ``PRETEXT_TASKS``.
        input_shape: shape of ONE pretext input, default derived from the encoder's input
            ``(H, W, C)``: ``(H, W, C)`` for rotation, inpainting and denoising; ``(H, W, 1)`` for
            colorization; ``(3 (H // 3), 3 (W // 3), C)`` for jigsaw and ``(9, H, W, C)`` with
            ``tiles=True`` (an encoder built at the tile size). Needed when the encoder's size
            is ``None``, except for rotation and jigsaw without tiles.
        **options: per task (anything else raises):

            - rotation: ``hidden_units=None`` (an extra Dense-BN-ReLU layer), ``dropout=0.0``.
            - jigsaw: ``num_permutations=100`` (must equal the transform's permutation set
              size), ``tiles=False``, ``hidden_units=None``, ``dropout=0.0``. With
              ``tiles=False`` the encoder sees the re-assembled image; a crop smaller than the
              encoder's fixed size by up to 2 pixels (32 -> 30) is zero-padded back, centred.
              With ``tiles=True`` the context-free network (CFN): the encoder runs on each of
              the 9 tiles (one shared tower, ``TimeDistributed``), the 9 feature vectors are
              concatenated, then ``Dense(hidden_units or 256)``-BN-ReLU and the logits. The
              encoder must accept tiles: build it with ``input_shape=(None, None, C)`` (or the
              tile size).
            - colorization: ``mode="regression"`` (``(H, W, 2)`` tanh, ab / 128) or
              ``"quantized"`` (``(H, W, num_bins)`` logits; ``num_bins`` required, e.g.
              ``len(ab_bins(10))``), ``decoder_width=16`` (fewest decoder filters). The encoder
              takes 1 channel, or 3 (the L channel is then repeated; module docstring).
            - inpainting / denoising: ``decoder_width=16``. Output ``(H, W, C)`` sigmoid.
            - every task: ``name`` (default ``f"{task}_pretext"``).

    Returns:
        A functional ``keras.Model``: input ``"pretext_inputs"``, one output (named layer in the
        module table). Compile it with ``zoo.ssl.loss.pretext_loss(task, ...)``.

    Example:
        >>> encoder = build_ssl_encoder((None, None, 3))
        >>> cfn = build_pretext_model(encoder, "jigsaw", input_shape=(9, 10, 10, 3), tiles=True)
        >>> cfn.output_shape
        (None, 100)
    """
    if task not in PRETEXT_TASKS:
        raise ValueError(f"task must be one of {PRETEXT_TASKS}. Received: task={task!r}")
    opts = _check_options(task, options)
    model_name = opts.pop("name", None) or f"{task}_pretext"
    enc_shape = _encoder_shape(encoder)
    height, width, channels = enc_shape

    if task == "jigsaw" and opts["tiles"]:
        return _build_cfn(encoder, enc_shape, input_shape, opts, model_name)

    if input_shape is None:
        if task == "jigsaw":
            input_shape = (
                None if height is None else JIGSAW_GRID * (height // JIGSAW_GRID),
                None if width is None else JIGSAW_GRID * (width // JIGSAW_GRID),
                channels,
            )
        elif task == "colorization":
            input_shape = (height, width, 1)
        else:
            input_shape = enc_shape
    input_shape = _check_input_shape(input_shape)
    if task in ("colorization", "inpainting", "denoising") and None in input_shape[:2]:
        raise ValueError(
            f"task={task!r} has a decoder and needs a fixed image size: pass input_shape=(H, W, "
            f"C) when the encoder's size is None. Received: input_shape={input_shape!r}"
        )
    inputs = keras.Input(input_shape, name="pretext_inputs")
    x = inputs

    if task == "colorization":
        if input_shape[-1] != 1:
            raise ValueError(
                f"colorization inputs have 1 channel (the L channel). Received: "
                f"input_shape={input_shape!r}"
            )
        if channels == 3:
            x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    elif input_shape[-1] != channels:
        raise ValueError(
            f"task={task!r}: input channels {input_shape[-1]} differ from the encoder's "
            f"{channels}. Received: input_shape={input_shape!r}"
        )
    fed_shape = tuple(input_shape[:2]) + (channels,)

    if task == "jigsaw" and not _fits(enc_shape, fed_shape):
        pad_h = (height or 0) - (input_shape[0] or 0)
        pad_w = (width or 0) - (input_shape[1] or 0)
        if None in input_shape[:2] or not (0 <= pad_h <= 2 and 0 <= pad_w <= 2):
            raise _shape_error(
                task,
                input_shape,
                enc_shape,
                "build the encoder at the crop size or with input_shape=(None, None, C)",
            )
        x = keras.layers.ZeroPadding2D(
            ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
            name="jigsaw_pad",
        )(x)
    elif not _fits(enc_shape, fed_shape):
        raise _shape_error(task, input_shape, enc_shape, "build the encoder at that size")

    if task in ("rotation", "jigsaw"):
        num_classes = 4 if task == "rotation" else opts["num_permutations"]
        outputs = _classifier_head(
            encoder(x), num_classes, opts["hidden_units"], opts["dropout"], task
        )
        return keras.Model(inputs, outputs, name=model_name)

    feature_map = encoder_feature_map(encoder)(x)
    if None in feature_map.shape[1:]:
        raise ValueError(
            f"task={task!r}: the encoder's feature map has an unknown size {feature_map.shape}; "
            f"pass a fixed input_shape. Received: input_shape={input_shape!r}"
        )
    out_h, out_w = input_shape[:2]
    if task == "colorization":
        if opts["mode"] == "regression":
            out_channels, activation = 2, "tanh"
        else:
            out_channels, activation = opts["num_bins"], None
        name = "colorization"
    else:
        out_channels, activation, name = channels, "sigmoid", "reconstruction"
    outputs = _decoder(
        feature_map, out_h, out_w, out_channels, activation, opts["decoder_width"], name
    )
    return keras.Model(inputs, outputs, name=model_name)


def _build_cfn(encoder, enc_shape, input_shape, opts, model_name):
    """Jigsaw context-free network: a shared tower on each tile, concatenated, then logits."""
    height, width, channels = enc_shape
    grid = JIGSAW_GRID * JIGSAW_GRID
    if input_shape is None:
        if height is None or width is None:
            raise ValueError(
                "jigsaw with tiles=True and an encoder of size None needs input_shape=(9, th, "
                "tw, C). Received: input_shape=None"
            )
        input_shape = (grid, height, width, channels)
    try:
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        input_shape = ()
    if len(input_shape) != 4 or input_shape[0] != grid:
        raise ValueError(
            f"jigsaw with tiles=True takes inputs (9, tile_height, tile_width, channels). "
            f"Received: input_shape={input_shape!r}"
        )
    tile_shape = _check_input_shape(input_shape[1:], "input_shape[1:]")
    if not _fits(enc_shape, tile_shape):
        raise _shape_error(
            "jigsaw",
            input_shape,
            enc_shape,
            "the tile tower runs the encoder on each tile: build it with input_shape=(None, "
            "None, C) or at the tile size",
        )
    inputs = keras.Input(input_shape, name="pretext_inputs")
    per_tile = keras.layers.TimeDistributed(encoder, name="tile_tower")(inputs)  # (B, 9, D)
    x = keras.layers.Flatten(name="tile_concat")(per_tile)
    outputs = _classifier_head(
        x, opts["num_permutations"], opts["hidden_units"] or 256, opts["dropout"], "jigsaw"
    )
    return keras.Model(inputs, outputs, name=model_name)
