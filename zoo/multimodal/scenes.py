"""Synthetic scenes: attribute rows, their retrieval keys, and their images.

A *scene* is one to ``max_objects`` coloured shapes, each with four attributes, stored as integer
rows ``(shape, colour, size, position)`` (indices into ``SHAPES``, ``COLOURS``, ``SIZES``,
``POSITIONS``; absent objects are rows of -1). Its **image** is ``uint8 (H, W, 3)`` (default
32 x 32): each shape drawn in its colour (RGB jittered), its size class (small / large, extent
jittered), its horizontal position class (left / center / right, jittered; the vertical position
is free) and a small random rotation, on a dark textured background with pixel noise.

Everything is a pure function of ``(seed, split, index)``
(``numpy.random.default_rng([seed, split, index, stream])``, ``scene_rng``), so the same seed
gives the same scenes in any order. The ``label`` of a scene for evaluation is its
``scene_key`` (one integer per distinct attribute set).

Example:
    >>> attributes = sample_scenes(4, seed=0, split="test", max_objects=2)
    >>> image = render_scene(attributes[0], index=0, seed=0, split="test")   # (32, 32, 3)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ATTRIBUTES",
    "COLOURS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "render_scene",
    "sample_scenes",
    "scene_keys",
    "scene_rng",
    "split_index",
]

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLOURS = ("red", "green", "blue", "yellow", "purple")
SIZES = ("small", "large")
POSITIONS = ("left", "center", "right")
ATTRIBUTES = ("shape", "colour", "size", "position")
SPLITS = {"train": 0, "test": 1, "val": 2}

# --- rendering constants ---
_RGB = np.array(
    [[225, 40, 40], [40, 200, 60], [50, 90, 235], [235, 220, 45], [175, 60, 210]], np.float32
)
_EXTENT = {0: (0.24, 0.30), 1: (0.40, 0.48)}  # fraction of the image side, by size class
_CENTRE_X = {0: (0.22, 0.30), 1: (0.46, 0.54), 2: (0.70, 0.78)}  # by position class


# === Scenes ===


def split_index(split):
    """The stream number of a split: ``SPLITS[split]``, or ``split`` itself if an int >= 0."""
    if isinstance(split, int) and not isinstance(split, bool) and split >= 0:
        return split
    if split not in SPLITS:
        raise ValueError(
            f"split must be one of {sorted(SPLITS)} or an int >= 0. Received: split={split!r}"
        )
    return SPLITS[split]


def scene_rng(seed, split, index, stream):
    """The NumPy generator of one scene's ``stream`` (0 attributes, 1 image, 2-3 caption)."""
    return np.random.default_rng([int(seed), split_index(split), int(index), int(stream)])


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
        rng = scene_rng(seed, split, start + i, 0)
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
    rng = scene_rng(seed, split, index, 1)
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
