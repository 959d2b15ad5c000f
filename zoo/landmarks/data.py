"""Landmark data in one layout, from any source: TFDS ``celeb_a``, iBUG / 300-W ``.pts`` folders,
the embedded synthetic faces (``zoo.landmarks.faces``).

Element layout (unbatched; every source yields it)::

    {"images": uint8 (H, W, 3),
     "presence": float32 () 1 if the object is in the image, else 0,
     "landmarks": float32 (K, 2) x, y in absolute pixels (continuous coordinates: pixel column
                  i spans [i, i + 1], so its centre is i + 0.5),
     "visibility": float32 (K,) 1 for a labelled point inside the image, 0 for a hidden one}

A point outside the image has visibility 0 (it is never clipped silently); an absent object has
presence 0 and all-zero landmarks and visibility.

``landmark_pipeline`` turns a ``LandmarkData`` into training batches
``(images float32 (B, h, w, 3) 0-255, {"presence": (B,), "landmarks": (B, K, 2) in [0, 1],
"visibility": (B, K)})``, the targets ``zoo.landmarks.model.LandmarkModel`` trains on.

Example:
```python
data = load_landmark_data("tfds:celeb_a", split="validation")
batches = landmark_pipeline(data, (96, 96), batch_size=32)
```
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError, DataReport
from zoo.data.readers.tfds_common import load_tfds
from zoo.landmarks.augment import LandmarkAugmentation, augment_landmarks
from zoo.landmarks.element import (
    LandmarkData,
    check_flip_permutation,
    make_landmark_element,
)
from zoo.landmarks.faces import synthetic_faces

AUTOTUNE = tf.data.AUTOTUNE

# CelebA's 5 landmarks in TFDS field order; "left" is the image-left side.
CELEB_A_LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
CELEB_A_FLIP = (1, 0, 2, 4, 3)
_CELEB_A_FIELDS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")

# iBUG 68-point markup (300-W), 0-based: the index each point takes after a horizontal flip.
IBUG_68_FLIP = (
    tuple(range(16, -1, -1))  # jaw 0..16
    + tuple(range(26, 16, -1))  # brows 17..26
    + (27, 28, 29, 30)  # nose bridge
    + (35, 34, 33, 32, 31)  # nose base
    + (45, 44, 43, 42, 47, 46)  # eye 36..41 <-> eye 42..47
    + (39, 38, 37, 36, 41, 40)
    + (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55)  # outer lips 48..59
    + (64, 63, 62, 61, 60, 67, 66, 65)  # inner lips 60..67
)
IBUG_68_EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))  # pupil = mean of the eye

PTS_SKIPPED_NO_POINTS = "images without a .pts file skipped"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


# === TFDS celeb_a ===


def read_celeb_a(split="train", data_dir=None, *, download=False):
    """CelebA's aligned faces with their 5 landmarks, from TFDS (``celeb_a``).

    Every image holds a face (presence 1). Coordinates are read as 0-based pixel indices and
    become pixel centres (``x + 0.5``); a point outside the image gets visibility 0.

    Args:
        split: TFDS split (``"train"``, ``"validation"``, ``"test"``, ``"train[:10%]"``).
        data_dir: TFDS data folder.
        download: let TFDS download and prepare the set (off: nothing is downloaded unasked).

    Returns:
        ``LandmarkData`` with ``CELEB_A_LANDMARKS``, ``CELEB_A_FLIP`` and eyes ``(0, 1)``.

    Raises:
        DataError: the set is not prepared in ``data_dir``.

    Example:
    ```python
    data = read_celeb_a("validation", data_dir="~/tensorflow_datasets")
    ```
    """
    source = "tfds:celeb_a"
    _, dataset = load_tfds("celeb_a", split, data_dir, download=download)

    def to_record(example):
        marks = example["landmarks"]
        points = tf.stack(
            [
                tf.stack(
                    [tf.cast(marks[f"{f}_x"], tf.float32), tf.cast(marks[f"{f}_y"], tf.float32)]
                )
                for f in _CELEB_A_FIELDS
            ]
        )
        return {"image": example["image"], "landmarks": points + 0.5}

    def decode(record):
        image = tf.io.decode_image(record["image"], channels=3, expand_animations=False)
        image.set_shape((None, None, 3))
        return make_landmark_element(image, 1.0, record["landmarks"])

    records = dataset.map(to_record)
    cardinality = int(records.cardinality())
    return LandmarkData(
        records=records,
        decode_fn=decode,
        landmark_names=CELEB_A_LANDMARKS,
        flip_permutation=CELEB_A_FLIP,
        eye_indices=(0, 1),
        num_examples=cardinality if cardinality >= 0 else None,
        report=DataReport(),
        source=source,
    )


# === iBUG / 300-W .pts ===


def read_pts(path, num_landmarks=None):
    """Reads one iBUG ``.pts`` file (``version: 1``, ``n_points: N``, ``{``, N ``x y`` lines, ``}``).

    Args:
        path: the ``.pts`` file.
        num_landmarks: expected number of points (``None``: whatever ``n_points`` says).

    Returns:
        float64 ``(N, 2)`` array of the coordinates as written.

    Raises:
        DataError: naming the file, the line and the value, for a missing header or brace,
            a point count that disagrees with ``n_points`` or ``num_landmarks``, or a
            non-numeric / NaN / infinite coordinate.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"not a text file ({error})", file=path) from None
    n_points = None
    start = None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("n_points"):
            _, _, value = text.partition(":")
            try:
                n_points = int(value.strip())
            except ValueError:
                raise DataError(
                    "n_points must be an integer", file=path, field=f"line {number}", value=text
                ) from None
        elif text.startswith("{"):
            start = number
            break
    if n_points is None:
        raise DataError("no 'n_points:' header", file=path)
    if start is None:
        raise DataError("no '{' opening the point list", file=path)
    points, end = [], None
    for number in range(start + 1, len(lines) + 1):
        text = lines[number - 1].strip()
        if not text:
            continue
        if text.startswith("}"):
            end = number
            break
        fields = text.split()
        if len(fields) != 2:
            raise DataError(
                "a point line must hold two numbers 'x y'",
                file=path,
                field=f"line {number}",
                value=text,
            )
        row = []
        for axis, field in zip("xy", fields, strict=True):
            try:
                value = float(field)
            except ValueError:
                raise DataError(
                    f"{axis} is not a number", file=path, field=f"line {number}", value=text
                ) from None
            if not math.isfinite(value):
                raise DataError(
                    f"{axis} is not a finite number", file=path, field=f"line {number}", value=text
                )
            row.append(value)
        points.append(row)
    if end is None:
        raise DataError("no '}' closing the point list", file=path)
    if len(points) != n_points:
        raise DataError(
            f"wrong number of points: the header says n_points: {n_points}, the file lists "
            f"{len(points)}",
            file=path,
        )
    if num_landmarks is not None and len(points) != num_landmarks:
        raise DataError(
            f"wrong number of points: expected {num_landmarks}, the file has {len(points)}",
            file=path,
        )
    return np.asarray(points, np.float64).reshape(-1, 2)


def _image_for(pts_path):
    for ext in IMAGE_EXTENSIONS:
        for candidate in (pts_path.with_suffix(ext), pts_path.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    tried = ", ".join(pts_path.with_suffix(e).name for e in IMAGE_EXTENSIONS)
    raise DataError(f"no image next to the .pts file (tried {tried})", file=pts_path)


def read_pts_folder(
    folder,
    num_landmarks=None,
    *,
    flip_permutation=None,
    eye_indices=None,
    landmark_names=None,
    one_based=True,
    check_images="header",
):
    """Reads an iBUG / 300-W style folder: ``name.pts`` next to ``name.jpg`` / ``.png`` (recursive).

    Every image with a ``.pts`` holds the object (presence 1); images without one are skipped
    and counted in the report. Coordinates in iBUG files are 1-based pixel centres (Matlab), so
    with ``one_based=True`` they become continuous coordinates ``x - 0.5``; ``one_based=False``
    reads 0-based centres (``x + 0.5``).

    Args:
        folder: the folder.
        num_landmarks: points per file (``None``: taken from the first file; all must agree).
        flip_permutation: left/right permutation for flip augmentation; ``None`` uses
            ``IBUG_68_FLIP`` for 68 points and disables flipping otherwise.
        eye_indices: eyes for NME (default ``IBUG_68_EYES`` for 68 points).
        landmark_names: names of the points (default ``"p0"``, ``"p1"``, ...).
        one_based: see above.
        check_images: ``"header"``, ``"full"`` or ``"none"`` (see
            ``zoo.data.readers._common.check_image``).

    Returns:
        ``LandmarkData`` with ``files`` set.

    Raises:
        DataError: naming the file: a ``.pts`` without its image, a bad ``.pts`` (see
            ``read_pts``), a point count that differs between files, an unreadable image.

    Example:
    ```python
    data = read_pts_folder("300W/01_Indoor")   # 68 points, flip permutation known
    ```
    """
    from zoo.data.readers._common import check_image

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder", file=folder)
    pts_files = sorted(folder.rglob("*.pts"))
    if not pts_files:
        raise DataError("no .pts files found", file=folder)
    report = DataReport()
    images, points = [], []
    expected = num_landmarks
    for pts in pts_files:
        coords = read_pts(pts, expected)
        if expected is None:
            expected = len(coords)
        image = _image_for(pts)
        check_image(image, check_images)
        images.append(str(image))
        points.append(coords - 0.5 if one_based else coords + 0.5)
    with_points = {Path(p).resolve() for p in images}
    for ext in IMAGE_EXTENSIONS:
        for image in folder.rglob(f"*{ext}"):
            if image.resolve() not in with_points:
                report.add(PTS_SKIPPED_NO_POINTS, image)
    report.log(str(folder))

    if flip_permutation is None and expected == 68:
        flip_permutation = IBUG_68_FLIP
    if flip_permutation is not None:
        flip_permutation = check_flip_permutation(flip_permutation, expected)
    if eye_indices is None and expected == 68:
        eye_indices = IBUG_68_EYES
    names = tuple(landmark_names) if landmark_names else tuple(f"p{i}" for i in range(expected))
    if len(names) != expected:
        raise ValueError(f"landmark_names has {len(names)} names for {expected} points")

    records = tf.data.Dataset.from_tensor_slices(
        (tf.constant(images), tf.constant(np.stack(points).astype(np.float32)))
    )

    def decode(path, landmarks):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape((None, None, 3))
        return make_landmark_element(image, 1.0, landmarks)

    return LandmarkData(
        records=records,
        decode_fn=decode,
        landmark_names=names,
        flip_permutation=flip_permutation,
        eye_indices=eye_indices,
        num_examples=len(images),
        report=report,
        source=str(folder),
        files=images,
    )


def _split_folder(folder, split):
    """``folder/train`` and ``folder/val|validation|test`` if present, else ``folder`` itself."""
    folder = Path(folder)
    names = {"train": ("train",), "validation": ("val", "validation", "valid", "test")}
    for name in names.get(split, (split,)):
        if (folder / name).is_dir():
            return folder / name, None
    return folder, split


def load_landmark_data(source="synthetic", split="train", **kwargs):
    """Any landmark source by name.

    Args:
        source: ``"synthetic"`` (``zoo.landmarks.faces.synthetic_faces``), ``"tfds:celeb_a"``
            (``read_celeb_a``) or a folder of ``.pts`` files. A folder with ``train/`` and
            ``val/`` (or ``validation/`` / ``test/``) subfolders gives those splits; a flat
            folder gives its first 90 % of files (sorted) for ``"train"`` and the rest for
            ``"validation"``.
        split: ``"train"`` or ``"validation"`` (TFDS: any split string).
        **kwargs: passed to the reader (``synthetic_faces``: ``num_images``, ``image_size``,
            ``seed``...; ``read_pts_folder``: ``num_landmarks``, ``flip_permutation``...).

    Returns:
        ``LandmarkData``.
    """
    source = str(source)
    if source == "synthetic":
        if split != "train":
            kwargs["seed"] = kwargs.get("seed", 0) + 10_000
        return synthetic_faces(**kwargs)
    if source.startswith("tfds:"):
        name = source[len("tfds:") :]
        if name.split("/")[0].split(":")[0] != "celeb_a":
            raise DataError("only celeb_a is a known TFDS landmark set", file=source)
        return read_celeb_a(split=split, **kwargs)
    folder, subset = _split_folder(source, split)
    data = read_pts_folder(folder, **kwargs)
    if subset is None:
        return data
    cut = int(round(0.9 * (data.num_examples or 0)))
    if subset not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation'. Received: split={split!r}")
    start, stop = (0, cut) if subset == "train" else (cut, data.num_examples)
    return dataclasses.replace(
        data,
        records=data.records.skip(start).take(stop - start),
        num_examples=stop - start,
        files=data.files[start:stop],
        source=f"{data.source}[{subset}]",
    )


# === Resize and batching ===


def resize_landmarks(element, size):
    """Resizes the image to ``size`` = ``(height, width)`` and scales the points with it."""
    out_h, out_w = int(size[0]), int(size[1])
    image = element["images"]
    shape = tf.shape(image)
    scale = tf.stack([out_w / tf.cast(shape[1], tf.float32), out_h / tf.cast(shape[0], tf.float32)])
    resized = tf.image.resize(image, (out_h, out_w))
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    resized = tf.ensure_shape(resized, (out_h, out_w, 3))
    return {**element, "images": resized, "landmarks": element["landmarks"] * scale}


def to_model_inputs(element):
    """Element -> ``(images float32 0-255, {"presence", "landmarks" in [0, 1], "visibility"})``."""
    image = element["images"]
    shape = tf.shape(image)
    size = tf.cast(tf.stack([shape[-2], shape[-3]]), tf.float32)
    landmarks = element["landmarks"] / size
    return tf.cast(image, tf.float32), {
        "presence": element["presence"],
        "landmarks": landmarks,
        "visibility": element["visibility"],
    }


def landmark_pipeline(
    data,
    image_size,
    batch_size,
    *,
    augment=None,
    seed=0,
    shuffle=None,
    repeat=False,
    cache=False,
    drop_remainder=False,
):
    """Batches for ``LandmarkModel.fit``: resize, optional augmentation, normalize the points.

    Args:
        data: a ``LandmarkData``.
        image_size: ``(height, width)`` of the model input.
        batch_size: batch size.
        augment: ``None`` / ``False``, ``True`` (``LandmarkAugmentation`` with the data's flip
            permutation) or a ``zoo.landmarks.augment.LandmarkAugmentation``.
        seed: shuffle and augmentation seed.
        shuffle: shuffle the records (default: when augmenting).
        repeat: repeat forever (use with ``steps_per_epoch``).
        cache: keep the decoded, resized elements in memory (small sets, e.g. synthetic faces).
        drop_remainder: drop the last partial batch.

    Returns:
        A ``tf.data.Dataset`` of ``(images, targets)`` (see ``to_model_inputs``).
    """

    size = (int(image_size[0]), int(image_size[1]))
    if augment is True:
        if data.flip_permutation is None:
            augment = LandmarkAugmentation(flip_probability=0.0)
        else:
            augment = LandmarkAugmentation(flip_permutation=data.flip_permutation)
    shuffle = bool(augment) if shuffle is None else shuffle
    ds = data.as_dataset().map(
        lambda e: resize_landmarks(e, size), num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(data.num_examples or 2048, 4096), seed=seed)
    if repeat:
        ds = ds.repeat()
    if augment:
        ds = augment_landmarks(ds, augment, seed=seed)
    ds = ds.map(to_model_inputs, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)
