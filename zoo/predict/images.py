"""Image files for ``python -m zoo predict``: finding them, reading them, drawing results on them.

Everything here is PIL and NumPy (no TensorFlow), so a wrong path is reported before the model
is loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "draw_detections",
    "draw_landmarks",
    "find_images",
    "output_names",
    "read_image",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Distinct, readable on light and dark images (Tableau 10).
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def find_images(inputs):
    """Image files named by ``inputs``: files as given, folders searched recursively.

    Args:
        inputs: paths of image files and / or folders. A folder contributes every file below
            it whose suffix is one of ``IMAGE_SUFFIXES`` (any case), sorted by relative path;
            a file named directly is taken whatever its suffix.

    Returns:
        A list of ``(path, relative)`` pairs: ``relative`` is the path under the folder it was
        found in (a file named directly: its name). A file reached twice is listed once.

    Raises:
        DataError: an input does not exist, or no image was found at all.
    """
    found, seen = [], set()
    for given in inputs:
        path = Path(given)
        if not path.exists():
            raise DataError(
                "no such file or folder; INPUTS are image files and / or folders of images",
                file=given,
            )
        if path.is_dir():
            files = sorted(
                (f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                key=lambda f: f.relative_to(path).as_posix(),
            )
            pairs = [(f, f.relative_to(path)) for f in files]
        else:
            pairs = [(path, Path(path.name))]
        for file, relative in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, relative))
    if not found:
        raise DataError(
            f"no images found (looked for {', '.join(IMAGE_SUFFIXES)} files, recursively)",
            file=", ".join(str(i) for i in inputs),
        )
    return found


def output_names(relatives):
    """One output stem per input: ``a/b.jpg`` -> ``a/b``, unique.

    Two inputs that would share a stem keep their suffix (``b.jpg``, ``b.png``); inputs that
    still collide (the same relative path under two folders) get ``-2``, ``-3``, ...

    Returns:
        A list of ``pathlib.Path`` stems, one per relative path, in order; add ``.json`` /
        ``.png``.
    """
    stems = [Path(r).with_suffix("") for r in relatives]
    counts = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    stems = [Path(r) if counts[s] > 1 else s for s, r in zip(stems, relatives, strict=True)]
    used, unique = set(), []
    for stem in stems:
        candidate, n = stem, 1
        while candidate in used:
            n += 1
            candidate = stem.with_name(f"{stem.name}-{n}")
        used.add(candidate)
        unique.append(candidate)
    return unique


def read_image(path, channels=3):
    """Pixels of an image file, ``uint8 (H, W, channels)`` (the first frame of a GIF).

    RGB for 3 channels, luminance for 1 (an alpha channel is dropped, as ``tf.io.decode_image``
    does).

    Raises:
        DataError: the file cannot be decoded as an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            image = image.convert("L" if channels == 1 else "RGB")
    except (
        OSError,
        ValueError,
        SyntaxError,
        UnidentifiedImageError,
        Image.DecompressionBombError,
    ) as error:
        raise DataError(f"cannot decode the image ({error})", file=path) from None
    array = np.asarray(image, np.uint8)
    return array[..., None] if array.ndim == 2 else array


def _canvas(pixels):
    from PIL import Image, ImageDraw, ImageFont

    pixels = np.asarray(pixels, np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    image = Image.fromarray(pixels).convert("RGB")
    return image, ImageDraw.Draw(image), ImageFont.load_default()


def _label(draw, font, xy, text, colour):
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=colour)
    draw.text(xy, text, fill=(255, 255, 255), font=font)


def draw_detections(pixels, detections):
    """A PIL image of ``pixels`` with each detection's box and ``"name 0.87"`` label.

    Args:
        pixels: ``uint8 (H, W, 3 or 1)``.
        detections: dicts with ``box_xyxy`` (pixels), ``score``, ``class_id`` and optionally
            ``class_name``.
    """
    image, draw, font = _canvas(pixels)
    line = max(1, round(min(image.size) / 200))
    for det in reversed(detections):  # the best box drawn last, on top
        colour = PALETTE[int(det["class_id"]) % len(PALETTE)]
        x0, y0, x1, y1 = det["box_xyxy"]
        draw.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=colour, width=line)
        name = det.get("class_name", str(det["class_id"]))
        _label(draw, font, (x0 + line, y0 + line), f"{name} {det['score']:.2f}", colour)
    return image


def draw_landmarks(pixels, presence, points):
    """A PIL image of ``pixels`` with each landmark as a dot (colour by index) and the presence score."""
    image, draw, font = _canvas(pixels)
    radius = max(1.5, min(image.size) / 80)
    for i, (x, y) in enumerate(points):
        colour = PALETTE[i % len(PALETTE)]
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius), fill=colour, outline=(0, 0, 0)
        )
    _label(draw, font, (2, 2), f"presence {presence:.2f}", PALETTE[0])
    return image
