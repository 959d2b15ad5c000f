"""Inpainting pretext task: hide a random region (a rectangle or free-form brush strokes) and
reconstruct it.

Example:
```python
inputs, targets = inpainting(images, seed=batch_seed(0, 0), mask="irregular")
masks = inpainting_masks((8, 32, 32), seed=0)           # float32 (8, 32, 32), 1 = hidden
```
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from zoo.ops.random import as_seed, uniform
from zoo.ssl.pretext.common import _run_task, _shape, _split, pretext_options

_SEGMENTS_PER_STROKE = 4


def _draw_masks(b, seed, o):
    """The random numbers of ``b`` masks (all float32 uniform in [0, 1) but ``count``)."""
    if o["mask"] == "rectangle":
        return {"rect": uniform([b, 4], seed)}  # area, aspect ratio, top, left
    s, v = o["max_strokes"], _SEGMENTS_PER_STROKE
    seeds = _split(seed, 6)
    return {
        "start": uniform([b, s, 1, 2], seeds[0]),
        "heading": uniform([b, s, 1], seeds[1]),
        "turns": uniform([b, s, v], seeds[2]),
        "lengths": uniform([b, s, v], seeds[3]),
        "count": tf.random.stateless_uniform([b, 1], seeds[4], 1, s + 1, dtype=tf.int32),
        "fraction": uniform([b], seeds[5]),
    }


def _rectangle_masks(draws, h, w, min_area, max_area):
    u = draws["rect"]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    total = hf * wf
    area = (min_area + (max_area - min_area) * u[:, 0]) * total
    ratio = tf.exp(math.log(2.0) * (2.0 * u[:, 1] - 1.0))  # log-uniform in [1/2, 2]
    # Height first (at least min_area·H so that a width <= W fits), then the width that keeps
    # the area fraction within [min_area, max_area].
    rect_h = tf.clip_by_value(tf.round(tf.sqrt(area * ratio)), tf.math.ceil(min_area * hf), hf)
    w_lo = tf.math.ceil(min_area * total / rect_h)
    w_hi = tf.minimum(tf.floor(max_area * total / rect_h), wf)
    rect_w = tf.clip_by_value(tf.minimum(tf.maximum(tf.round(area / rect_h), w_lo), w_hi), 1.0, wf)
    top = tf.minimum(tf.floor(u[:, 2] * (hf - rect_h + 1.0)), hf - rect_h)
    left = tf.minimum(tf.floor(u[:, 3] * (wf - rect_w + 1.0)), wf - rect_w)
    rows = tf.range(hf)[None, :, None]
    cols = tf.range(wf)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + rect_h)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + rect_w)[:, None, None])
    )
    return tf.cast(inside, tf.float32)


def _irregular_masks(draws, b, h, w, min_area, max_area):
    """Free-form masks: distance of each pixel to random polyline strokes (rasterised in
    vectorised tf ops), thresholded per image at the rank that hides the drawn area fraction."""
    max_strokes, v = draws["turns"].shape[1], _SEGMENTS_PER_STROKE
    size = tf.cast(tf.stack([h, w]), tf.float32)
    start = draws["start"] * (size - 1.0)
    angles = 2.0 * math.pi * draws["heading"] + tf.cumsum(math.pi * (draws["turns"] - 0.5), -1)
    lengths = (0.1 + 0.25 * draws["lengths"]) * tf.reduce_max(size)
    steps = tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1) * lengths[..., None]
    vertices = tf.concat([start, start + tf.cumsum(steps, axis=2)], axis=2)
    vertices = tf.clip_by_value(vertices, 0.0, size - 1.0)
    begin = tf.reshape(vertices[:, :, :-1], [b, max_strokes * v, 2])
    end = tf.reshape(vertices[:, :, 1:], [b, max_strokes * v, 2])
    active = tf.repeat(tf.range(max_strokes)[None, :] < draws["count"], v, axis=1)
    rows, cols = tf.meshgrid(
        tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij"
    )
    py = tf.reshape(rows, [1, -1, 1])
    px = tf.reshape(cols, [1, -1, 1])
    ay, ax = begin[:, None, :, 0], begin[:, None, :, 1]
    dy, dx = end[:, None, :, 0] - ay, end[:, None, :, 1] - ax
    qy, qx = py - ay, px - ax
    t = tf.clip_by_value((qy * dy + qx * dx) / tf.maximum(dy * dy + dx * dx, 1e-6), 0.0, 1.0)
    dist2 = tf.square(qy - t * dy) + tf.square(qx - t * dx)
    dist2 = tf.where(active[:, None, :], dist2, np.inf)
    nearest = tf.reduce_min(dist2, axis=-1)  # (B, H·W)
    total = tf.cast(h * w, tf.float32)
    fraction = min_area + (max_area - min_area) * draws["fraction"]
    # in [ceil(min·N), floor(max·N)]; when that holds no integer (tiny images), ceil(min·N)
    count = tf.maximum(
        tf.minimum(tf.round(fraction * total), tf.floor(max_area * total)),
        tf.math.ceil(min_area * total),
    )
    return tf.reshape(_nearest_pixels(nearest, count, h, w), [b, h, w])


def _nearest_pixels(distance2, count, h, w):
    """float32 (B, N) mask of the ``count[b]`` pixels with the smallest ``distance2`` (ties by
    pixel index), found by bisection on unique integer keys (no sort: sorting is slow on CPU).

    Keys = round(16·d²)·N + pixel index, so the k-th smallest key is unique: 1 + log2(max key)
    rounds of "count the keys <= mid" find it exactly, and ``key <= it`` hides exactly k pixels.
    """
    n = tf.cast(tf.shape(distance2)[1], tf.int64)
    limit = 16.0 * tf.cast(h * h + w * w, tf.float32)
    quantized = tf.cast(tf.round(16.0 * tf.minimum(distance2, limit)), tf.int64)
    keys = quantized * n + tf.range(n, dtype=tf.int64)[None, :]
    if isinstance(h, int) and isinstance(w, int):
        rounds = int(math.ceil(math.log2((16 * (h * h + w * w) + 1) * h * w + 1))) + 1
    else:
        rounds = 62
    k = tf.cast(count, tf.int64)[:, None]
    low = tf.fill(tf.shape(k), tf.constant(-1, tf.int64))  # count(keys <= low) < k
    high = tf.reduce_max(keys, axis=1, keepdims=True)  # count(keys <= high) >= k
    for _ in range(rounds):
        mid = low + (high - low) // 2
        enough = tf.reduce_sum(tf.cast(keys <= mid, tf.int64), axis=1, keepdims=True) >= k
        high = tf.where(enough, mid, high)
        low = tf.where(enough, low, mid)
    return tf.cast(keys <= high, tf.float32)


def _masks_from_draws(draws, b, h, w, o):
    lo, hi = float(o["min_area"]), float(o["max_area"])
    if o["mask"] == "rectangle":
        return _rectangle_masks(draws, h, w, lo, hi)
    return _irregular_masks(draws, b, h, w, lo, hi)


def inpainting_masks(shape, seed, *, mask="rectangle", min_area=0.1, max_area=0.3, max_strokes=4):
    """Random hiding masks, float32 (B, H, W), 1 on hidden pixels.

    "rectangle": one box per image, aspect ratio log-uniform in [1/2, 2], area fraction drawn in
    [min_area, max_area] (integer sides; the fraction stays in range whenever
    (max_area - min_area)·H·W >= H). "irregular": 1 to ``max_strokes`` free-form brush strokes
    (polylines of 4 segments with random turns), thickened until exactly round(f·H·W) pixels,
    f drawn in [min_area, max_area], are hidden (the nearest pixels to the strokes), kept within
    [ceil(min_area·H·W), floor(max_area·H·W)], or ceil(min_area·H·W) when that range holds no
    integer.

    Args:
        shape: (B, H, W), Python ints or scalar tensors.
        seed: shape-[2] integer tensor (or int).
    """
    o = pretext_options(
        "inpainting", mask=mask, min_area=min_area, max_area=max_area, max_strokes=max_strokes
    )
    b, h, w = shape
    return _masks_from_draws(_draw_masks(b, as_seed(seed), o), b, h, w, o)


def _draw_inpainting(x, seed, o):
    return _draw_masks(_shape(x)[0], seed, o)


def _apply_inpainting(x, draws, o):
    x = tf.cast(x, tf.float32)
    b, h, w, _ = _shape(x)
    hidden = _masks_from_draws(draws, b, h, w, o)[..., None]
    if o["fill"] == "zero":
        value = 0.0
    else:
        visible = 1.0 - hidden
        value = tf.reduce_sum(x * visible, axis=[1, 2], keepdims=True) / tf.maximum(
            tf.reduce_sum(visible, axis=[1, 2], keepdims=True), 1.0
        )
    inputs = tf.where(hidden > 0, value, x)
    return inputs, tf.concat([x / 255.0, hidden], axis=-1)


def inpainting(
    images,
    seed,
    *,
    mask="rectangle",
    min_area=0.1,
    max_area=0.3,
    fill="zero",
    max_strokes=4,
):
    """Inpainting ("fill in the blanks"): hide a random region, reconstruct it.

    Args:
        images: (B, H, W, C) uint8/float32 0-255.
        seed: shape-[2] integer tensor (or int).
        mask: "rectangle" or "irregular" (see ``inpainting_masks``).
        min_area, max_area: range of the hidden area fraction.
        fill: "zero", or "mean" (each image's per-channel mean over its visible pixels).
        max_strokes: most brush strokes per irregular mask.

    Returns:
        inputs float32 (B, H, W, C) with hidden pixels filled; targets float32 (B, H, W, C + 1)
        = concat(clean / 255, mask), mask 1 on hidden pixels (the loss is taken there).
    """
    options = {
        "mask": mask,
        "min_area": min_area,
        "max_area": max_area,
        "fill": fill,
        "max_strokes": max_strokes,
    }
    return _run_task("inpainting", (_draw_inpainting, _apply_inpainting), images, seed, options)
