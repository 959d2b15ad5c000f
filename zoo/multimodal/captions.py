"""Captions of scenes and the caption tokenizer.

A caption is an English sentence from varied templates and synonyms ("a small red circle on the
left", "on the left there is a tiny red circle", "the circle at the left is red and little"...),
so a model has to read the words, not memorise one phrase per scene. ``CaptionTokenizer`` is
the text family's ``TextTokenizer`` at word level over the fixed ``caption_vocabulary()``
(0 = padding, 1 = unknown, the words from id 2; no ``[MASK]``).

Example:
    >>> captions = scene_captions(sample_scenes(2, seed=0), seed=0)     # doctest: +SKIP
    ['on the right there is a big blue triangle', 'a tiny green square on the left']
    >>> tokens = CaptionTokenizer()(captions)                           # int32 (2, 16)
"""

from __future__ import annotations

import numpy as np

from zoo.multimodal.scenes import COLOURS, SHAPES, scene_rng
from zoo.ops.checks import check_int
from zoo.text.tokenizer import WORD_LEVEL, TextTokenizer

__all__ = [
    "PROMPT_TEMPLATE",
    "CaptionTokenizer",
    "caption_max_length",
    "caption_vocabulary",
    "scene_captions",
]

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
        rng = scene_rng(seed, split, start + i, 2)
        objects = [o for o in scene if o[0] >= 0]
        choice = scene_rng(seed, split, start + i, 3)  # its own stream: full captions never change
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


class CaptionTokenizer(TextTokenizer):
    """The text family's word-level ``TextTokenizer`` with the fixed caption vocabulary.

    Unicode-lowercases, strips punctuation, splits on whitespace, maps words to ids (0 =
    padding, 1 = unknown, then ``caption_vocabulary()`` in order; no ``[MASK]``) and pads /
    truncates to ``max_length``; runs inside ``tf.data``. Nothing to ``adapt``: the vocabulary
    is every word the captions and prompts can hold.

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

    def __init__(self, max_length=16, vocabulary=None):
        super().__init__(
            WORD_LEVEL,
            sequence_length=check_int("max_length", max_length),
            vocabulary=caption_vocabulary() if vocabulary is None else tuple(vocabulary),
            mask_token=False,
        )

    @property
    def max_length(self):
        """Tokens per caption (the tokenizer's ``sequence_length``)."""
        return self.sequence_length

    @property
    def vocabulary_size(self):
        """Number of ids, padding and unknown included (the tokenizer's ``vocab_size``)."""
        return self.vocab_size

    def get_config(self):
        return {"max_length": self.max_length, "vocabulary": list(self._tokens)}
