"""Colorization pretext task: the L* channel in, the colour (a*, b*) out, as a regression target
or as the index of a quantized in-gamut ab bin.

Example:
```python
inputs, ab = colorization(images, seed=0)                    # (B, H, W, 1), (B, H, W, 2)
inputs, bins = colorization(images, seed=0, mode="quantized")  # bins index ab_bins(10)
```
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf

from zoo.ops.color import lab_numpy, rgb_to_lab
from zoo.ssl.pretext.common import _run_task, pretext_options


@functools.lru_cache(maxsize=8)
def _ab_tables(bin_size):
    step = 4 if bin_size >= 10 else 2 if bin_size >= 5 else 1
    levels = np.unique(np.r_[np.arange(0, 256, step), 255]).astype(np.float64)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    cells = np.unique(np.round(lab_numpy(rgb)[:, 1:] / bin_size).astype(np.int64), axis=0)
    centres = (cells * bin_size).astype(np.float32)
    centres.flags.writeable = False
    # Lookup: every grid cell covering a*, b* in [-128, 128] → the nearest kept bin.
    half = int(math.ceil(128.0 / bin_size)) + 1
    grid = np.arange(-half, half + 1) * float(bin_size)
    ga, gb = np.meshgrid(grid, grid, indexing="ij")
    d2 = (ga[..., None] - centres[:, 0]) ** 2 + (gb[..., None] - centres[:, 1]) ** 2
    lookup = np.argmin(d2, axis=-1).astype(np.int32).reshape(-1)
    return centres, lookup, half


def ab_bins(bin_size=10):
    """Centres of the in-gamut bins of the quantized ab grid (colorization, "quantized" mode).

    Bins are centred on multiples of ``bin_size`` in (a*, b*); a bin is kept when some 8-bit sRGB
    colour falls into it (colours sampled every 4 levels, 2 under bin size 10, 1 under 5: at bin
    size 10 the same 261 bins as all 16.7 M colours). Sorted by a*, then b*.

    Returns:
        Read-only float32 array (Q, 2) of (a*, b*) bin centres (Q = 261 for bin size 10).
    """
    pretext_options("colorization", bin_size=bin_size)
    return _ab_tables(float(bin_size))[0]


def quantize_ab(ab, bin_size=10):
    """Index of the nearest in-gamut bin of ``ab_bins(bin_size)`` for a*, b* values (..., 2).

    A table lookup on the rounded grid cell (exact nearest bin for every in-gamut colour; a cell
    without a kept bin maps to the kept bin nearest its centre). Returns int32 (...).
    """
    pretext_options("colorization", bin_size=bin_size)
    _, lookup, half = _ab_tables(float(bin_size))
    cell = tf.cast(tf.round(tf.cast(ab, tf.float32) / float(bin_size)), tf.int32)
    cell = tf.clip_by_value(cell + half, 0, 2 * half)
    return tf.gather(tf.constant(lookup), cell[..., 0] * (2 * half + 1) + cell[..., 1])


def _draw_colorization(x, seed, o):
    if x.shape[-1] != 3:
        raise ValueError(
            "colorization needs RGB images (C == 3): a grayscale image has no colour to predict. "
            f"Received: images with shape {x.shape}"
        )
    return {}


def _apply_colorization(x, draws, o):
    lab = rgb_to_lab(x)
    inputs = lab[..., :1] * 2.55
    if o["mode"] == "regression":
        return inputs, lab[..., 1:] / 128.0
    return inputs, quantize_ab(lab[..., 1:], o["bin_size"])


def colorization(images, seed, *, mode="regression", bin_size=10):
    """Colorization: L* channel → colour (a*, b*) target (regression or quantized bins).

    Deterministic: ``seed`` is accepted for the common signature and unused.

    Args:
        images: (B, H, W, 3) RGB uint8/float32 0-255 (1-channel input is refused).
        seed: shape-[2] integer tensor (or int), unused.
        mode: "regression" → targets float32 (B, H, W, 2) = (a*, b*) / 128;
            "quantized" → targets int32 (B, H, W), index into ``ab_bins(bin_size)``.
        bin_size: ab bin size of the quantized grid.

    Returns:
        inputs float32 (B, H, W, 1) = L* · 2.55 (0-255); targets as above.
    """
    return _run_task(
        "colorization",
        (_draw_colorization, _apply_colorization),
        images,
        seed,
        {"mode": mode, "bin_size": bin_size},
    )
