"""Folders of (image, audio, text) triples: ``FOLDER/pairs.csv`` read into ``MultimodalData``,
and ``write_speech_folder``, which writes the embedded scenes with spoken captions as one.

Format: ``FOLDER/pairs.csv``, UTF-8, a header row, one triple per row. Paths are relative to
``FOLDER`` (or absolute).

==============  =========  ============================================================
column          required   meaning
==============  =========  ============================================================
``image``       yes        PNG or JPEG file (any size: resized to ``image_size``)
``audio``       yes        16-bit PCM WAV file (any rate, mono or stereo: brought to the
                           ``audio_config``'s rate, channels and length)
``text``        yes        the caption (non-empty)
``label``       no         int class of the item (zero-shot and supervised evaluation)
``key``         no         int retrieval key: items with one key describe the same thing
                           (default: ``label``, else identical captions share a key)
``split``       no         ``train`` / ``test`` / any name (``read_multimodal_folder(split=)``)
``attributes``  no         scene objects ``"shape colour size position"``, ``;``-separated
others          no         kept in the file, ignored (``write_speech_folder`` adds ``voice``,
                           ``speed``, ``pitch``)
==============  =========  ============================================================

A bad row raises a ``DataError`` naming the file, the line and the column (a missing caption,
a missing file, a broken WAV, an image that does not decode).

Example:
    >>> write_speech_folder("/tmp/scenes", num_train=2000, num_test=500)  # doctest: +SKIP
    >>> train = read_multimodal_folder("/tmp/scenes", split="train")      # doctest: +SKIP
    >>> train.spectrograms.shape                                          # doctest: +SKIP
    (4000, 125, 40, 1)
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.data.readers.wav import read_wav
from zoo.multimodal.audio import SPEECH_AUDIO, log_mel_spectrogram
from zoo.multimodal.captions import CaptionTokenizer, caption_max_length, scene_captions
from zoo.multimodal.data import MODALITIES, MultimodalData
from zoo.multimodal.scenes import render_scene, sample_scenes, scene_keys, scene_rng
from zoo.multimodal.speech import (
    SPEECH_PITCHES,
    SPEECH_SPEEDS,
    TEST_VOICES,
    TRAIN_VOICES,
    synthesize_speech,
)

__all__ = [
    "PAIRS_FILE",
    "REQUIRED_COLUMNS",
    "load_multimodal_folder",
    "read_multimodal_folder",
    "subset",
    "write_speech_folder",
]

PAIRS_FILE = "pairs.csv"
REQUIRED_COLUMNS = ("image", "audio", "text")
SPEECH_MANIFEST = "speech.json"


# === Reading ===


def _read_rows(folder):
    path = Path(folder) / PAIRS_FILE
    if not Path(folder).is_dir():
        raise DataError(
            f"not a folder (expected a folder holding {PAIRS_FILE})", file=os.fspath(folder)
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(
            f"{PAIRS_FILE} not found (columns {', '.join(REQUIRED_COLUMNS)}, see "
            "zoo.multimodal.folder)",
            file=path,
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"not UTF-8 text (byte {error.start}); save it as UTF-8", file=path
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)} (header must name "
            f"{', '.join(REQUIRED_COLUMNS)}; label, key, split optional)",
            file=path,
            field="line 1",
            value=",".join(header),
        )
    reader.fieldnames = header
    rows = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}))
    return path, header, rows


def _int(value, path, field):
    try:
        return int(value)
    except ValueError:
        raise DataError("not an integer", file=path, field=field, value=value) from None


def _attributes(value, path, field, max_objects):
    out = np.full((max_objects, 4), -1, np.int32)
    objects = [o for o in value.split(";") if o.strip()]
    if len(objects) > max_objects:
        raise DataError(f"more than {max_objects} objects", file=path, field=field, value=value)
    for j, obj in enumerate(objects):
        numbers = obj.split()
        if len(numbers) != 4:
            raise DataError(
                "expected 'shape colour size position' per object",
                file=path,
                field=field,
                value=value,
            )
        out[j] = [_int(n, path, field) for n in numbers]
    return out


def _read_image(path, size, field):
    if not os.path.isfile(path):
        raise DataError("image file not found", file=path, field=field)
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise DataError(f"cannot decode image ({message})", file=path, field=field) from None
    if image.shape[0] != size or image.shape[1] != size:
        image = tf.image.resize(image, (size, size), antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image.numpy()


def read_multimodal_folder(
    folder,
    split=None,
    modalities=MODALITIES,
    image_size=32,
    tokenizer=None,
    audio_config=None,
    max_objects=None,
):
    """Reads ``FOLDER/pairs.csv`` (see the module docstring) into ``MultimodalData``.

    Args:
        folder: the folder.
        split: keep only rows whose ``split`` column is this (``None``: every row).
        modalities: which of ``"image"``, ``"text"``, ``"audio"`` to load (captions are always
            read; files of other modalities are not opened).
        image_size: side images are resized to.
        tokenizer: ``CaptionTokenizer`` for the tokens (default: 16 tokens, more when the
            ``attributes`` column holds several objects).
        audio_config: ``AudioConfig`` of the spectrograms (default ``SPEECH_AUDIO``): WAVs are
            mixed to its channel count (1: mono), resampled to its rate and cropped / padded
            to its duration.
        max_objects: objects per scene in ``attributes`` (default: the most in the file, 1
            without the column).

    Returns:
        ``MultimodalData`` (``indices``: row numbers in the file; ``split``: the ``split``
        argument or ``"folder"``; ``shape_labels``: the ``label`` column, -1 without it;
        ``attributes``: -1 without the column).

    Raises:
        DataError: naming the file, line and column of a bad row, or a missing file or column.
    """
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown:
        raise ValueError(f"modalities must be among {MODALITIES}. Received: {list(modalities)}")
    config = SPEECH_AUDIO if audio_config is None else audio_config
    folder = Path(folder)
    path, header, rows = _read_rows(folder)
    if split is not None:
        if "split" not in header:
            raise DataError(
                f"no split column, so split={split!r} cannot be selected", file=path, field="line 1"
            )
        rows = [(line, row) for line, row in rows if row["split"] == split]
        if not rows:
            raise DataError(f"no rows with split {split!r}", file=path, field="split")
    elif not rows:
        raise DataError("no rows after the header", file=path)

    def where(line, column):
        return f"line {line}: {column}"

    def resolve(line, column, row):
        value = row[column]
        if not value:
            raise DataError(f"empty {column} path", file=path, field=where(line, column))
        return os.fspath(folder / value)

    captions, labels, keys, attributes = [], [], [], []
    has_attributes = "attributes" in header and all(row["attributes"] for _, row in rows)
    if max_objects is None:
        max_objects = (
            max(
                [len([o for o in row["attributes"].split(";") if o.strip()]) for _, row in rows]
                or [1]
            )
            if has_attributes
            else 1
        )
    for line, row in rows:
        if not row["text"]:
            raise DataError("missing caption", file=path, field=where(line, "text"), value="")
        captions.append(" ".join(row["text"].split()))
        label = row.get("label", "")
        labels.append(_int(label, path, where(line, "label")) if label else -1)
        key = row.get("key", "")
        keys.append(_int(key, path, where(line, "key")) if key else None)
        if has_attributes:
            attributes.append(
                _attributes(row["attributes"], path, where(line, "attributes"), max_objects)
            )
    n = len(rows)
    labels = np.asarray(labels, np.int32)
    if all(k is not None for k in keys):
        keys = np.asarray(keys, np.int64)
    elif (labels >= 0).all():
        keys = labels.astype(np.int64)
    else:  # identical captions describe the same thing
        keys = np.unique(np.asarray(captions), return_inverse=True)[1].astype(np.int64)
    attributes = (
        np.stack(attributes) if has_attributes else np.full((n, max_objects, 4), -1, np.int32)
    )
    images = tokens = spectrograms = None
    if "image" in modalities:
        images = np.stack(
            [
                _read_image(resolve(line, "image", row), image_size, where(line, "image"))
                for line, row in rows
            ]
        )
    if "text" in modalities:
        tokenizer = tokenizer or CaptionTokenizer(caption_max_length(max_objects))
        tokens = tokenizer(captions).numpy().astype(np.int32)
    if "audio" in modalities:
        chunks, waves = [], []
        for line, row in rows:
            wave, _ = read_wav(
                resolve(line, "audio", row),
                sample_rate=config.sample_rate,
                num_samples=config.num_samples,
                channels=config.channels,
                field=f"{path}: {where(line, 'audio')}",
            )
            waves.append(wave)
            if len(waves) == 256:
                chunks.append(log_mel_spectrogram(np.stack(waves), config).numpy())
                waves = []
        if waves:
            chunks.append(log_mel_spectrogram(np.stack(waves), config).numpy())
        spectrograms = np.concatenate(chunks)
    return MultimodalData(
        attributes=attributes,
        keys=keys,
        shape_labels=labels,
        images=images,
        captions=captions,
        tokens=tokens,
        spectrograms=spectrograms,
        indices=np.asarray([line for line, _ in rows], np.int64),
        seed=0,
        split=split if split is not None else "folder",
    )


def subset(data, rows):
    """The ``MultimodalData`` of the items ``rows`` (an index array) of ``data``."""
    rows = np.asarray(rows, np.int64)

    def take(value):
        if value is None:
            return None
        if isinstance(value, list):
            return [value[i] for i in rows]
        return value[rows]

    return data._replace(
        **{
            f: take(getattr(data, f))
            for f in data._fields
            if f not in ("seed", "split") and getattr(data, f) is not None
        }
    )


def load_multimodal_folder(folder, num_test=1000, seed=0, **kwargs):
    """Training and held-out ``MultimodalData`` of a folder.

    With a ``split`` column the rows ``train`` and ``test`` are the two sets; without it
    ``min(num_test, rows // 2)`` random rows (drawn with ``seed``) are held out.

    Args:
        folder: the folder; **kwargs: as ``read_multimodal_folder``.

    Returns:
        ``(train, test)``.
    """
    path, header, _ = _read_rows(folder)
    if "split" in header:
        train = read_multimodal_folder(folder, "train", **kwargs)
        return train, read_multimodal_folder(folder, "test", **kwargs)
    data = read_multimodal_folder(folder, **kwargs)
    n = len(data.keys)
    if n < 2:
        raise DataError("needs at least 2 rows to hold some out for evaluation", file=path)
    order = np.random.default_rng(seed).permutation(n)
    held = min(int(num_test), n // 2)
    return subset(data, np.sort(order[held:])), subset(data, np.sort(order[:held]))


# === Writing the embedded scenes ===


def _attribute_text(scene):
    return ";".join(" ".join(str(int(v)) for v in obj) for obj in scene if obj[0] >= 0)


def write_speech_folder(
    folder,
    num_train=2000,
    num_test=500,
    seed=0,
    train_voices=TRAIN_VOICES,
    test_voices=TEST_VOICES,
    renditions=2,
    speeds=SPEECH_SPEEDS,
    pitches=SPEECH_PITCHES,
    max_objects=1,
    image_size=32,
    partial_captions=0.0,
    workers=2,
    cache_dir=None,
):
    """Writes the embedded scenes as a folder of (image, spoken caption, caption) triples.

    The ``train`` rows are scenes ``0 .. num_train - 1`` of the ``"train"`` stream, each said
    ``renditions`` times by random ``train_voices``; the ``test`` rows are scenes of the
    ``"test"`` stream, said once each by random ``test_voices``. Speeds and pitches are drawn
    from ``speeds`` and ``pitches`` (a few values, so repeated captions hit the cache).
    Every draw depends on ``(seed, split, index)`` only. Images go to ``images/<split>/``,
    WAVs to ``cache_dir`` (default ``FOLDER/audio``; existing files are reused), and the
    synthesis statistics to ``FOLDER/speech.json``.

    Args:
        folder: where to write (created; ``pairs.csv`` is replaced).
        num_train, num_test: training and held-out scenes.
        seed: data seed (as ``make_multimodal_data``).
        train_voices, test_voices: espeak-ng voices of each split.
        renditions: spoken versions of each training scene.
        speeds, pitches: espeak-ng ``-s`` and ``-p`` values drawn from.
        max_objects, image_size, partial_captions: as ``make_multimodal_data`` (partial
            captions in the training rows only).
        workers: espeak-ng processes at a time.
        cache_dir: WAV cache folder (shareable between folders).

    Returns:
        The manifest written to ``speech.json``: the arguments, ``rows`` per split and
        ``synthesis`` (``requested``, ``synthesized``, ``cached``, ``seconds``).

    Raises:
        DataError: espeak-ng is missing or fails.
    """
    folder = Path(folder)
    cache = Path(cache_dir) if cache_dir is not None else folder / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    rows, utterances = [], []
    plan = (("train", int(num_train), tuple(train_voices), int(renditions), partial_captions),
            ("test", int(num_test), tuple(test_voices), 1, 0.0))  # fmt: skip
    for split, num, voices, repeat, partial in plan:
        if num and not voices:
            raise ValueError(f"{split} needs at least one voice. Received: {voices!r}")
        attributes = sample_scenes(num, seed, split, max_objects)
        captions = scene_captions(attributes, seed, split, 0, partial)
        keys = scene_keys(attributes)
        image_folder = folder / "images" / split
        image_folder.mkdir(parents=True, exist_ok=True)
        for i in range(num):
            image_path = image_folder / f"{seed}-{max_objects}-{image_size}-{i:06d}.png"
            if not image_path.is_file():
                image = render_scene(attributes[i], i, seed, split, image_size)
                tf.io.write_file(str(image_path), tf.io.encode_png(image))
            for r in range(repeat):
                rng = scene_rng(seed, split, i, 4 + r)
                voice = voices[rng.integers(len(voices))]
                speed, pitch = int(rng.choice(speeds)), int(rng.choice(pitches))
                utterances.append((captions[i], voice, speed, pitch))
                rows.append(
                    {
                        "image": image_path.relative_to(folder).as_posix(),
                        "text": captions[i],
                        "label": int(attributes[i, 0, 0]),
                        "key": int(keys[i]),
                        "split": split,
                        "attributes": _attribute_text(attributes[i]),
                        "voice": voice,
                        "speed": speed,
                        "pitch": pitch,
                    }
                )
    paths, stats = synthesize_speech(*zip(*utterances, strict=True), cache, workers=workers)
    for row, wav in zip(rows, paths, strict=True):
        row["audio"] = os.path.relpath(wav, folder).replace(os.sep, "/")
    columns = [
        "image",
        "audio",
        "text",
        "label",
        "key",
        "split",
        "attributes",
        "voice",
        "speed",
        "pitch",
    ]
    partial_path = folder / f"{PAIRS_FILE}.partial"
    with open(partial_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial_path, folder / PAIRS_FILE)
    manifest = {
        "num_train": int(num_train),
        "num_test": int(num_test),
        "seed": int(seed),
        "train_voices": list(train_voices),
        "test_voices": list(test_voices),
        "renditions": int(renditions),
        "speeds": [int(s) for s in speeds],
        "pitches": [int(p) for p in pitches],
        "max_objects": int(max_objects),
        "image_size": int(image_size),
        "partial_captions": float(partial_captions),
        "rows": {s: sum(r["split"] == s for r in rows) for s in ("train", "test")},
        "synthesis": stats,
    }
    (folder / SPEECH_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
