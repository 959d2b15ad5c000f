"""CLIP-style contrastive models: two towers, a learnable temperature and the symmetric InfoNCE.

``build_clip`` joins two encoders with ``build_two_tower`` (each tower = encoder → ``Dense``
projection → L2 norm, sub-models ``"tower_a"`` / ``"tower_b"``), and adds a ``CLIPLogits`` layer
holding the learnable ``logit_scale`` (log of the inverse temperature, initialised to
log(1 / 0.07) as in CLIP, scale capped at 100). The model outputs the ``(B, B)`` logit matrix,
trained with ``zoo.multimodal.CLIPLoss`` (the loss stays visible in ``compile``), and the stacked
embeddings. Towers share nothing unless the same encoder is passed twice (then the encoder is
shared and only the projections differ).

Encoders per modality (all take what ``zoo.multimodal.data`` produces):

==========================  ==========================  ======================================
builder                     input                       network
==========================  ==========================  ======================================
``build_image_encoder``     float32 pixels 0–255        conv-BN-ReLU pairs + max-pool down to
                            ``(H, W, 3)``, "images"     4×4, flatten (keeps where things are),
                                                        dense
``build_caption_encoder``      int32 token ids ``(L,)``,   embedding, 1-D convs (or none), mean
                            0 = padding, "tokens"       over the non-padding tokens, dense
``build_audio_encoder``     float32 log-mel             conv-BN-ReLU pairs over (time, mel),
                            ``(T, M, C)``, "spectrograms"  flatten (keeps the frequency), dense
==========================  ==========================  ======================================

Helpers: ``embed`` (a tower over an array in batches), ``zero_shot_classify`` (nearest class
prompt), ``class_prototypes`` and ``classify_by_prototypes`` (zero-shot through another
modality's labelled examples), ``zoo.multimodal.metrics.cross_modal_recall_at_k`` (both directions) and
``zoo.multimodal.metrics.similarity_matrix_plot`` (PNG).

Example:
    >>> image_encoder = build_image_encoder((32, 32, 3))
    >>> text_encoder = build_caption_encoder(vocabulary_size=45, max_length=16)
    >>> model = build_clip(image_encoder, text_encoder, projection_dim=64)
    >>> model.compile("adam", loss={"logits": CLIPLoss()})
    >>> image_tower, text_tower = model.get_layer("tower_a"), model.get_layer("tower_b")
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from zoo.backbones.cnn import conv_bn_relu
from zoo.backbones.towers import StackEmbeddings, build_two_tower
from zoo.multimodal.loss import DEFAULT_LOGIT_SCALE, MAX_LOGIT_SCALE, clip_logits
from zoo.ops.checks import check_int
from zoo.ops.distances import unit_rows

__all__ = [
    "CLIPLogits",
    "MaskedMeanPooling",
    "SpecAugment",
    "build_audio_encoder",
    "build_clip",
    "build_image_encoder",
    "build_caption_encoder",
    "class_prototypes",
    "classify_by_prototypes",
    "embed",
    "knn_classify",
    "zero_shot_classify",
]

TEXT_POOLINGS = ("conv", "mean")
# Batch-norm moving averages track the weights within ~10 steps instead of ~100 (Keras's 0.99):
# contrastive runs of a few hundred steps change the conv scales fast, and with 0.99 the
# inference-mode statistics were seen to lag far behind (recall near chance at inference while
# the training-mode loss was low).
_BN_MOMENTUM = 0.9


# === Layers ===


@keras.saving.register_keras_serializable(package="zoo")
class CLIPLogits(keras.layers.Layer):
    """Scaled cosine-similarity logits with a learnable temperature.

    Holds one scalar weight ``logit_scale`` (log of the inverse temperature) and returns
    ``min(exp(logit_scale), max_scale) · a bᵀ`` (float32), as ``zoo.multimodal.loss.clip_logits``.

    Args:
        initial_logit_scale: initial value (default log(1 / 0.07), CLIP's).
        max_scale: cap of ``exp(logit_scale)`` (100 in CLIP; ``None``: no cap).
        learnable: train the temperature (False keeps it fixed).

    Call:
        ``layer([a, b])`` with ``a``: ``(B, D)``, ``b``: ``(B', D)`` → ``(B, B')``.

    Example:
        >>> layer = CLIPLogits()
        >>> layer([ops.eye(2), ops.eye(2)])   # [[14.29, 0], [0, 14.29]]
    """

    def __init__(
        self,
        initial_logit_scale=DEFAULT_LOGIT_SCALE,
        max_scale=MAX_LOGIT_SCALE,
        learnable=True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.initial_logit_scale = float(initial_logit_scale)
        if max_scale is not None and not float(max_scale) > 0:
            raise ValueError(f"max_scale must be > 0 or None. Received: max_scale={max_scale!r}")
        self.max_scale = None if max_scale is None else float(max_scale)
        self.learnable = bool(learnable)
        self.logit_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_logit_scale),
            trainable=self.learnable,
            name="logit_scale",
        )

    def call(self, inputs):
        a, b = inputs
        return clip_logits(a, b, self.logit_scale, self.max_scale)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[1][0])

    def get_config(self):
        config = super().get_config()
        config.update(
            initial_logit_scale=self.initial_logit_scale,
            max_scale=self.max_scale,
            learnable=self.learnable,
        )
        return config


@keras.saving.register_keras_serializable(package="zoo")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of token features over the non-padding positions (token id != ``padding_id``).

    Call:
        ``layer([features, token_ids])`` with ``features`` ``(B, L, D)`` and ``token_ids``
        ``(B, L)`` → ``(B, D)``; an all-padding row gives zeros.

    Example:
        >>> MaskedMeanPooling()([ops.ones((1, 3, 2)), ops.array([[5, 7, 0]])])   # [[1., 1.]]
    """

    def __init__(self, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        self.padding_id = int(padding_id)

    def call(self, inputs):
        features, ids = inputs
        mask = ops.cast(ops.not_equal(ids, self.padding_id), features.dtype)[..., None]
        total = ops.sum(features * mask, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1), 1.0)
        return total / count

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][-1])

    def get_config(self):
        config = super().get_config()
        config.update(padding_id=self.padding_id)
        return config


@keras.saving.register_keras_serializable(package="zoo")
class SpecAugment(keras.layers.Layer):
    """Training-time masks and a mel shift of log-mel spectrograms (identity at inference).

    Per example, while ``training``: one band of up to ``freq_mask`` mel bins and one span of
    up to ``time_mask`` frames set to 0 (the mean of a normalised log-mel), and the mel axis
    shifted by a whole number of bins in ``[-mel_shift, mel_shift]`` (edge bins repeated), a
    crude change of vocal-tract length, i.e. of voice. The defaults are the mel shift alone:
    on spoken captions (500 steps, unseen voices) masks (3 bins and 6 frames: speech → image
    recall@1 0.160; 8 and 20: 0.022) hid whole words the contrastive pairs depend on, and the
    shift alone gave 0.338 and 0.238 in two runs against 0.318 without augmentation.

    Args:
        freq_mask: widest frequency band masked (0: none).
        time_mask: longest time span masked (0: none).
        mel_shift: largest shift of the mel axis in bins (0: none).
        seed: seed of the random draws.

    Call:
        ``layer(spectrograms, training=...)``: float32 ``(B, frames, mel bins, channels)`` →
        the same shape.

    Reference:
        Park et al., "SpecAugment: A Simple Data Augmentation Method for Automatic Speech
        Recognition", Interspeech 2019.
    """

    def __init__(self, freq_mask=0, time_mask=0, mel_shift=2, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("freq_mask", freq_mask), ("time_mask", time_mask)):
            check_int(name, value, minimum=0)
        check_int("mel_shift", mel_shift, minimum=0)
        self.freq_mask, self.time_mask = int(freq_mask), int(time_mask)
        self.mel_shift, self.seed = int(mel_shift), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _band(self, batch, length, width, axis_shape):
        """A 0/1 mask keeping all but one random band of up to ``width`` along an axis."""
        draws = keras.random.uniform((batch, 2), seed=self.seed_generator)
        size = ops.floor(draws[:, :1] * (width + 1))
        start = ops.floor(draws[:, 1:] * (length - size + 1))
        index = ops.arange(length, dtype="float32")[None, :]
        keep = ops.logical_or(index < start, index >= start + size)
        return ops.reshape(ops.cast(keep, "float32"), axis_shape)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        x = ops.convert_to_tensor(inputs, "float32")
        batch = ops.shape(x)[0]
        frames, bins = int(x.shape[1]), int(x.shape[2])
        if self.mel_shift:
            shift = keras.random.randint(
                (batch, 1), -self.mel_shift, self.mel_shift + 1, seed=self.seed_generator
            )
            index = ops.clip(ops.arange(bins)[None, :] + shift, 0, bins - 1)  # (B, M)
            x = ops.take_along_axis(
                x, ops.broadcast_to(index[:, None, :, None], ops.shape(x)), axis=2
            )
        if self.freq_mask:
            x = x * self._band(batch, bins, min(self.freq_mask, bins), (-1, 1, bins, 1))
        if self.time_mask:
            x = x * self._band(batch, frames, min(self.time_mask, frames), (-1, frames, 1, 1))
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            freq_mask=self.freq_mask,
            time_mask=self.time_mask,
            mel_shift=self.mel_shift,
            seed=self.seed,
        )
        return config


# === Encoders ===


def _conv_stack(x, width, name, min_size=4, flatten=True):
    """Conv(3x3)-BN-ReLU pairs, max-pooling between blocks until a side reaches ``min_size``."""
    filters = width
    block = 0
    while True:
        for j in range(2):
            x = conv_bn_relu(x, filters, name, suffix=f"{block}_{j}", bn_momentum=_BN_MOMENTUM)
        block += 1
        if min(int(x.shape[1]), int(x.shape[2])) // 2 < min_size:
            break
        x = keras.layers.MaxPooling2D(name=f"{name}_pool{block}")(x)
        filters = min(filters * 2, 8 * width)
    return keras.layers.Flatten(name=f"{name}_flatten")(x) if flatten else x


def _head(x, embedding_dim, dropout, name):
    if dropout:
        x = keras.layers.Dropout(float(dropout), name=f"{name}_dropout")(x)
    x = keras.layers.Dense(embedding_dim, name=f"{name}_dense")(x)
    return keras.layers.ReLU(name=f"{name}_out")(x)


def build_image_encoder(
    image_shape=(32, 32, 3), embedding_dim=128, width=32, dropout=0.0, name="image_encoder"
):
    """Image encoder: float32 pixels 0–255 → features (where things are is kept).

    Conv(3x3)-BN-ReLU pairs with max-pooling down to a 4–7 pixel grid, flattened (so the
    position of a shape survives, unlike global pooling), then ``Dense(embedding_dim)`` + ReLU.

    Args:
        image_shape: ``(height, width, channels)``, each side >= 8.
        embedding_dim: output features.
        width: filters of the first block (doubled per block, at most ``8 * width``).
        dropout: dropout before the dense layer.
        name: model name.

    Returns:
        A functional ``keras.Model``: input ``"images"`` → ``(B, embedding_dim)``.

    Example:
        >>> build_image_encoder((32, 32, 3)).output_shape
        (None, 128)
    """
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or min(image_shape[:2]) < 8:
        raise ValueError(
            f"image_shape must be (height, width, channels) with sides >= 8. Received: "
            f"image_shape={image_shape!r}"
        )
    check_int("embedding_dim", embedding_dim)
    check_int("width", width)
    inputs = keras.Input(image_shape, name="images")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = _conv_stack(x, width, "cnn")
    return keras.Model(inputs, _head(x, embedding_dim, dropout, "head"), name=name)


AUDIO_POOLINGS = ("flatten", "time_max")


def build_audio_encoder(
    input_shape=(32, 32, 2),
    embedding_dim=128,
    width=32,
    dropout=0.0,
    name="audio_encoder",
    pooling="flatten",
    augment=False,
):
    """Audio encoder: a log-mel spectrogram ``(frames, mel bins, channels)`` → features.

    A 2-D CNN over (time, frequency) as ``build_image_encoder`` (no rescaling: log-mel values
    are already of order 1); flattening keeps the frequency axis, where the pitch lives.
    ``pooling="time_max"`` takes the maximum over time instead of flattening it (a word
    spotter: speech says the same words at different times), keeping the frequency axis.

    Args:
        input_shape: ``(frames, mel bins, channels)`` (``zoo.multimodal.data``: (32, 32, 2);
            speech, ``SPEECH_AUDIO.spectrogram_shape``: (125, 40, 1)).
        embedding_dim, width, dropout, name: as ``build_image_encoder``.
        pooling: ``"flatten"`` (tones) or ``"time_max"`` (speech).
        augment: a ``SpecAugment()`` layer first (training only; identity at inference).

    Returns:
        A functional ``keras.Model``: input ``"spectrograms"`` → ``(B, embedding_dim)``.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < 8:
        raise ValueError(
            f"input_shape must be (frames, mel_bins, channels) with frames, mel_bins >= 8. "
            f"Received: input_shape={input_shape!r}"
        )
    if pooling not in AUDIO_POOLINGS:
        raise ValueError(f"pooling must be one of {AUDIO_POOLINGS}. Received: pooling={pooling!r}")
    check_int("embedding_dim", embedding_dim)
    check_int("width", width)
    inputs = keras.Input(input_shape, name="spectrograms")
    x = SpecAugment(name="spec_augment")(inputs) if augment else inputs
    x = keras.layers.BatchNormalization(momentum=_BN_MOMENTUM, name="input_bn")(x)
    x = _conv_stack(x, width, "cnn", flatten=pooling == "flatten")
    if pooling == "time_max":
        frames = int(x.shape[1])
        x = keras.layers.MaxPooling2D((frames, 1), name="cnn_time_max")(x)
        x = keras.layers.Flatten(name="cnn_flatten")(x)
    return keras.Model(inputs, _head(x, embedding_dim, dropout, "head"), name=name)


def build_caption_encoder(
    vocabulary_size,
    max_length=16,
    embedding_dim=128,
    width=64,
    pooling="conv",
    dropout=0.0,
    name="text_encoder",
):
    """Text encoder: int32 token ids (0 = padding) → features.

    Token embedding (``width``), then for ``pooling="conv"`` two ``Conv1D(2 width, 3)`` + ReLU
    layers (word n-grams: "small red circle"), the mean over the non-padding tokens
    (``MaskedMeanPooling``) and ``Dense(embedding_dim)`` + ReLU. ``pooling="mean"`` skips the
    convolutions (a bag of words).

    Args:
        vocabulary_size: number of token ids (padding and unknown included).
        max_length: tokens per input.
        embedding_dim: output features.
        width: token embedding size.
        pooling: ``"conv"`` (default) or ``"mean"``.
        dropout: dropout before the dense layer.
        name: model name.

    Returns:
        A functional ``keras.Model``: input ``"tokens"`` int32 ``(B, max_length)`` →
        ``(B, embedding_dim)``.

    Example:
        >>> build_caption_encoder(45, max_length=16).output_shape
        (None, 128)
    """
    check_int("vocabulary_size", vocabulary_size)
    check_int("max_length", max_length)
    check_int("embedding_dim", embedding_dim)
    check_int("width", width)
    if pooling not in TEXT_POOLINGS:
        raise ValueError(f"pooling must be one of {TEXT_POOLINGS}. Received: pooling={pooling!r}")
    ids = keras.Input((max_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary_size, width, name="token_embedding")(ids)
    if pooling == "conv":
        for i in range(2):
            x = keras.layers.Conv1D(
                2 * width, 3, padding="same", activation="relu", name=f"conv{i}"
            )(x)
    x = MaskedMeanPooling(name="masked_mean")([x, ids])
    return keras.Model(ids, _head(x, embedding_dim, dropout, "head"), name=name)


# === CLIP ===


def build_clip(
    encoder_a,
    encoder_b,
    projection_dim=64,
    normalize=True,
    initial_logit_scale=DEFAULT_LOGIT_SCALE,
    max_logit_scale=MAX_LOGIT_SCALE,
    learn_temperature=True,
    name="clip",
):
    """A CLIP model of two encoders: towers from ``build_two_tower`` + a learnable temperature.

    Args:
        encoder_a, encoder_b: single-input ``keras.Model``s, one per modality (e.g.
            ``build_image_encoder`` and ``build_caption_encoder``). Different models share
            nothing; passing the same model twice shares the encoder (only the projections
            differ).
        projection_dim: size of the shared embedding space.
        normalize: L2-normalise the projections (CLIP does; the logits are then scaled
            cosine similarities).
        initial_logit_scale: initial ``logit_scale`` = log(1 / temperature) (log(1 / 0.07)).
        max_logit_scale: cap of ``exp(logit_scale)`` (100).
        learn_temperature: train ``logit_scale`` (False keeps it fixed).
        name: model name.

    Returns:
        A functional ``keras.Model``: inputs ``{"input_a", "input_b"}``, outputs
        ``{"logits": (B, B) float32, "embeddings": (B, 2, projection_dim)}``; sub-models
        ``"tower_a"`` / ``"tower_b"`` (serve them alone) and the layer ``"logits"``
        (``.logit_scale``). Compile with ``loss={"logits": CLIPLoss()}``.

    Example:
        >>> model = build_clip(build_image_encoder(), build_caption_encoder(45))
        >>> model.compile(keras.optimizers.Adam(1e-3), loss={"logits": CLIPLoss()})
        >>> model.fit(multimodal_dataset(data, "image-text", 128), steps_per_epoch=200)
    """
    check_int("projection_dim", projection_dim)
    two_tower = build_two_tower(
        encoder_a, encoder_b, projection_dim=projection_dim, normalize=normalize
    )
    tower_a, tower_b = two_tower.get_layer("tower_a"), two_tower.get_layer("tower_b")
    inputs = {}
    for key, tower in (("input_a", tower_a), ("input_b", tower_b)):
        spec = tower.inputs[0]
        inputs[key] = keras.Input(tuple(spec.shape[1:]), dtype=spec.dtype, name=key)
    ea, eb = tower_a(inputs["input_a"]), tower_b(inputs["input_b"])
    logits = CLIPLogits(
        initial_logit_scale, max_logit_scale, learnable=learn_temperature, name="logits"
    )([ea, eb])
    outputs = {"logits": logits, "embeddings": StackEmbeddings(name="embeddings")([ea, eb])}
    return keras.Model(inputs, outputs, name=name)


# === Evaluation helpers ===


def embed(tower, inputs, batch_size=512):
    """``tower`` over ``inputs`` in batches (inference mode) → float32 NumPy ``(N, D)``.

    Unlike ``zoo.metrics.compute_embeddings`` the input dtype is kept (token ids stay int).
    """
    inputs = np.asarray(inputs)
    if len(inputs) == 0:
        return np.zeros((0, int(tower.output_shape[-1])), np.float32)
    out = [
        np.asarray(tower(inputs[s : s + batch_size], training=False))
        for s in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


def class_prototypes(embeddings, labels, num_classes=None):
    """Unit-norm mean embedding of each class (classes without items give zero rows).

    Args:
        embeddings: ``(N, D)``; labels: ``(N,)`` ints in ``[0, num_classes)``.
        num_classes: default ``max(labels) + 1``.

    Returns:
        float32 ``(num_classes, D)``.
    """
    embeddings = unit_rows(embeddings)
    labels = np.asarray(labels).reshape(-1)
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    sums = np.zeros((num_classes, embeddings.shape[1]), np.float32)
    np.add.at(sums, labels, embeddings)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.where(norms > 0, sums / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def classify_by_prototypes(embeddings, prototypes):
    """The class of the most cosine-similar prototype for each embedding.

    Args:
        embeddings: ``(N, D)``; prototypes: ``(C, D)`` (e.g. ``class_prototypes`` of another
            modality, or prompt embeddings).

    Returns:
        ``(predictions int (N,), similarities float32 (N, C))``.
    """
    similarities = unit_rows(embeddings) @ unit_rows(prototypes).T
    return np.argmax(similarities, axis=1), similarities.astype(np.float32)


def knn_classify(embeddings, reference_embeddings, reference_labels, k=10):
    """Majority label of the ``k`` most cosine-similar reference items (ties: the nearest).

    With references of another modality (labelled sounds for images, say) this is zero-shot
    for the queried modality, like ``classify_by_prototypes`` but without assuming that a
    class's embeddings average into a good class vector.

    Args:
        embeddings: ``(N, D)`` queries; reference_embeddings: ``(M, D)``;
        reference_labels: ``(M,)`` ints; k: neighbours (capped at M).

    Returns:
        int ``(N,)`` predicted labels.
    """
    labels = np.asarray(reference_labels).reshape(-1)
    k = max(1, min(int(k), len(labels)))
    sims = unit_rows(embeddings) @ unit_rows(reference_embeddings).T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(sims), int(labels.max()) + 1))
    for rank in range(k):  # earlier ranks add a little more, so ties go to the nearest
        np.add.at(votes, (np.arange(len(sims)), labels[top[:, rank]]), 1.0 + 1e-3 * (k - rank))
    return np.argmax(votes, axis=1)


def zero_shot_classify(image_tower, text_tower, images, prompts, tokenizer=None, batch_size=512):
    """Classify ``images`` by their most similar class prompt (CLIP's zero-shot classifier).

    Each class is described by one prompt or by several (their unit-norm embeddings are
    averaged: prompt ensembling); each image gets the class of highest cosine similarity.
    Works for any pair of towers (e.g. spectrograms against text prompts).

    Args:
        image_tower: the tower of the items to classify.
        text_tower: the tower of the class descriptions.
        images: ``(N, ...)`` inputs of ``image_tower``.
        prompts: per class a prompt: token ids ``(C, L)`` / ``(C, K, L)`` (K prompts a class),
            or strings (a list of C strings or of C lists of strings) with ``tokenizer``.
        tokenizer: callable strings → token ids (e.g. ``zoo.multimodal.captions.CaptionTokenizer``),
            needed for string prompts.
        batch_size: inference batch size.

    Returns:
        ``(predictions int (N,), similarities float32 (N, C))``.

    Example:
        >>> prompts = [f"a photo of a {s}" for s in SHAPES]
        >>> pred, _ = zero_shot_classify(image_tower, text_tower, images, prompts, tokenizer)
    """
    if len(prompts) == 0:
        raise ValueError("prompts must describe at least one class.")
    if isinstance(prompts[0], str) or (
        isinstance(prompts[0], (list, tuple)) and prompts[0] and isinstance(prompts[0][0], str)
    ):
        if tokenizer is None:
            raise ValueError("string prompts need a tokenizer (strings -> token ids).")
        groups = [[p] if isinstance(p, str) else list(p) for p in prompts]
        if len({len(g) for g in groups}) != 1:
            raise ValueError("every class needs the same number of prompts.")
        flat = np.asarray(tokenizer([p for g in groups for p in g]))
        prompts = flat.reshape(len(groups), len(groups[0]), -1)
    prompts = np.asarray(prompts)
    if prompts.ndim == 2:
        prompts = prompts[:, None]
    num_classes, per_class = prompts.shape[:2]
    text = unit_rows(embed(text_tower, prompts.reshape((-1,) + prompts.shape[2:]), batch_size))
    classes = text.reshape(num_classes, per_class, -1).mean(axis=1)
    return classify_by_prototypes(embed(image_tower, images, batch_size), classes)
