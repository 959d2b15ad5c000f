"""Shared pieces of the file readers: image checks and box clean-up (clip, drop empty)."""

from __future__ import annotations

import os

import numpy as np
from keras.utils import bounding_boxes

from zoo.data.detection import from_files
from zoo.data.errors import CLIPPED, DROPPED_EMPTY, DataError

# Formats tf.io.decode_image reads (WEBP too in recent TF, but keep to the documented four).
DECODABLE_FORMATS = ("JPEG", "PNG", "GIF", "BMP")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
CHECK_MODES = ("header", "full", "none")


def check_image(path, check="header", field="image"):
    """Checks an image file and returns its ``(width, height)``.

    Args:
        path: Image file.
        check: ``"header"`` (PIL reads the header: format and size, cheap), ``"full"`` (PIL
            decodes every pixel, catches truncated files) or ``"none"`` (only existence; returns
            ``None``).
        field: Field name used in errors.

    Returns:
        ``(width, height)`` or ``None`` with ``check="none"``.

    Raises:
        DataError: The file is missing, not an image, or a format tf cannot decode.
    """
    if check not in CHECK_MODES:
        raise ValueError(f"check_images must be one of {CHECK_MODES}. Received: {check!r}")
    if not os.path.isfile(path):
        raise DataError("image file not found", file=path)
    if check == "none":
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            image_format, size = image.format, image.size
            if check == "full":
                image.load()
    except Exception as error:  # PIL raises many kinds (UnidentifiedImageError, OSError, ...)
        raise DataError(f"cannot decode image ({error})", file=path) from error
    if image_format not in DECODABLE_FORMATS:
        raise DataError(
            f"image format {image_format} is not decodable by tf.io.decode_image "
            f"(use one of {', '.join(DECODABLE_FORMATS)})",
            file=path,
        )
    return size


def read_text(path, what="file"):
    """The text of a UTF-8 file (a UTF-8 byte-order mark is skipped).

    Raises:
        DataError: The file is missing, unreadable, or not UTF-8 (names the byte offset, and
            UTF-16 when the file starts with its byte-order mark).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{what} not found", file=path) from None
    except OSError as error:
        raise DataError(f"cannot read {what} ({error.strerror or error})", file=path) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("is UTF-16 text; save it as UTF-8", file=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"not UTF-8 text (byte {error.start} = {data[error.start : error.start + 1]!r}); "
            "save it as UTF-8",
            file=path,
        ) from None


def walk_files(folder):
    """Every file under ``folder`` (recursively, sorted), following folder links once each, so
    a link back to a parent folder does not loop."""
    seen, found = set(), []
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(current, d)) not in seen]
        found += [os.path.join(current, f) for f in files]
    return sorted(found)


def first_file(candidates):
    """The first of ``candidates`` that is a file, else ``None``."""
    return next((c for c in candidates if os.path.isfile(c)), None)


def clean_boxes(boxes, heights, widths, report, location):
    """Clips boxes to their images, drops the ones left with no area, and counts both.

    Args:
        boxes: (N, 4) float, absolute pixels "xyxy".
        heights: (N,) image height of each box.
        widths: (N,) image width of each box.
        report: ``DataReport`` to count into.
        location: ``i -> str`` naming box ``i`` for the report's examples.

    Returns:
        ``(boxes, keep)``: the clipped (N, 4) float32 boxes and a boolean (N,) mask of boxes kept.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return boxes.astype(np.float32), np.zeros((0,), bool)
    heights = np.asarray(heights, np.float32).reshape(-1, 1)
    widths = np.asarray(widths, np.float32).reshape(-1, 1)
    # A box with a non-finite corner (e.g. an overflow of huge inputs) is dropped and counted;
    # huge finite corners are brought into float32 range before clipping.
    finite = np.all(np.isfinite(boxes), axis=1)
    safe = np.where(finite[:, None], np.clip(boxes, -1e7, 1e7), 0.0).astype(np.float32)
    clipped = bounding_boxes.clip_to_image_size(
        {"boxes": safe, "labels": np.zeros(len(boxes), np.int32)},
        height=heights,
        width=widths,
        bounding_box_format="xyxy",
    )
    new_boxes = np.asarray(clipped["boxes"], np.float32)
    # clip_to_image_size marks zero-area boxes with label -1; also catch inverted boxes
    # (x2 < x1 gives a positive product of two negative sides).
    keep = (np.asarray(clipped["labels"]) >= 0) & finite
    keep &= (new_boxes[:, 2] > new_boxes[:, 0]) & (new_boxes[:, 3] > new_boxes[:, 1])
    with np.errstate(invalid="ignore", over="ignore"):
        # compared in float32, so round-off of large coordinates is not counted as a change
        changed = np.any(np.abs(new_boxes - boxes.astype(np.float32)) > 1e-3, axis=1)
    for i in np.flatnonzero(~keep):
        report.add(DROPPED_EMPTY, f"{location(i)} = {_fmt(boxes[i])}")
    for i in np.flatnonzero(changed & keep):
        report.add(CLIPPED, f"{location(i)} = {_fmt(boxes[i])}")
    return new_boxes, keep


def _fmt(box):
    return "[" + ", ".join(f"{v:g}" for v in box) + "] (xyxy)"


# Coordinates and sizes beyond this are surely wrong (and overflow float32 on the way).
MAX_COORDINATE = 1e30


def to_float(value, file, field, strict=False):
    """``float(value)`` or a ``DataError`` naming the file, field and value.

    With ``strict`` (JSON) only numbers are accepted, not strings or booleans; a string with
    ``_`` (which Python's ``float`` reads as a digit separator) is never a number.
    """
    bad_type = isinstance(value, bool) or (
        not isinstance(value, (int, float)) if strict else isinstance(value, str) and "_" in value
    )
    if bad_type:
        raise DataError("not a number", file=file, field=field, value=value)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError("not a number", file=file, field=field, value=value) from None
    if not np.isfinite(number):
        raise DataError("not a finite number", file=file, field=field, value=value)
    if abs(number) > MAX_COORDINATE:
        raise DataError(
            f"out of range (more than {MAX_COORDINATE:g})", file=file, field=field, value=value
        )
    return number


def to_size(value, file, field, strict=False):
    """An image width or height: a finite number > 0, else ``DataError``."""
    number = to_float(value, file, field, strict)
    if number <= 0:
        raise DataError("must be > 0", file=file, field=field, value=value)
    return number


def split_per_image(values, owner, num_images, width):
    """Groups rows of ``values`` by ``owner`` index into ``num_images`` arrays (order kept)."""
    if num_images == 0:
        return []
    values = np.asarray(values).reshape((-1, width) if width else (-1,))
    owner = np.asarray(owner, np.int64)
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=num_images)
    return np.split(values[order], np.cumsum(counts)[:-1])


def finish_reader(paths, boxes, keep, owners, labels, *, class_names, report, source):
    """The end every file reader shares: keep the cleaned boxes, group them per image, log the
    report and build the ``DetectionData``."""
    owners = np.asarray(owners, np.int64)[keep]
    report.log(source)
    return from_files(
        paths,
        split_per_image(boxes[keep], owners, len(paths), 4),
        split_per_image(np.asarray(labels, np.int32)[keep], owners, len(paths), 0),
        class_names=class_names,
        report=report,
        source=source,
    )
