"""Offline paired data for multimodal contrastive learning: scenes as image, caption and sound.

A scene (``zoo.multimodal.scenes``: one to three coloured shapes, each ``(shape, colour, size,
position)``) is rendered three ways: an **image** (``render_scene``), a **caption**
(``zoo.multimodal.captions``: varied English templates and synonyms, tokenized by
``CaptionTokenizer``) and a **sound** (``zoo.multimodal.audio``: one tone per shape, as a
``(32 frames, 32 mel bins, 2 channels)`` log-mel spectrogram). ``make_multimodal_data`` renders
the modalities asked for in memory; ``multimodal_dataset`` pairs two of them for ``build_clip``.

Everything is a pure function of ``(seed, split, index)``, so the same seed gives the same data
in any order. The ``label`` of a scene for evaluation is its ``scene_key`` (one integer per
distinct attribute set): two pairs with the same key have captions and sounds that describe the
same thing, so cross-modal retrieval counts a neighbour with the query's key as a hit.

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

from zoo.multimodal.audio import scene_audio
from zoo.multimodal.captions import CaptionTokenizer, caption_max_length, scene_captions
from zoo.multimodal.scenes import render_scene, sample_scenes, scene_keys

__all__ = [
    "MODALITIES",
    "MultimodalData",
    "make_multimodal_data",
    "multimodal_dataset",
]

MODALITIES = ("image", "text", "audio")


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
