"""Offline paired data for multimodal contrastive learning: scenes as image, caption and sound.

A *scene* is one to ``max_objects`` coloured shapes, each with four attributes, stored as integer
rows ``(shape, colour, size, position)`` (indices into ``SHAPES``, ``COLOURS``, ``SIZES``,
``POSITIONS``; absent objects are rows of -1). Three renderings of the same scene:

- **image**: ``uint8 (H, W, 3)`` (default 32 x 32): each shape drawn in its colour (RGB jittered),
  its size class (small / large, extent jittered), its horizontal position class (left / center /
  right, jittered; the vertical position is free) and a small random rotation, on a dark textured
  background with pixel noise.
- **caption**: an English sentence from varied templates and synonyms ("a small red circle on the
  left", "on the left there is a tiny red circle", "the circle at the left is red and little"...),
  so a model has to read the words, not memorise one phrase per scene.
- **audio**: a 0.5 s stereo waveform (8 kHz) synthesised in TensorFlow ops, one tone per shape:
  the fundamental frequency encodes the *shape* (``SHAPE_FREQUENCIES``, a 1.5x ladder so no
  harmonic of one shape falls on another's fundamental), the harmonics (timbre) the *colour*
  (``COLOUR_HARMONICS``, always quieter than the fundamental, so the loudest frequency is still the
  shape's), the amplitude and envelope length the *size*, the stereo pan the *position*; plus
  random detuning, onset, gain and white noise. ``log_mel_spectrogram`` turns it into a
  ``(32 frames, 32 mel bins, 2 channels)`` log-mel image with ``tf.signal``.

Everything is a pure function of ``(seed, split, index)`` (``numpy.random.default_rng([seed,
split, index, stream])`` for scenes, images and captions; ``tf.random.stateless_*`` for the
audio), so the same seed gives the same data in any order. The ``label`` of a scene for
evaluation is its ``scene_key`` (one integer per distinct attribute set): two pairs with the same
key have captions and sounds that describe the same thing, so cross-modal retrieval counts a
neighbour with the query's key as a hit.

Example:
    >>> data = make_multimodal_data(1000, seed=0, split="test")
    >>> data.images.shape, data.tokens.shape, data.spectrograms.shape
    ((1000, 32, 32, 3), (1000, 16), (1000, 32, 32, 2))
    >>> data.captions[0]                                         # doctest: +SKIP
    'on the right there is a big blue triangle'
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

__all__ = [
    "ATTRIBUTES",
    "COLOURS",
    "COLOUR_HARMONICS",
    "MODALITIES",
    "POSITIONS",
    "SHAPES",
    "SHAPE_FREQUENCIES",
    "SIZES",
    "AudioConfig",
    "CaptionTokenizer",
    "MultimodalData",
    "caption_max_length",
    "caption_vocabulary",
    "log_mel_spectrogram",
    "make_multimodal_data",
    "multimodal_dataset",
    "render_scene",
    "sample_scenes",
    "scene_audio",
    "scene_captions",
    "scene_keys",
    "synthesize_audio",
]

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = ("red", "green", "blue", "yellow", "purple")
SIZES = ("small", "large")
POSITIONS = ("left", "center", "right")
ATTRIBUTES = ("shape", "colour", "size", "position")
MODALITIES = ("image", "text", "audio")
_SPLITS = {"train": 0, "test": 1, "val": 2}

# --- rendering constants ---
_RGB = np.array(
    [[225, 40, 40], [40, 200, 60], [50, 90, 235], [235, 220, 45], [175, 60, 210]], np.float32
)
_EXTENT = {0: (0.24, 0.30), 1: (0.40, 0.48)}  # fraction of the image side, by size class
_CENTRE_X = {0: (0.22, 0.30), 1: (0.46, 0.54), 2: (0.70, 0.78)}  # by position class

# --- audio constants ---
SHAPE_FREQUENCIES = (160.0, 240.0, 360.0, 540.0, 810.0)  # Hz, a 1.5x ladder
# Extra harmonics (multiples of the fundamental) by colour, each at half the fundamental's level.
COLOUR_HARMONICS = ((), (2,), (3,), (2, 3), (2, 3, 4))
_PAN = ((1.0, 0.2), (0.7, 0.7), (0.2, 1.0))  # (left gain, right gain) by position
_AMPLITUDE = (0.35, 0.9)  # by size
_DURATION = (0.3, 0.85)  # fraction of the clip the tone lasts, by size


# === Scenes ===


def _split_id(split):
    if isinstance(split, int) and not isinstance(split, bool) and split >= 0:
        return split
    if split not in _SPLITS:
        raise ValueError(
            f"split must be one of {sorted(_SPLITS)} or an int >= 0. Received: split={split!r}"
        )
    return _SPLITS[split]


def _rng(seed, split, index, stream):
    return np.random.default_rng([int(seed), _split_id(split), int(index), int(stream)])


def sample_scenes(num, seed=0, split="train", max_objects=1, start=0):
    """Attributes of ``num`` scenes: ``int32 (num, max_objects, 4)``, absent objects = -1.

    Each scene has 1 to ``max_objects`` objects (uniform), at distinct horizontal positions
    (so ``max_objects <= len(POSITIONS)``); every attribute is uniform over its values.

    Args:
        num: number of scenes.
        seed: data seed.
        split: ``"train"``, ``"test"``, ``"val"`` or an int: disjoint streams for one seed.
        max_objects: most objects per scene (1 to 3).
        start: index of the first scene (scene ``i`` depends on ``(seed, split, i)`` only).

    Returns:
        ``int32`` array ``(num, max_objects, 4)``: rows ``(shape, colour, size, position)``.

    Example:
        >>> sample_scenes(2, seed=0)[:, 0]                               # doctest: +SKIP
        array([[4, 1, 0, 2], [0, 3, 1, 0]], dtype=int32)
    """
    if isinstance(max_objects, bool) or not isinstance(max_objects, int):
        raise ValueError(f"max_objects must be an int. Received: max_objects={max_objects!r}")
    if not 1 <= max_objects <= len(POSITIONS):
        raise ValueError(
            f"max_objects must be in [1, {len(POSITIONS)}] (objects sit at distinct positions). "
            f"Received: max_objects={max_objects!r}"
        )
    out = np.full((int(num), max_objects, 4), -1, np.int32)
    for i in range(int(num)):
        rng = _rng(seed, split, start + i, 0)
        count = int(rng.integers(1, max_objects + 1))
        positions = rng.permutation(len(POSITIONS))[:count]
        for j in range(count):
            out[i, j] = (
                rng.integers(len(SHAPES)),
                rng.integers(len(COLOURS)),
                rng.integers(len(SIZES)),
                positions[j],
            )
    return out


def scene_keys(attributes):
    """One integer per distinct scene (order of its objects ignored): the retrieval label.

    Args:
        attributes: ``(N, max_objects, 4)`` (or ``(N, 4)``) from ``sample_scenes``.

    Returns:
        ``int64 (N,)``; equal keys mean identical attribute sets.
    """
    attributes = np.asarray(attributes)
    if attributes.ndim == 2:
        attributes = attributes[:, None]
    sizes = np.array([len(SHAPES), len(COLOURS), len(SIZES), len(POSITIONS)])
    per_object = np.ravel_multi_index(np.maximum(attributes, 0).reshape(-1, 4).T, sizes)
    per_object = per_object.reshape(attributes.shape[:2]) + 1
    per_object = np.where(attributes[..., 0] >= 0, per_object, 0)  # absent -> 0
    per_object = -np.sort(-per_object, axis=1)  # order-free
    base = int(np.prod(sizes)) + 1
    keys = np.zeros(len(attributes), np.int64)
    for j in range(per_object.shape[1]):
        keys = keys * base + per_object[:, j]
    return keys


# === Images ===


def _shape_mask(shape, u, v, r):
    """Mask of shape ``shape`` with half-extent ``r`` in rotated local coordinates (u, v)."""
    name = SHAPES[shape]
    if name == "circle":
        return u * u + v * v <= r * r
    if name == "square":
        return (np.abs(u) <= 0.85 * r) & (np.abs(v) <= 0.85 * r)
    if name == "diamond":
        return np.abs(u) + np.abs(v) <= 1.1 * r
    if name == "triangle":  # apex up (image v grows downwards)
        top, bottom = -r, 0.85 * r
        return (v >= top) & (v <= bottom) & (np.abs(u) <= (v - top) / (bottom - top) * r)
    # cross ("plus")
    t = 0.33 * r
    return ((np.abs(u) <= t) & (np.abs(v) <= r)) | ((np.abs(u) <= r) & (np.abs(v) <= t))


def render_scene(attributes, index=0, seed=0, split="train", image_size=32):
    """Draw one scene (NumPy).

    Args:
        attributes: ``(max_objects, 4)`` rows ``(shape, colour, size, position)``, -1 = absent.
        index, seed, split: the random stream (jitter, background, noise).
        image_size: side of the square image in pixels (>= 16).

    Returns:
        ``uint8 (image_size, image_size, 3)``.
    """
    size = int(image_size)
    if size < 16:
        raise ValueError(f"image_size must be >= 16. Received: image_size={image_size!r}")
    rng = _rng(seed, split, index, 1)
    # dark textured background: a colour, a gradient, smooth blobs, pixel noise
    base = rng.uniform(15, 70) + rng.uniform(-10, 10, 3)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    image = np.broadcast_to(base.astype(np.float32), (size, size, 3)).copy()
    image += rng.uniform(-15, 15, 3).astype(np.float32) * ramp[:, None, None]
    image += rng.uniform(-15, 15, 3).astype(np.float32) * ramp[None, :, None]
    grid = rng.standard_normal((5, 5, 3)).astype(np.float32) * 8.0
    coarse = np.linspace(0, 4, size)
    lo = np.minimum(coarse.astype(int), 3)
    frac = (coarse - lo).astype(np.float32)
    rows = grid[lo] * (1 - frac)[:, None, None] + grid[lo + 1] * frac[:, None, None]
    image += rows[:, lo] * (1 - frac)[None, :, None] + rows[:, lo + 1] * frac[None, :, None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for shape, colour, size_class, position in np.asarray(attributes).reshape(-1, 4):
        if shape < 0:
            continue
        r = 0.5 * size * rng.uniform(*_EXTENT[int(size_class)])
        cx = size * rng.uniform(*_CENTRE_X[int(position)])
        cy = size * rng.uniform(0.5 - 0.12, 0.5 + 0.12)
        angle = np.deg2rad(rng.uniform(-12, 12))
        c, s = np.cos(angle), np.sin(angle)
        u = c * (xx - cx) + s * (yy - cy)
        v = -s * (xx - cx) + c * (yy - cy)
        mask = _shape_mask(int(shape), u, v, r)
        rgb = _RGB[int(colour)] + rng.uniform(-25, 25, 3) * np.float32(1.0)
        image[mask] = rgb * rng.uniform(0.85, 1.1)
    image += rng.standard_normal((size, size, 3)).astype(np.float32) * rng.uniform(2, 8)
    return np.clip(image, 0, 255).astype(np.uint8)


# === Captions ===

_SIZE_WORDS = (("small", "tiny", "little"), ("large", "big", "huge"))
_WHERE = (
    ("on the left", "at the left", "to the left"),
    ("in the middle", "in the center", "at the centre"),
    ("on the right", "at the right", "to the right"),
)
# Single-object templates. Fields: {size} {colour} {shape} {where}.
_TEMPLATES = (
    "a {size} {colour} {shape} {where}",
    "a photo of a {size} {colour} {shape} {where}",
    "{where} there is a {size} {colour} {shape}",
    "a {colour} {shape} {where} which is {size}",
    "the {shape} {where} is {colour} and {size}",
    "an image with one {size} {shape} coloured {colour} {where}",
    "{size} {colour} {shape} {where}",
    "you can see a {colour} {shape} of {size} size {where}",
)
# Object phrases and joins for scenes with several objects.
_PHRASES = ("a {size} {colour} {shape} {where}", "one {colour} {shape} {where} which is {size}")
_MULTI = ("{objects}", "there is {objects}", "a photo of {objects}", "we see {objects}")
# Partial captions (``partial`` in ``scene_captions``): a random subset of size / colour / where.
_PARTIAL = ("a {desc}", "a photo of a {desc}", "there is a {desc}")
PROMPT_TEMPLATE = "a photo of a {shape}"


def _fill(template, obj, rng):
    shape, colour, size_class, position = (int(a) for a in obj)
    return template.format(
        size=_SIZE_WORDS[size_class][rng.integers(3)],
        colour=COLOURS[colour],
        shape=SHAPES[shape],
        where=_WHERE[position][rng.integers(3)],
    )


def scene_captions(attributes, seed=0, split="train", start=0, partial=0.0):
    """One generated caption per scene.

    A single object uses one of eight templates with synonyms for the size ("small", "tiny",
    "little"...) and the position ("on the left", "at the left", "to the left"...); several
    objects are described one phrase each in random order, joined with "and". With
    probability ``partial`` a single-object caption names the shape and only a random subset
    of size, colour and position ("a photo of a circle", "a red circle on the left"), as real
    captions rarely say everything; full captions are unambiguous, partial ones are not.

    Args:
        attributes: ``(N, max_objects, 4)`` from ``sample_scenes``.
        seed, split, start: the random stream (scene ``i`` uses index ``start + i``).
        partial: fraction of single-object captions that leave attributes out (0: none).

    Returns:
        A list of ``N`` lowercase strings (words separated by single spaces).
    """
    captions = []
    for i, scene in enumerate(np.asarray(attributes).reshape(len(attributes), -1, 4)):
        rng = _rng(seed, split, start + i, 2)
        objects = [o for o in scene if o[0] >= 0]
        choice = _rng(seed, split, start + i, 3)  # its own stream: full captions never change
        if len(objects) == 1 and partial and choice.uniform() < partial:
            size, colour, where = (int(k) for k in choice.uniform(size=3) < 0.5)  # which to keep
            desc = " ".join(
                ["{size}"] * size + ["{colour}"] * colour + ["{shape}"] + ["{where}"] * where
            )
            template = _PARTIAL[rng.integers(len(_PARTIAL))].format(desc=desc)
            captions.append(_fill(template, objects[0], rng))
        elif len(objects) == 1:
            template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
            captions.append(_fill(template, objects[0], rng))
        else:
            order = rng.permutation(len(objects))
            parts = [_fill(_PHRASES[rng.integers(len(_PHRASES))], objects[j], rng) for j in order]
            join = _MULTI[rng.integers(len(_MULTI))]
            captions.append(join.format(objects=" and ".join(parts)))
    return captions


def caption_max_length(max_objects=1):
    """Tokens that fit every caption of scenes with up to ``max_objects`` objects.

    One object: at most 12 words (16 leaves room); ``k`` objects: at most ``3 + 10 k - 1``.
    """
    return 16 if max_objects <= 1 else 3 + 10 * int(max_objects)


def caption_vocabulary():
    """Every word the caption templates and the zero-shot prompts can produce, sorted.

    Returns:
        A tuple of words (without the padding and unknown tokens).
    """
    words = set()
    for text in _TEMPLATES + _PHRASES + _MULTI + (PROMPT_TEMPLATE,):
        words.update(w for w in text.split() if not w.startswith("{"))
    for group in _SIZE_WORDS + _WHERE:
        for phrase in group:
            words.update(phrase.split())
    words.update(SHAPES + COLOURS + ("and",))
    return tuple(sorted(words))


class CaptionTokenizer:
    """Word-level tokenizer with the fixed caption vocabulary; runs inside ``tf.data``.

    Lowercases, splits on whitespace, maps words to ids (0 = padding, 1 = unknown, then
    ``caption_vocabulary()`` in order) and pads / truncates to ``max_length``.

    Args:
        max_length: tokens per caption (default 16 fits every single-object caption; see
            ``caption_max_length`` for scenes with more objects).
        vocabulary: words (default ``caption_vocabulary()``).

    Call:
        ``tokenizer(strings)``: a string, a list of strings or a tf.string tensor ``(N,)`` →
        ``int32 (max_length,)`` / ``(N, max_length)`` tensor.

    Example:
        >>> tok = CaptionTokenizer()
        >>> tok(["a red circle"]).shape
        TensorShape([1, 16])
        >>> tok.decode(tok("a red circle"))
        'a red circle'
    """

    PAD, UNK = "[PAD]", "[UNK]"

    def __init__(self, max_length=16, vocabulary=None):
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be an int >= 1. Received: max_length={max_length!r}")
        words = tuple(caption_vocabulary() if vocabulary is None else vocabulary)
        if len(set(words)) != len(words) or any(not w or " " in w for w in words):
            raise ValueError("vocabulary must hold distinct non-empty words without spaces.")
        self.max_length = max_length
        self.vocabulary = (self.PAD, self.UNK) + words
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words), tf.range(2, len(words) + 2, dtype=tf.int64)
            ),
            default_value=1,
        )

    @property
    def vocabulary_size(self):
        """Number of ids (padding and unknown included)."""
        return len(self.vocabulary)

    def __call__(self, strings):
        strings = tf.convert_to_tensor(strings, tf.string)
        scalar = strings.shape.rank == 0
        words = tf.strings.split(tf.strings.lower(tf.reshape(strings, [-1])))
        ids = tf.ragged.map_flat_values(self._table.lookup, words)
        ids = ids.to_tensor(default_value=0, shape=[None, self.max_length])
        ids = tf.cast(ids, tf.int32)
        return ids[0] if scalar else ids

    def decode(self, ids):
        """Ids back to a string (or a list of strings for a batch); padding dropped."""
        ids = np.asarray(ids)
        if ids.ndim == 1:
            return " ".join(self.vocabulary[i] for i in ids if i != 0)
        return [self.decode(row) for row in ids]


# === Audio ===


class AudioConfig(NamedTuple):
    """Waveform and spectrogram settings (the defaults give ``(32, 32, 2)`` log-mel images)."""

    sample_rate: int = 8000
    duration: float = 0.5
    frame_length: int = 256
    frame_step: int = 128
    num_mel_bins: int = 32
    lower_hz: float = 80.0
    upper_hz: float = 3800.0
    noise: float = 0.03

    @property
    def num_samples(self):
        return int(round(self.sample_rate * self.duration))

    @property
    def num_frames(self):
        return -(-self.num_samples // self.frame_step)  # pad_end=True


DEFAULT_AUDIO = AudioConfig()  # 8 kHz, 0.5 s -> (32 frames, 32 mel bins, 2 channels)


def _audio_seeds(seed, split, indices):
    indices = tf.cast(tf.reshape(indices, [-1]), tf.int64)
    base = tf.constant(int(seed) * 16 + _split_id(split), tf.int64)
    return tf.stack([tf.fill(tf.shape(indices), base), indices], axis=1)


def synthesize_audio(attributes, seeds, config=None):
    """Stereo waveforms of a batch of scenes, in TensorFlow ops (usable inside ``tf.data``).

    Per object: a tone at ``SHAPE_FREQUENCIES[shape]`` (detuned by up to ±2 %) plus the
    ``COLOUR_HARMONICS[colour]`` at half its level, amplitude ``_AMPLITUDE[size]`` (±15 %) over
    a Hann-shaped envelope lasting ``_DURATION[size]`` of the clip from a random onset, panned
    by position; then white noise of standard deviation ``config.noise``.

    Args:
        attributes: int ``(B, max_objects, 4)``; rows of -1 are silent.
        seeds: int ``(B, 2)`` stateless seeds (one per scene).
        config: ``AudioConfig``.

    Returns:
        float32 ``(B, config.num_samples, 2)``.
    """
    config = DEFAULT_AUDIO if config is None else config
    attributes = tf.cast(tf.convert_to_tensor(attributes), tf.int32)
    seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)
    objects = attributes.shape[1]
    n = config.num_samples
    t = tf.range(n, dtype=tf.float32) / float(config.sample_rate)  # (n,)
    # one stream per scene (so a scene sounds the same in any batch): (2 base, index) for the
    # jitter, (2 base + 1, index) for the noise
    jitter_seeds = seeds * tf.constant([2, 1], tf.int64)
    jitter = tf.vectorized_map(
        lambda s: tf.random.stateless_uniform([objects, 4], s), jitter_seeds
    )  # (B, O, 4) in [0, 1)
    shape, colour, size, position = (tf.maximum(attributes[..., k], 0) for k in range(4))
    present = tf.cast(attributes[..., 0] >= 0, tf.float32)
    f0 = tf.gather(tf.constant(SHAPE_FREQUENCIES, tf.float32), shape)
    f0 *= 1.0 + 0.04 * (jitter[..., 0] - 0.5)
    harmonics = np.zeros((len(COLOUR_HARMONICS), 4), np.float32)  # weights of multiples 1..4
    harmonics[:, 0] = 1.0
    for c, multiples in enumerate(COLOUR_HARMONICS):
        for m in multiples:
            harmonics[c, m - 1] = 0.5
    weights = tf.gather(tf.constant(harmonics), colour)  # (B, O, 4)
    multiples = tf.constant([1.0, 2.0, 3.0, 4.0])
    # cycles reduced to [0, 1) before the sine: sin of large arguments differs between the
    # vectorised and scalar kernels, and the audio must not depend on the batch it is in
    cycles = tf.math.floormod(f0[..., None, None] * multiples[:, None] * t, 1.0)  # (B, O, 4, n)
    tone = tf.reduce_sum(weights[..., None] * tf.sin(2.0 * np.pi * cycles), axis=2)  # (B, O, n)
    amplitude = tf.gather(tf.constant(_AMPLITUDE), size) * (1.0 + 0.3 * (jitter[..., 1] - 0.5))
    length = tf.gather(tf.constant(_DURATION), size) * config.duration
    onset = jitter[..., 2] * (config.duration - length) * 0.5
    pos = (t - onset[..., None]) / length[..., None]  # (B, O, n), envelope where 0 <= pos <= 1
    inside = tf.cast((pos >= 0.0) & (pos <= 1.0), tf.float32)
    envelope = inside * tf.sqrt(tf.maximum(tf.sin(np.pi * tf.clip_by_value(pos, 0.0, 1.0)), 0.0))
    mono = tone * envelope * (amplitude * present)[..., None]  # (B, O, n)
    pan = tf.gather(tf.constant(_PAN, tf.float32), position)  # (B, O, 2)
    stereo = tf.einsum("bon,boc->bnc", mono, pan)
    noise = tf.vectorized_map(
        lambda s: tf.random.stateless_normal([n, 2], s),
        jitter_seeds + tf.constant([1, 0], tf.int64),
    )
    return stereo + config.noise * noise


def log_mel_spectrogram(waveforms, config=None):
    """Log-mel spectrogram of each channel with ``tf.signal``.

    Args:
        waveforms: float32 ``(B, num_samples, channels)``.
        config: ``AudioConfig`` (frame length / step, mel bins and range).

    Returns:
        float32 ``(B, frames, num_mel_bins, channels)``: ``log(mel magnitude + 1e-2)``.
    """
    config = DEFAULT_AUDIO if config is None else config
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    signals = tf.transpose(waveforms, [0, 2, 1])  # (B, C, n)
    stft = tf.signal.stft(
        signals,
        config.frame_length,
        config.frame_step,
        pad_end=True,
        window_fn=tf.signal.hann_window,
    )
    magnitude = tf.abs(stft)  # (B, C, T, F)
    mel = tf.signal.linear_to_mel_weight_matrix(
        config.num_mel_bins,
        magnitude.shape[-1],
        config.sample_rate,
        config.lower_hz,
        config.upper_hz,
    )
    spec = tf.math.log(tf.tensordot(magnitude, mel, 1) + 1e-2)  # (B, C, T, M)
    return tf.transpose(spec, [0, 2, 3, 1])


def scene_audio(attributes, indices, seed=0, split="train", config=None):
    """Log-mel spectrograms of scenes ``indices`` (see ``synthesize_audio``).

    Returns:
        float32 ``(B, frames, num_mel_bins, 2)`` tensor.
    """
    seeds = _audio_seeds(seed, split, indices)
    attributes = tf.cast(tf.convert_to_tensor(attributes), tf.int32)
    return _scene_audio_graph(attributes, seeds, DEFAULT_AUDIO if config is None else config)


@tf.function(reduce_retracing=True)
def _scene_audio_graph(attributes, seeds, config):
    return log_mel_spectrogram(synthesize_audio(attributes, seeds, config), config)


# === Paired data sets ===


class MultimodalData(NamedTuple):
    """Paired renderings of ``N`` scenes (arrays for the modalities asked for, else None).

    Attributes:
        attributes: int32 ``(N, max_objects, 4)``.
        keys: int64 ``(N,)`` scene keys (``scene_keys``), the retrieval labels.
        shape_labels: int32 ``(N,)`` shape of the first object (the classification label).
        images: uint8 ``(N, H, W, 3)`` or None.
        captions: list of ``N`` strings or None.
        tokens: int32 ``(N, max_length)`` or None.
        spectrograms: float32 ``(N, frames, mel bins, 2)`` or None.
        indices: int64 ``(N,)`` scene indices (the random stream of each scene).
        seed, split: the stream.
    """

    attributes: np.ndarray
    keys: np.ndarray
    shape_labels: np.ndarray
    images: np.ndarray | None
    captions: list | None
    tokens: np.ndarray | None
    spectrograms: np.ndarray | None
    indices: np.ndarray
    seed: int
    split: str | int

    def modality(self, name):
        """The model input array of modality ``"image"`` (float32), ``"text"`` or ``"audio"``."""
        arrays = {"image": self.images, "text": self.tokens, "audio": self.spectrograms}
        if name not in arrays:
            raise ValueError(f"modality must be one of {MODALITIES}. Received: {name!r}")
        if arrays[name] is None:
            raise ValueError(f"this MultimodalData was made without the {name!r} modality")
        return arrays[name].astype(np.float32) if name == "image" else arrays[name]


def make_multimodal_data(
    num,
    seed=0,
    split="train",
    modalities=MODALITIES,
    max_objects=1,
    image_size=32,
    tokenizer=None,
    audio_config=None,
    start=0,
    partial_captions=0.0,
):
    """Generate ``num`` paired scenes in memory (deterministic in ``(seed, split, index)``).

    Args:
        num: number of scenes.
        seed: data seed.
        split: ``"train"``, ``"test"``, ``"val"`` or an int (disjoint streams).
        modalities: which of ``"image"``, ``"text"``, ``"audio"`` to render.
        max_objects: most shapes per scene (1 to 3).
        image_size: image side in pixels.
        tokenizer: a ``CaptionTokenizer`` (default: ``caption_max_length(max_objects)`` tokens).
        audio_config: ``AudioConfig`` of the audio.
        start: first scene index.
        partial_captions: fraction of captions naming only some attributes (see
            ``scene_captions``; e.g. 0.25 for training, 0 for evaluation).

    Returns:
        ``MultimodalData``.
    """
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown:
        raise ValueError(f"modalities must be among {MODALITIES}. Received: {list(modalities)}")
    attributes = sample_scenes(num, seed, split, max_objects, start)
    indices = np.arange(start, start + int(num), dtype=np.int64)
    images = captions = tokens = spectrograms = None
    if "image" in modalities:
        images = (
            np.stack(
                [
                    render_scene(a, i, seed, split, image_size)
                    for a, i in zip(attributes, indices, strict=True)
                ]
            )
            if num
            else np.zeros((0, image_size, image_size, 3), np.uint8)
        )
    if "text" in modalities:
        captions = scene_captions(attributes, seed, split, start, partial_captions)
        tokenizer = tokenizer or CaptionTokenizer(caption_max_length(max_objects))
        tokens = tokenizer(captions).numpy() if num else np.zeros((0, tokenizer.max_length))
        tokens = tokens.astype(np.int32)
    if "audio" in modalities:
        chunks = [
            scene_audio(attributes[s : s + 256], indices[s : s + 256], seed, split, audio_config)
            for s in range(0, int(num), 256)
        ]
        spectrograms = np.concatenate([c.numpy() for c in chunks]) if chunks else None
    return MultimodalData(
        attributes=attributes,
        keys=scene_keys(attributes),
        shape_labels=attributes[:, 0, 0].copy(),
        images=images,
        captions=captions,
        tokens=tokens,
        spectrograms=spectrograms,
        indices=indices,
        seed=int(seed),
        split=split,
    )


def _parse_pair(pair):
    names = tuple(pair.split("-")) if isinstance(pair, str) else tuple(pair)
    if len(names) != 2 or names[0] == names[1] or not set(names) <= set(MODALITIES):
        raise ValueError(
            f"pair must name two different modalities of {MODALITIES}, e.g. 'image-text'. "
            f"Received: pair={pair!r}"
        )
    return names


def multimodal_dataset(
    data,
    pair="image-text",
    batch_size=64,
    seed=0,
    shuffle=True,
    repeat=True,
    audio_config=None,
):
    """A batched ``tf.data`` pipeline of pairs for ``build_clip`` models.

    Audio comes from ``data.spectrograms`` when the data holds them; otherwise it is
    synthesised inside the pipeline (batched) from the attributes and the scene indices (no
    spectrograms in memory, the same values element for element, more CPU each epoch).

    Args:
        data: ``MultimodalData`` holding the modalities of ``pair`` (audio may be missing).
        pair: ``"image-text"``, ``"image-audio"``, ``"audio-text"`` (or a 2-tuple).
        batch_size: batch size (batches are full: ``drop_remainder`` when repeating).
        seed: shuffle seed.
        shuffle, repeat: shuffle each epoch; repeat forever.
        audio_config: ``AudioConfig`` (must match the one the evaluation data used).

    Returns:
        ``tf.data.Dataset`` of ``({"input_a": A, "input_b": B}, {"logits": zeros (B,)})``; the
        dummy target feeds ``CLIPLoss``, which builds its own targets (the diagonal).
    """
    a_name, b_name = _parse_pair(pair)
    columns = {"index": data.indices, "attributes": data.attributes}
    for name in (a_name, b_name):
        if name != "audio" or data.spectrograms is not None:
            columns[name] = data.modality(name)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        ds = ds.shuffle(min(len(data.indices), 20000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=repeat)
    data_seed, split = data.seed, data.split

    def to_pair(batch):
        if "audio" in (a_name, b_name) and "audio" not in batch:
            batch["audio"] = scene_audio(
                batch["attributes"], batch["index"], data_seed, split, audio_config
            )
        inputs = {"input_a": batch[a_name], "input_b": batch[b_name]}
        return inputs, {"logits": tf.zeros(tf.shape(batch["index"])[:1])}

    return ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
