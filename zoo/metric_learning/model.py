"""Metric-learning models: the embedding tower, Siamese (pairs), triplet and two-tower networks.

``build_embedding_model`` is the tower: float32 pixels 0–255 (or feature vectors for
``backbone="mlp"``) → an embedding, L2-normalised by default. ``build_siamese`` and
``build_triplet`` run two or three inputs through ONE encoder (the same layer object, so the
branches share every variable), and ``build_two_tower`` joins two encoders — the same or different
networks, e.g. for two domains or modalities — each projected into one shared space.

==================  =========================================  =================================
builder             inputs                                     outputs (dict)
==================  =========================================  =================================
siamese             ``input_a``, ``input_b``                   ``distance (B,)``,
                                                               ``embeddings (B, 2, D)``
triplet             ``anchor``, ``positive``, ``negative``     ``embeddings (B, 3, D)``,
                                                               ``distances (B, 2)`` = d(a,p), d(a,n)
two-tower           ``input_a``, ``input_b``                   ``distance (B,)``,
                                                               ``embeddings (B, 2, P)``
==================  =========================================  =================================

Train them with the losses in ``zoo.metric_learning.loss``: ``ContrastiveLoss`` on the Siamese
``distance`` (or on the ``embeddings`` pair), ``TripletMarginLoss`` on the triplet ``embeddings``,
or ``TripletLoss`` with online mining directly on the tower. After training, serve the tower alone
(``siamese.get_layer(encoder.name)``, ``two_tower.get_layer("tower_a")``): it maps one input to
its embedding.

Example:
    >>> encoder = build_embedding_model((28, 28, 1), embedding_dim=64)
    >>> siamese = build_siamese(encoder)
    >>> siamese.compile("adam", loss={"distance": ContrastiveLoss(margin=1.0)})
"""

from __future__ import annotations

import keras

from zoo.backbones.cnn import conv_bn_relu
from zoo.backbones.towers import (
    PairDistance,
    StackEmbeddings,
    build_two_tower,
    encoder_input,
    shared_encoder_call,
)
from zoo.ops.checks import check_int
from zoo.ops.distances import DISTANCES

__all__ = [
    "DEFAULT_READOUT_LAYER",
    "EMBEDDING_BACKBONES",
    "PairDistance",
    "StackEmbeddings",
    "build_embedding_model",
    "build_siamese",
    "build_triplet",
    "build_two_tower",
    "feature_readout",
]

# Backbones built here; any name of ``zoo.backbones.cnn.BACKBONES`` works too.
EMBEDDING_BACKBONES = ("small_cnn", "mlp")
# The second block of ``small_cnn`` (14 x 14 x 32 on 28 px): the map ``feature_readout`` reads.
DEFAULT_READOUT_LAYER = "cnn_relu1_1"


# === Layers ===


def _small_cnn(x, width, name):
    """Conv(3x3)-BN-ReLU pairs with max-pooling, sized for 8–64 pixel images."""
    size = min(int(x.shape[1]), int(x.shape[2]))
    filters = width
    block = 0
    while True:
        for j in range(2):
            x = conv_bn_relu(x, filters, name, suffix=f"{block}_{j}")
        block += 1
        if size < 8 or block == 4:
            break
        x = keras.layers.MaxPooling2D(name=f"{name}_pool{block}")(x)
        size //= 2
        filters *= 2
    return keras.layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)


def _mlp(x, width, name):
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    for i in range(2):
        x = keras.layers.Dense(width * 8, name=f"{name}_dense{i}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_embedding_model(
    input_shape,
    embedding_dim=128,
    backbone="small_cnn",
    normalize=True,
    width=32,
    dropout=0.0,
    backbone_kwargs=None,
    name="embedding_model",
):
    """The embedding tower: one input → a (unit-norm) embedding.

    Args:
        input_shape: ``(height, width, channels)`` of images (float32 pixels 0–255, normalised
            inside), or ``(features,)`` for ``backbone="mlp"``.
        embedding_dim: size of the embedding.
        backbone: ``"small_cnn"`` (default: conv-BN-ReLU pairs with max-pooling, 2–4 blocks by
            image size; suits 8–64 pixel images such as Fashion-MNIST and digits), ``"mlp"`` (two
            dense layers, for vectors; images are flattened), a name of
            ``zoo.backbones.cnn.BACKBONES`` (e.g. ``"mobilenet_v3_small"``; grayscale input is
            repeated to 3 channels) or a ``keras.Model`` mapping the input to features.
        normalize: L2-normalise the embedding (``UnitNormalization``), as FaceNet.
        width: filters of the first ``small_cnn`` block (doubled per block); ``mlp`` uses
            ``8 * width`` units.
        dropout: dropout rate before the embedding layer.
        backbone_kwargs: extra arguments of ``zoo.backbones.cnn.build_backbone``.
        name: model name.

    Returns:
        A functional ``keras.Model``: input ``"images"`` (``"features"`` for vectors), output
        ``(B, embedding_dim)`` float32 (also under mixed precision).

    Example:
        >>> model = build_embedding_model((28, 28, 1), embedding_dim=64)
        >>> model.output_shape
        (None, 64)
    """
    input_shape = tuple(int(d) for d in input_shape)
    check_int("embedding_dim", embedding_dim)
    check_int("width", width)
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    is_image = len(input_shape) == 3
    if not is_image and len(input_shape) != 1:
        raise ValueError(
            "input_shape must be (height, width, channels) or (features,). Received: "
            f"input_shape={input_shape!r}"
        )
    if backbone_kwargs and not isinstance(backbone, str):
        raise ValueError("backbone_kwargs only apply to a backbone given by name.")
    inputs = keras.Input(input_shape, name="images" if is_image else "features")

    if isinstance(backbone, keras.Model):
        features = backbone(inputs)
        if len(features.shape) == 4:
            features = keras.layers.GlobalAveragePooling2D(name="gap")(features)
        elif len(features.shape) != 2:
            features = keras.layers.Flatten(name="flatten")(features)
    elif backbone == "mlp":
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs) if is_image else inputs
        features = _mlp(x, width, "mlp")
    elif backbone == "small_cnn":
        if not is_image:
            raise ValueError(
                f"backbone='small_cnn' needs an image input_shape (H, W, C). Received: "
                f"input_shape={input_shape!r}; use backbone='mlp' for vectors."
            )
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        features = _small_cnn(x, width, "cnn")
    else:
        from zoo.backbones.cnn import BACKBONES, build_backbone

        if backbone not in BACKBONES:
            raise ValueError(
                f"backbone must be one of {EMBEDDING_BACKBONES + tuple(BACKBONES)} or a "
                f"keras.Model. Received: backbone={backbone!r}"
            )
        if not is_image:
            raise ValueError(f"backbone={backbone!r} needs an image input_shape (H, W, C).")
        x = inputs
        if input_shape[-1] == 1:
            x = keras.layers.Concatenate(name="gray_to_rgb")([inputs, inputs, inputs])
        net = build_backbone(backbone, input_shape[:2] + (3,), **dict(backbone_kwargs or {}))
        features = keras.layers.GlobalAveragePooling2D(name="gap")(net(x))

    if dropout:
        features = keras.layers.Dropout(float(dropout), name="dropout")(features)
    x = keras.layers.Dense(embedding_dim, dtype="float32", name="embedding")(features)
    if normalize:
        x = keras.layers.UnitNormalization(axis=-1, dtype="float32", name="l2_normalize")(x)
    return keras.Model(inputs, x, name=name)


def build_siamese(encoder, distance="l2", name="siamese"):
    """Two inputs through ONE encoder (shared weights) and the distance between the embeddings.

    Args:
        encoder: a single-input ``keras.Model`` (the tower); it is used as one layer, so both
            branches read and train the same variables, in one call on the joined batch
            (``shared_encoder_call``: BatchNormalization sees both branches' statistics).
        distance: ``"l2"`` (default; what ``ContrastiveLoss`` expects as ``D``), ``"squared_l2"``
            or ``"cosine"``.
        name: model name.

    Returns:
        A functional ``keras.Model`` with inputs ``{"input_a", "input_b"}`` and outputs
        ``{"distance": (B,), "embeddings": (B, 2, D)}``.

    Example:
        >>> siamese = build_siamese(build_embedding_model((28, 28, 1)))
        >>> siamese.compile("adam", loss={"distance": ContrastiveLoss()})
        >>> siamese.fit({"input_a": xa, "input_b": xb}, {"distance": y})  # y = 0: similar
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}. Received: distance={distance!r}")
    a = encoder_input(encoder, "input_a")
    b = encoder_input(encoder, "input_b")
    ea, eb = shared_encoder_call(encoder, [a, b], name="pair")
    outputs = {
        "distance": PairDistance(distance, name="distance")([ea, eb]),
        "embeddings": StackEmbeddings(name="embeddings")([ea, eb]),
    }
    return keras.Model({"input_a": a, "input_b": b}, outputs, name=name)


def build_triplet(encoder, distance="squared_l2", name="triplet"):
    """Anchor, positive and negative through ONE encoder (shared weights), in one call.

    The three batches go through the encoder joined (``shared_encoder_call``), so in training
    its BatchNormalization layers see the statistics of all three, not one per branch.

    Args:
        encoder: a single-input ``keras.Model``.
        distance: distance of the ``distances`` output (``"squared_l2"``, the triplet formula's).
        name: model name.

    Returns:
        A functional ``keras.Model`` with inputs ``{"anchor", "positive", "negative"}`` and
        outputs ``{"embeddings": (B, 3, D), "distances": (B, 2)}`` (``d(a, p)``, ``d(a, n)``).

    Example:
        >>> triplet = build_triplet(encoder)
        >>> triplet.compile("adam", loss={"embeddings": TripletMarginLoss(margin=0.2)})
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}. Received: distance={distance!r}")
    inputs = {k: encoder_input(encoder, k) for k in ("anchor", "positive", "negative")}
    ea, ep, en = shared_encoder_call(
        encoder, [inputs[k] for k in ("anchor", "positive", "negative")], name="triplet"
    )
    d_ap = PairDistance(distance, name="d_ap")([ea, ep])
    d_an = PairDistance(distance, name="d_an")([ea, en])
    outputs = {
        "embeddings": StackEmbeddings(name="embeddings")([ea, ep, en]),
        "distances": StackEmbeddings(axis=-1, name="distances")([d_ap, d_an]),
    }
    return keras.Model(inputs, outputs, name=name)


def feature_readout(encoder, layer=DEFAULT_READOUT_LAYER, name=None):
    """Images → the flattened, L2-normalised feature map of one of ``encoder``'s layers.

    For retrieval among classes the tower never trained on. Pooling and the learned projection
    to the embedding keep what separates the training classes; an inner feature map keeps the
    layout as raw pixels do, and its trained filters transfer. Fashion-MNIST, a width-16
    ``small_cnn`` trained (semi-hard) on classes 0–4, recall@1 on classes 5–9: embedding 0.897,
    ``"cnn_relu1_1"`` (the second block, 14 × 14 × 32) 0.979, raw pixels 0.940.

    Args:
        encoder: a functional embedding tower (``build_embedding_model``).
        layer: the layer whose output is read; ``"cnn_relu1_1"`` is the second block of the
            ``small_cnn`` backbone (``cnn_relu0_1`` the first, ``cnn_relu2_1`` the third).
        name: model name (default ``encoder.name + "_readout"``).

    Returns:
        A functional ``keras.Model`` sharing ``encoder``'s weights: images → ``(B, H·W·C)``
        float32 unit vectors.

    Example:
        >>> readout = feature_readout(build_embedding_model((28, 28, 1), width=16))
        >>> readout.output_shape
        (None, 6272)
    """
    names = [item.name for item in encoder.layers]
    if layer not in names:
        raise ValueError(
            f"layer must name a layer of {encoder.name!r}. Received: layer={layer!r}; "
            f"layers: {names}"
        )
    x = keras.layers.Flatten(name="readout_flatten")(encoder.get_layer(layer).output)
    x = keras.layers.UnitNormalization(axis=-1, dtype="float32", name="readout_l2")(x)
    return keras.Model(encoder.input, x, name=name or f"{encoder.name}_readout")
