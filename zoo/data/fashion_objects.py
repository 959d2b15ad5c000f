"""A detection set of real objects: Fashion-MNIST items pasted onto cluttered backgrounds.

Synthetic shapes are told apart by outline and colour alone, which flatters a detector. Here
every object is a real Fashion-MNIST item (all ten classes, the look-alikes shirt / pullover /
coat / T-shirt included) and the background holds low-contrast fragments of other items, so a
detector must learn what the items look like.

Each image is a pure function of ``(seed, index)`` (``numpy.random.default_rng([seed, index])``),
drawn on demand inside ``tf.data`` like ``synthetic_shapes``:

- background: a smooth random colour gradient, 3 to 8 low-contrast crops of other items (never
  whole items and never counted as objects), pixel noise at the end;
- objects: each 28x28 item scaled (bilinear, square) to a side drawn in ``size_range`` of the
  short image side, tinted with a random colour and contrast that stand out from the background
  under it, and alpha-composited with its own intensity as the mask: the pixels brighter than
  ``ITEM_THRESHOLD`` are the item's silhouette;
- boxes: the tight pixel-edge ``"xyxy"`` box of each item's visible silhouette after later items
  cover part of it; a position that would leave an earlier item less than ``1 - max_overlap`` of
  its area visible is drawn again (8 tries, then the item is skipped).

Items of split ``"train"`` come from the IDX training images, those of ``"validation"`` and
``"test"`` from the IDX test images (background fragments too), so training and validation
never share an item. The files are found by ``load_fashion_mnist`` (nothing is downloaded).
"""

from __future__ import annotations

import functools

import numpy as np

from zoo.data.detection import rendered_data
from zoo.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from zoo.data.synthetic import _interpolation_matrix

__all__ = ["FASHION_OBJECT_POOLS", "fashion_objects", "render_fashion_objects"]

FASHION_OBJECT_POOLS = {"train": "train", "validation": "test", "test": "test"}
ITEM_THRESHOLD = 20.0  # item intensity (0-255) above which a pixel belongs to the silhouette
MIN_CONTRAST = 120.0  # summed |RGB| difference of an item's tint from the background under it


@functools.lru_cache(maxsize=4)
def _fashion_arrays(path):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(path)
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def _item_pool(split, path):
    """``(images (N, 28, 28) uint8, labels (N,) uint8)`` of the IDX file behind ``split``."""
    if split not in FASHION_OBJECT_POOLS:
        raise ValueError(
            f"split must be one of {sorted(FASHION_OBJECT_POOLS)}. Received: split={split!r}"
        )
    return _fashion_arrays(None if path is None else str(path))[FASHION_OBJECT_POOLS[split]]


@functools.lru_cache(maxsize=256)
def _bilinear_matrix(out_len, in_len):
    """(out_len, in_len) bilinear resampling weights, half-pixel centres (as tf.image.resize)."""
    positions = np.clip((np.arange(out_len) + 0.5) * in_len / out_len - 0.5, 0, in_len - 1)
    lower = np.minimum(positions.astype(int), in_len - 2)
    frac = (positions - lower).astype(np.float32)
    weights = np.zeros((out_len, in_len), np.float32)
    weights[np.arange(out_len), lower] = 1 - frac
    weights[np.arange(out_len), lower + 1] += frac
    return weights


def _resize(pixels, height, width):
    """Bilinear resize of a 2-D array (two small matmuls)."""
    rows = _bilinear_matrix(height, pixels.shape[0])
    cols = _bilinear_matrix(width, pixels.shape[1])
    return rows @ pixels.astype(np.float32) @ cols.T


def _gradient(rng, height, width, cells=3):
    """A smooth random colour field: base colour + linear ramps + coarse noise, upsampled."""
    base = rng.uniform(30, 225, 3).astype(np.float32)
    ramp = np.linspace(-1, 1, cells + 1, dtype=np.float32)
    grid = rng.standard_normal((cells + 1, cells + 1, 3), dtype=np.float32) * np.float32(20.0)
    grid += base + rng.uniform(-40, 40, 3).astype(np.float32) * ramp[None, :, None]
    grid += rng.uniform(-40, 40, 3).astype(np.float32) * ramp[:, None, None]
    rows = np.tensordot(_interpolation_matrix(height, cells), grid, axes=1)  # (H, c+1, 3)
    image = np.einsum("wc,hck->hwk", _interpolation_matrix(width, cells), rows)
    return np.clip(image, 0, 255).astype(np.float32)


def _add_fragments(rng, image, items, exclude, short, size_range):
    """Pastes 3-8 low-contrast crops of items not in ``exclude``; returns their indices."""
    height, width = image.shape[:2]
    used = []
    for _ in range(int(rng.integers(3, 9))):
        index = int(rng.integers(len(items)))
        while index in exclude:
            index = int(rng.integers(len(items)))
        crop_h, crop_w = (int(v) for v in rng.integers(7, 17, 2))
        top, left = int(rng.integers(0, 29 - crop_h)), int(rng.integers(0, 29 - crop_w))
        crop = items[index, top : top + crop_h, left : left + crop_w]
        scale = rng.uniform(*size_range) * short / 28.0  # the scale objects are drawn at
        out_h = int(np.clip(round(crop_h * scale), 2, height))
        out_w = int(np.clip(round(crop_w * scale), 2, width))
        alpha = _resize(crop, out_h, out_w)[..., None] / np.float32(255.0)
        alpha *= np.float32(rng.uniform(0.3, 0.6))  # low contrast
        y0, x0 = int(rng.integers(0, height - out_h + 1)), int(rng.integers(0, width - out_w + 1))
        region = image[y0 : y0 + out_h, x0 : x0 + out_w]
        color = region.mean(axis=(0, 1)) + rng.uniform(-80, 80, 3).astype(np.float32)
        region += alpha * (np.clip(color, 0, 255) - region)
        used.append(index)
    return used


def _tint(rng, under):
    """(bright colour, dark colour) of an item whose both ends stand out from ``under``."""
    best, best_gap = None, -1.0
    for _ in range(20):
        color = rng.uniform(0, 255, 3).astype(np.float32)
        dark = color * np.float32(1.0 - rng.uniform(0.3, 0.8))
        gap = min(np.abs(color - under).sum(), np.abs(dark - under).sum())
        if gap > best_gap:
            best, best_gap = (color, dark), gap
        if gap > MIN_CONTRAST:
            break
    return best


def render_fashion_objects(
    index,
    seed=0,
    image_size=(128, 128),
    split="train",
    max_objects=6,
    empty_fraction=0.05,
    size_range=(0.15, 0.55),
    max_overlap=0.35,
    path=None,
    return_sources=False,
):
    """Draws example ``index`` of a Fashion-objects set (NumPy; see ``fashion_objects``).

    Args:
        index: Example index.
        seed: Set seed; the image is a function of ``(seed, index, split)`` only.
        image_size: ``(height, width)``.
        split: ``"train"`` (items from the IDX training images) or ``"validation"`` /
            ``"test"`` (items from the IDX test images).
        max_objects: At most this many items per image (at least one unless empty).
        empty_fraction: Probability that an image has no object.
        size_range: Item side as a fraction of ``min(height, width)``.
        max_overlap: Largest fraction of an earlier item that later ones may cover.
        path: Folder of the Fashion-MNIST IDX files (``None``: ``load_fashion_mnist``'s search).
        return_sources: Also return a dict: ``"pool"`` (``"train"`` or ``"test"``, the IDX file),
            ``"objects"`` (IDX indices of the boxed items, aligned with ``boxes``),
            ``"fragments"`` (IDX indices of the background crops), ``"background"`` (uint8
            image before the items, without the final noise) and ``"top"`` (``(H, W)`` int map
            of the object visible at each pixel, -1 for background).

    Returns:
        ``(image uint8 (H, W, 3), boxes float32 (N, 4) xyxy, labels int32 (N,))`` and, with
        ``return_sources``, the dict above.

    Raises:
        DataError: The Fashion-MNIST files are missing or malformed.
    """
    items, item_labels = _item_pool(split, path)
    height, width = int(image_size[0]), int(image_size[1])
    short = min(height, width)
    rng = np.random.default_rng([int(seed), int(index)])
    num_objects = 0 if rng.uniform() < empty_fraction else int(rng.integers(1, max_objects + 1))
    chosen = [int(i) for i in rng.integers(len(items), size=num_objects)]

    image = _gradient(rng, height, width)
    fragments = _add_fragments(rng, image, items, set(chosen), short, size_range)
    background = np.clip(image, 0, 255).astype(np.uint8)

    top = np.full((height, width), -1, np.int32)
    areas, visible, kept = [], [], []
    for item_index in chosen:
        side = int(np.clip(round(rng.uniform(*size_range) * short), 8, short))
        intensity = _resize(items[item_index], side, side)
        mask = intensity > ITEM_THRESHOLD
        area = int(mask.sum())
        if area < 4:
            continue
        for _attempt in range(8):
            y0, x0 = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            covered = top[y0 : y0 + side, x0 : x0 + side][mask]
            lost = np.bincount(covered[covered >= 0], minlength=len(areas))
            if all(visible[j] - lost[j] >= (1 - max_overlap) * areas[j] for j in range(len(areas))):
                break
        else:
            continue  # every position hides too much of an earlier item: skip this one
        for j in np.flatnonzero(lost):
            visible[j] -= int(lost[j])
        region = image[y0 : y0 + side, x0 : x0 + side]
        bright, dark = _tint(rng, region[mask].mean(axis=0))
        level = (intensity / np.float32(255.0))[..., None]
        color = dark + (bright - dark) * level
        # silhouette pixels at least half opaque, fully opaque from 1.5x the threshold up
        alpha = np.where(mask, np.clip(0.5 + (intensity - ITEM_THRESHOLD) / 20.0, 0, 1), 0)
        alpha = alpha.astype(np.float32)[..., None]
        region += alpha * (color - region)
        top[y0 : y0 + side, x0 : x0 + side][mask] = len(areas)
        areas.append(area)
        visible.append(area)
        kept.append(item_index)

    boxes, labels, objects = [], [], []
    for k, item_index in enumerate(kept):
        shown = top == k
        rows, cols = np.flatnonzero(shown.any(axis=1)), np.flatnonzero(shown.any(axis=0))
        boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
        labels.append(int(item_labels[item_index]))
        objects.append(item_index)
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1, 5))
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int32)
    if return_sources:
        sources = {
            "pool": FASHION_OBJECT_POOLS[split],
            "objects": np.asarray(objects, np.int64),
            "fragments": np.asarray(fragments, np.int64),
            "background": background,
            "top": top,
        }
        return image, boxes, labels, sources
    return image, boxes, labels


def fashion_objects(
    num_images,
    image_size=(128, 128),
    seed=0,
    split="train",
    max_objects=6,
    empty_fraction=0.05,
    size_range=(0.15, 0.55),
    max_overlap=0.35,
    path=None,
):
    """A detection set of Fashion-MNIST items on cluttered backgrounds (see the module doc).

    Args:
        num_images: Number of images.
        image_size: ``(height, width)``, at least 16x16.
        seed: Set seed; the same seed gives the same images and boxes in any order.
        split: ``"train"`` (items from the IDX training images) or ``"validation"`` /
            ``"test"`` (items from the IDX test images: never an item seen in training).
        max_objects: At most this many items per image.
        empty_fraction: Probability that an image has no object.
        size_range: ``(low, high)`` item side as a fraction of the short image side.
        max_overlap: Largest fraction of an item that later items may cover, in ``[0, 1)``.
        path: Folder of the Fashion-MNIST IDX files; ``None`` searches where
            ``load_fashion_mnist`` does.

    Returns:
        ``DetectionData`` (records are indices, images drawn on demand) with the ten
        ``FASHION_MNIST_CLASSES`` as class names.

    Raises:
        DataError: The Fashion-MNIST files are missing (listing the folders searched) or
            malformed; raised here, not while iterating.
        ValueError: An argument out of range.

    Example:
    ```python
    train = fashion_objects(3000, split="train", seed=0)
    val = fashion_objects(500, split="validation", seed=1)
    ```
    """
    height, width = int(image_size[0]), int(image_size[1])
    if min(height, width) < 16:
        raise ValueError(f"image_size must be at least 16x16. Received: image_size={image_size}")
    if max_objects < 0 or not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(
            f"need max_objects >= 0 and 0 <= empty_fraction <= 1. Received: "
            f"max_objects={max_objects}, empty_fraction={empty_fraction}"
        )
    low, high = (float(v) for v in size_range)
    if not 0.0 < low <= high < 1.0:
        raise ValueError(
            f"size_range must satisfy 0 < low <= high < 1. Received: size_range={size_range}"
        )
    if not 0.0 <= max_overlap < 1.0:
        raise ValueError(f"max_overlap must lie in [0, 1). Received: max_overlap={max_overlap}")
    _item_pool(split, path)  # missing files fail now, with the folders searched
    options = dict(
        seed=seed,
        image_size=(height, width),
        split=split,
        max_objects=max_objects,
        empty_fraction=empty_fraction,
        size_range=(low, high),
        max_overlap=max_overlap,
        path=path,
    )

    return rendered_data(
        functools.partial(render_fashion_objects, **options),
        num_images,
        (height, width),
        FASHION_MNIST_CLASSES,
        f"fashion_objects(split={split}, seed={seed}, size={height}x{width})",
    )
