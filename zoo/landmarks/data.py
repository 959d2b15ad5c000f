"""Landmark data in one layout, from any source: TFDS ``celeb_a``, iBUG / 300-W ``.pts`` folders,
CelebA-style ``.txt`` / ``.csv`` landmark tables, the embedded synthetic faces
(``zoo.landmarks.faces``).

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

import csv
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
# A coordinate beyond this many pixels is garbage (and would overflow float32 on resizing).
MAX_COORDINATE = 1e6


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


def _coordinate(text, name, path, number, shown):
    """``float(text)`` for the point coordinate ``name`` on line ``number`` of ``path``, or a
    DataError (showing ``shown``) when it is not a finite number within ``MAX_COORDINATE``."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{name} is not a number", file=path, field=f"line {number}", value=shown
        ) from None
    if not math.isfinite(value):
        raise DataError(
            f"{name} is not a finite number", file=path, field=f"line {number}", value=shown
        )
    if abs(value) > MAX_COORDINATE:
        raise DataError(
            f"{name} is beyond {MAX_COORDINATE:,.0f} pixels: not an image coordinate",
            file=path,
            field=f"line {number}",
            value=shown,
        )
    return value


def read_pts(path, num_landmarks=None):
    """Reads one iBUG ``.pts`` file (``version: 1``, ``n_points: N``, ``{``, N ``x y`` lines, ``}``).

    Args:
        path: the ``.pts`` file.
        num_landmarks: expected number of points (``None``: whatever ``n_points`` says).

    Returns:
        float64 ``(N, 2)`` array of the coordinates as written.

    Raises:
        DataError: naming the file, the line and the value, for a file that is not ASCII /
            UTF-8 text, a missing, repeated or non-positive ``n_points``, a missing brace, a
            point count that disagrees with ``n_points`` or ``num_landmarks``, or a
            non-numeric / NaN / infinite / huge (beyond ``MAX_COORDINATE``) coordinate.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise DataError(
            f"cannot read the .pts file ({error.strerror or error})", file=path
        ) from None
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"not ASCII / UTF-8 text (byte {data[error.start : error.start + 1]!r} at offset "
            f"{error.start}); a .pts file is plain text",
            file=path,
            field=f"line {line}",
        ) from None
    n_points = None
    start = None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("n_points"):
            if n_points is not None:
                raise DataError(
                    "n_points given twice", file=path, field=f"line {number}", value=text
                )
            _, _, value = text.partition(":")
            try:
                n_points = int(value.strip())
            except ValueError:
                raise DataError(
                    "n_points must be an integer", file=path, field=f"line {number}", value=text
                ) from None
            if n_points < 1:
                raise DataError(
                    "n_points must be >= 1", file=path, field=f"line {number}", value=text
                )
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
        points.append(
            [_coordinate(f, axis, path, number, text) for axis, f in zip("xy", fields, strict=True)]
        )
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
    # rglob does not descend into symlinked folders, so a link to a parent cannot loop.
    pts_files = sorted(p for p in folder.rglob("*.pts") if p.is_file())
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
            if image.is_file() and image.resolve() not in with_points:
                report.add(PTS_SKIPPED_NO_POINTS, image)
    report.log(str(folder))

    if flip_permutation is None and expected == 68:
        flip_permutation = IBUG_68_FLIP
    if eye_indices is None and expected == 68:
        eye_indices = IBUG_68_EYES
    names = tuple(landmark_names) if landmark_names else tuple(f"p{i}" for i in range(expected))
    return _image_file_data(
        images, np.stack(points), names, flip_permutation, eye_indices, report, str(folder)
    )


def _image_file_data(files, points, names, flip_permutation, eye_indices, report, source):
    """``LandmarkData`` over image files with their (N, K, 2) pixel points: what the file
    readers (``.pts`` folders, landmark tables) share once their files are checked."""
    num = points.shape[1]
    if flip_permutation is not None:
        flip_permutation = check_flip_permutation(flip_permutation, num)
    if len(names) != num:
        raise ValueError(f"landmark_names has {len(names)} names for {num} points")
    records = tf.data.Dataset.from_tensor_slices(
        (tf.constant(files), tf.constant(points.astype(np.float32)))
    )

    def decode(path, landmarks):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape((None, None, 3))
        return make_landmark_element(image, 1.0, landmarks)

    return LandmarkData(
        records=records,
        decode_fn=decode,
        landmark_names=tuple(names),
        flip_permutation=flip_permutation,
        eye_indices=eye_indices,
        num_examples=len(files),
        report=report,
        source=source,
        files=files,
    )


# === CelebA-style landmark tables (.txt / .csv) ===

TABLE_OUTSIDE_IMAGE = "landmark points outside the image (visibility 0)"
TABLE_EXTENSIONS = (".csv", ".txt")
# CelebA's official split file, looked for beside a table (0 train, 1 validation, 2 test); the
# .csv is Kaggle's copy with an ``image_id,partition`` header.
CELEB_A_PARTITION = ("list_eval_partition.txt", "list_eval_partition.csv")
_PARTITION_SPLITS = {"train": 0, "validation": 1, "test": 2}


def _decode_table(path, what):
    """The lines of a UTF-8 text file (a BOM is fine), or DataError naming the file and line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise DataError(
            f"cannot read the {what} ({error.strerror or error}); check --data", file=path
        ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"the {what} is UTF-16 text; save it as UTF-8", file=path)
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"not ASCII / UTF-8 text (byte {data[error.start : error.start + 1]!r} at offset "
            f"{error.start}); save the {what} as UTF-8",
            file=path,
            field=f"line {line}",
        ) from None


def _pair_columns(names, path, number):
    """Landmark names from x/y column names: ``a_x, a_y`` (-> ``a``) or ``x1, y1`` (-> ``p1``)."""
    if not names or len(names) % 2:
        return None
    landmarks = []
    for i in range(0, len(names), 2):
        x, y = names[i].lower(), names[i + 1].lower()
        if x[-1:] == "x" and y[-1:] == "y" and x[:-1] == y[:-1] and x[:-1].strip("_-. "):
            landmarks.append(x[:-1].rstrip("_-. "))
        elif x[:1] == "x" and y[:1] == "y" and x[1:] == y[1:]:
            suffix = x[1:].lstrip("_-. ")
            landmarks.append(f"p{suffix}" if suffix else f"p{i // 2}")
        else:
            return None
    if len(set(landmarks)) != len(landmarks):
        raise DataError(
            "two x/y column pairs have the same name", file=path, field=f"line {number}",
            value=" ".join(names),
        )  # fmt: skip
    return tuple(landmarks)


def _split_row(line, comma):
    if not comma:
        return line.split()
    try:
        return [field.strip() for field in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return None


def _parse_landmark_table(path):
    """``(names, points (N, K, 2) float64 as written, line numbers, landmark names)``."""
    lines = _decode_table(path, "landmark table")
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise DataError("empty landmark table (check --data)", file=path)
    count = None
    first_number, first = numbered[0]
    if first.isascii() and first.isdigit():  # CelebA's .txt: line 1 is the image count
        count = int(first)
        numbered = numbered[1:]
        if not numbered:
            raise DataError("no column names after the image count", file=path, field="line 2")
    header_number, header = numbered[0]
    comma = "," in header
    columns = _split_row(header, comma)
    if columns is None:
        raise DataError("unreadable header", file=path, field=f"line {header_number}")
    landmarks = _pair_columns(columns, path, header_number)
    image_column = landmarks is None  # CSV: the header names the image column too
    if image_column:
        landmarks = _pair_columns(columns[1:], path, header_number)
    if landmarks is None:
        raise DataError(
            "the header must name the image column, then x/y column pairs "
            "(lefteye_x,lefteye_y,... or x1,y1,x2,y2,...)",
            file=path,
            field=f"line {header_number}",
            value=header[:200],
        )
    num_fields = 1 + 2 * len(landmarks)
    axis_names = columns[1:] if image_column else columns
    images, points, numbers, seen = [], [], [], {}
    for number, line in numbered[1:]:
        fields = _split_row(line, comma)
        if fields is None or len(fields) != num_fields:
            got = "unreadable" if fields is None else f"{len(fields)} fields"
            raise DataError(
                f"wrong number of fields: {got}, the header asks for {num_fields} "
                f"(image + {len(landmarks)} x/y pairs)",
                file=path,
                field=f"line {number}",
                value=line[:200],
            )
        name = fields[0]
        if not name or not name.isprintable():
            raise DataError("bad image name", file=path, field=f"line {number}", value=name[:200])
        if name in seen:
            raise DataError(
                f"image listed twice (lines {seen[name]} and {number})",
                file=path,
                field=f"line {number}",
                value=name,
            )
        seen[name] = number
        row = [
            _coordinate(field, column, path, number, field)
            for column, field in zip(axis_names, fields[1:], strict=True)
        ]
        images.append(name)
        points.append(row)
        numbers.append(number)
    if not images:
        raise DataError("no image rows after the header", file=path)
    if count is not None and count != len(images):
        raise DataError(
            f"line 1 says {count} images, the table lists {len(images)}: a truncated or "
            "edited file? Fix or delete line 1 if the rows are what you want",
            file=path,
            field=f"line {first_number}",
            value=count,
        )
    points = np.asarray(points, np.float64).reshape(len(images), len(landmarks), 2)
    return images, points, numbers, landmarks


def _image_folders(path, image_dir):
    if image_dir is not None:
        return [Path(image_dir)]
    here = path.parent
    # The unaligned list's points belong to the in-the-wild images: never pair it with the
    # aligned crops (and the other way round).
    if path.stem.lower().startswith("list_landmarks_celeba"):
        return [here / "img_celeba", here / "images", here]
    return [here / "img_align_celeba", here / "images", here]


def _read_partition(path, images):
    """CelebA split of each image (0, 1, 2) from ``list_eval_partition.txt`` (or ``.csv``)."""
    partition = {}
    for number, line in enumerate(_decode_table(path, "split file"), 1):
        fields = [f.strip() for f in line.split(",")] if "," in line else line.split()
        if not fields or (number == 1 and fields == ["image_id", "partition"]):
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(
                "a split line must be 'image 0|1|2'", file=path, field=f"line {number}",
                value=line[:200],
            )  # fmt: skip
        partition[fields[0]] = int(fields[1])
    missing = [name for name in images if name not in partition]
    if missing:
        raise DataError(
            f"{len(missing)} images of the landmark table have no split here (e.g. "
            f"{missing[0]!r}); remove or complete the file",
            file=path,
        )
    return [partition[name] for name in images]


def read_landmark_table(
    path,
    image_dir=None,
    *,
    split=None,
    check_images="header",
    one_based=False,
    flip_permutation=None,
    eye_indices=None,
    landmark_names=None,
):
    """Reads a CelebA-style landmark table: one row per image, x/y column pairs.

    Accepted layouts (blank lines are ignored; a UTF-8 BOM is fine):

    - CelebA's ``list_landmarks_align_celeba.txt`` / ``list_landmarks_celeba.txt``: line 1 the
      image count, line 2 the column names (``lefteye_x lefteye_y ... rightmouth_y``, no image
      column), then ``000001.jpg 69 109 106 113 ...`` per image, whitespace-separated. The
      count line is optional; when present it must equal the number of rows.
    - A CSV with a header (``image_id,lefteye_x,lefteye_y,...`` as in
      ``list_landmarks_align_celeba.csv``, or ``image,x1,y1,...,xK,yK``): the first column is
      the image, the rest pair up as ``*_x, *_y`` or ``x1, y1``. ``K`` is the number of pairs.

    Coordinates are pixels in the original image, 0-based pixel centres (CelebA's, as in
    ``read_celeb_a``) made continuous with ``+ 0.5``; ``one_based=True`` reads 1-based centres
    (``- 0.5``). Every row holds the object (presence 1). A point outside the image gets
    visibility 0 and is counted in the report (``TABLE_OUTSIDE_IMAGE``; needs image sizes, so
    not with ``check_images="none"``).

    Images: under ``image_dir``, else the first of ``img_align_celeba/`` (``img_celeba/`` for
    the unaligned ``list_landmarks_celeba.*``), ``images/`` beside the table, or the table's
    folder, that holds the first listed image. Names may hold sub-folders.

    Args:
        path: the ``.txt`` or ``.csv`` table.
        image_dir: the image folder (see above).
        split: ``None`` (every row), or ``"train"`` / ``"validation"`` (or ``"test"`` with a
            split file): CelebA's ``list_eval_partition.txt`` (or ``.csv``) beside the table,
            else the first 90 % of the rows train and the rest validate.
        check_images: ``"header"``, ``"full"`` or ``"none"`` (see
            ``zoo.data.readers._common.check_image``); only the images of ``split`` are checked.
        one_based: see above.
        flip_permutation: left/right permutation for flips (CelebA's five columns: built in;
            otherwise ``None`` disables flipping).
        eye_indices: eyes for NME (CelebA's five: ``(0, 1)``).
        landmark_names: names of the points (default: from the header; CelebA's five get
            ``CELEB_A_LANDMARKS``).

    Returns:
        ``LandmarkData`` with ``files`` set, rows in table order.

    Raises:
        DataError: naming the file (and line): unreadable or not UTF-8 (UTF-16, latin-1), empty,
            a header whose columns do not pair up, a row with the wrong number of fields, an
            empty or repeated image name, a non-numeric / NaN / infinite / huge (beyond
            ``MAX_COORDINATE``) coordinate, a count line that disagrees with the rows (no
            repair: it usually means a truncated file), a missing image (listing the folders
            tried) or an unreadable one, a split file that misses images of the table.

    Example:
    ```python
    data = read_landmark_table("celeba/list_landmarks_align_celeba.txt", split="validation")
    ```
    """
    from zoo.data.readers._common import CHECK_MODES, check_image

    if check_images not in CHECK_MODES:
        raise ValueError(f"check_images must be one of {CHECK_MODES}. Received: {check_images!r}")
    path = Path(path)
    if not os.path.isfile(path):
        raise DataError("landmark table not found (check --data)", file=path)
    names, points, numbers, columns = _parse_landmark_table(path)

    source = str(path)
    if split is not None:
        partition_file = next(
            (path.parent / n for n in CELEB_A_PARTITION if os.path.isfile(path.parent / n)), None
        )
        if partition_file is not None:
            if split not in _PARTITION_SPLITS:
                raise ValueError(
                    f"split must be one of {tuple(_PARTITION_SPLITS)}. Received: split={split!r}"
                )
            wanted = _PARTITION_SPLITS[split]
            keep = [i for i, s in enumerate(_read_partition(partition_file, names)) if s == wanted]
        else:
            if split not in ("train", "validation"):
                raise ValueError(
                    f"split must be 'train' or 'validation'. Received: split={split!r}"
                )
            cut = int(round(0.9 * len(names)))
            keep = list(range(cut)) if split == "train" else list(range(cut, len(names)))
        if not keep:
            raise DataError(f"no rows for split {split!r}", file=path)
        names = [names[i] for i in keep]
        numbers = [numbers[i] for i in keep]
        points = points[keep]
        source = f"{source}[{split}]"

    folders = _image_folders(path, image_dir)
    folder = next(
        (f for f in folders if os.path.isfile(os.path.join(f, names[0]))),
        None,
    )
    if folder is None:
        hint = (
            "check --image-dir (image_dir= in Python)"
            if image_dir is not None
            else f"put the images in {folders[0].name}/ beside the --data table, or pass "
            "--image-dir (image_dir= in Python)"
        )
        raise DataError(
            f"image {names[0]!r} not found in any of: {', '.join(str(f) for f in folders)} "
            f"({hint})",
            file=path,
            field=f"line {numbers[0]}",
        )
    points = points - 0.5 if one_based else points + 0.5
    report = DataReport()
    files = []
    for name, number, marks in zip(names, numbers, points, strict=True):
        image = os.path.join(folder, name)
        if not os.path.isfile(image):
            raise DataError(
                f"image {name!r} not found in {folder} (the folder that holds the first "
                "listed image; tried "
                f"{', '.join(str(f) for f in folders)})",
                file=path,
                field=f"line {number}",
            )
        size = check_image(image, check_images)
        if size is not None:
            width, height = size
            outside = (
                (marks[:, 0] < 0)
                | (marks[:, 0] > width)
                | (marks[:, 1] < 0)
                | (marks[:, 1] > height)
            )
            if outside.any():
                report.add(TABLE_OUTSIDE_IMAGE, f"{path}: line {number}", int(outside.sum()))
        files.append(image)
    report.log(source)

    celeb_a = tuple(columns) == _CELEB_A_FIELDS
    if flip_permutation is None and celeb_a:
        flip_permutation = CELEB_A_FLIP
    if eye_indices is None and celeb_a:
        eye_indices = (0, 1)
    if landmark_names:
        names_out = tuple(landmark_names)
    else:
        names_out = CELEB_A_LANDMARKS if celeb_a else columns
    return _image_file_data(files, points, names_out, flip_permutation, eye_indices, report, source)


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
            (``read_celeb_a``), a ``.txt`` / ``.csv`` landmark table (``read_landmark_table``:
            CelebA's ``list_eval_partition.txt`` beside it gives the splits, else the first
            90 % of rows train and the rest validate) or a folder of ``.pts`` files. A folder
            with ``train/`` and ``val/`` (or ``validation/`` / ``test/``) subfolders gives
            those splits; a flat folder gives its first 90 % of files (sorted) for ``"train"``
            and the rest for ``"validation"``.
        split: ``"train"`` or ``"validation"`` (TFDS: any split string).
        **kwargs: passed to the reader (``synthetic_faces``: ``num_images``, ``image_size``,
            ``seed``...; ``read_pts_folder``: ``num_landmarks``, ``flip_permutation``...;
            ``read_landmark_table``: ``image_dir``, ``check_images``...).

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
    if source.lower().endswith(TABLE_EXTENSIONS):
        return read_landmark_table(source, split=split, **kwargs)
    if kwargs.get("image_dir") is not None:
        raise DataError(
            "--image-dir applies to a landmark table (.txt / .csv); a .pts folder keeps each "
            "image beside its .pts file",
            field="--image-dir",
            value=kwargs["image_dir"],
        )
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
