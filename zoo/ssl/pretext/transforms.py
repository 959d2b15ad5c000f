"""Pretext-label transforms: pure batched TF functions ``fn(images, seed, **options)``.

Every transform maps an unlabeled batch ``images`` (B, H, W, C), uint8 or float32 in 0-255, to
``(inputs, targets)`` (see the table in ``zoo/ssl/pretext/__init__.py``), with all randomness
drawn by ``tf.random.stateless_*`` from ``seed`` (a shape-[2] integer tensor, or a Python int
``s`` meaning ``[s, 0]``). Same seed, same output; the work is vectorised over the whole batch
(no per-example ``map_fn``), so one call labels a batch in a few fused kernels, in ``tf.data`` or
inside a training step on the accelerator.

Batch ``i`` of a stream with base seed ``s`` uses ``batch_seed(s, i)`` =
``stateless_fold_in([s, 0], i)`` (int64), in ``make_pretext_dataset`` and in ``PretextLayer``.

Example:
```python
images = tf.random.uniform((8, 32, 32, 3), 0, 255)
inputs, k = pretext_transform("rotation", images, seed=batch_seed(0, 0))
restored = rotate_images(inputs, (4 - k) % 4)          # == images
```
"""

from __future__ import annotations

import functools
import itertools
import math
import types

import numpy as np
import tensorflow as tf

from zoo.ops.color import lab_numpy, rgb_to_lab
from zoo.ops.random import (
    as_seed,
    hashed_bits,
    normal_from_bits,
    split_seed,
    uniform,
    uniform_bits,
    unit_float,
)

TASKS = ("rotation", "jigsaw", "colorization", "inpainting", "denoising")

_DEFAULTS = {
    "rotation": {},
    "jigsaw": {"num_permutations": 100, "permutation_seed": 0, "tiles": False},
    "colorization": {"mode": "regression", "bin_size": 10},
    "inpainting": {
        "mask": "rectangle",
        "min_area": 0.1,
        "max_area": 0.3,
        "fill": "zero",
        "max_strokes": 4,
    },
    "denoising": {"noise": "gaussian", "stddev": 25.0, "fraction": 0.1},
}
_CHOICES = {
    ("colorization", "mode"): ("regression", "quantized"),
    ("inpainting", "mask"): ("rectangle", "irregular"),
    ("inpainting", "fill"): ("zero", "mean"),
    ("denoising", "noise"): ("gaussian", "salt_pepper", "masking"),
}
_NUM_ALL_PERMUTATIONS = math.factorial(9)
_SEGMENTS_PER_STROKE = 4


# === seeds and checks ===


def _split(seed, num):
    """``num`` independent sub-seeds of ``seed`` (a tuple of [2] int64 tensors)."""
    return tuple(tf.unstack(split_seed(seed, num)))


def batch_seed(seed, index, stream=0):
    """The seed of batch ``index`` of a stream with base seed ``seed`` (the shared contract).

    Args:
        seed: Python int, the base seed ``s``.
        index: int or integer scalar tensor, the batch number ``i`` (0, 1, ...).
        stream: 0 for training batches; ``PretextLayer`` uses 1 for evaluation batches.

    Returns:
        int64 tensor (2,) ``stateless_fold_in([s, stream], i)`` (s taken modulo 2**32).
    """
    base = tf.constant([int(seed) & 0xFFFFFFFF, int(stream)], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


def pretext_options(task, **options):
    """Checks the options of ``task`` and returns them completed with the defaults.

    Raises ValueError for an unknown task, an unknown option name or a bad value, echoing it.

    Example: ``pretext_options("denoising", noise="masking")`` →
    ``{"noise": "masking", "stddev": 25.0, "fraction": 0.1}``.
    """
    if not isinstance(task, str) or task not in _DEFAULTS:
        raise ValueError(f"Unknown pretext task: expected one of {TASKS}. Received: task={task!r}")
    defaults = _DEFAULTS[task]
    for name, value in options.items():
        if name not in defaults:
            known = ", ".join(defaults) if defaults else "none"
            raise ValueError(
                f"Unknown option for pretext task {task!r} (its options: {known}). "
                f"Received: {name}={value!r}"
            )
    resolved = {**defaults, **options}
    for name, value in resolved.items():
        choices = _CHOICES.get((task, name))
        if choices is not None and value not in choices:
            raise ValueError(
                f"Bad value for option {name!r} of pretext task {task!r}: expected one of "
                f"{choices}. Received: {name}={value!r}"
            )
    _check_numbers(task, resolved)
    return resolved


def _bad(task, name, value, expected):
    return ValueError(
        f"Bad value for option {name!r} of pretext task {task!r}: expected {expected}. "
        f"Received: {name}={value!r}"
    )


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_numbers(task, o):
    if task == "jigsaw":
        n = o["num_permutations"]
        if not _is_int(n) or not 1 <= n <= _NUM_ALL_PERMUTATIONS:
            raise _bad(task, "num_permutations", n, f"an int in [1, {_NUM_ALL_PERMUTATIONS}]")
        if not _is_int(o["permutation_seed"]):
            raise _bad(task, "permutation_seed", o["permutation_seed"], "an int")
        if not isinstance(o["tiles"], (bool, np.bool_)):
            raise _bad(task, "tiles", o["tiles"], "a bool")
    elif task == "colorization":
        size = o["bin_size"]
        if not _is_number(size) or not 1 <= size <= 64:
            raise _bad(task, "bin_size", size, "a number in [1, 64] (ab units)")
    elif task == "inpainting":
        lo, hi = o["min_area"], o["max_area"]
        if not _is_number(lo) or not 0 < lo <= 1:
            raise _bad(task, "min_area", lo, "a fraction in (0, 1]")
        if not _is_number(hi) or not lo <= hi <= 1:
            raise _bad(task, "max_area", hi, f"a fraction in [min_area={lo}, 1]")
        if not _is_int(o["max_strokes"]) or o["max_strokes"] < 1:
            raise _bad(task, "max_strokes", o["max_strokes"], "an int >= 1")
    elif task == "denoising":
        if not _is_number(o["stddev"]) or o["stddev"] < 0:
            raise _bad(task, "stddev", o["stddev"], "a number >= 0 (pixel units)")
        if not _is_number(o["fraction"]) or not 0 <= o["fraction"] <= 1:
            raise _bad(task, "fraction", o["fraction"], "a fraction in [0, 1]")


def _checked_images(images, task):
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(
            f"pretext task {task!r} takes a batch of images (B, H, W, C). "
            f"Received: images with shape {images.shape}"
        )
    return images


def _shape(x):
    """Static dims where known, dynamic scalars elsewhere."""
    dynamic = tf.shape(x)
    return [d if d is not None else dynamic[i] for i, d in enumerate(x.shape.as_list())]


# === rotation ===


@functools.lru_cache(maxsize=16)
def _rotation_table(size):
    """(4, size²) int32: flat source pixel of each output pixel for k = 0..3 quarter turns."""
    pixels = np.arange(size * size, dtype=np.int32).reshape(size, size)
    return np.stack([np.rot90(pixels, k).ravel() for k in range(4)])


def rotate_images(images, k):
    """Rotates image ``b`` by ``k[b]`` counter-clockwise quarter turns (as ``tf.image.rot90``).

    Vectorised: with a static size, one gather of pixels through a precomputed index map per
    quarter turn (no map_fn); otherwise one transpose and two flips selected per image with
    ``tf.where``. Keeps the dtype (rotate uint8 before casting: 4x less memory traffic).

    Args:
        images: (B, H, W, C) with H == W.
        k: int (B,), any integers (taken modulo 4).

    Returns:
        (B, H, W, C) of the dtype of ``images``.
    """
    images = tf.convert_to_tensor(images)
    k = tf.math.floormod(tf.cast(k, tf.int32), 4)
    b, h, w, c = _shape(images)
    if isinstance(h, int) and isinstance(w, int) and h == w:
        table = tf.constant(_rotation_table(h))
        flat = tf.reshape(images, [b, h * w, c])
        return tf.reshape(tf.gather(flat, tf.gather(table, k), batch_dims=1), [b, h, w, c])
    k = k[:, None, None, None]
    turned = tf.where(k % 2 == 1, tf.transpose(images, [0, 2, 1, 3]), images)
    turned = tf.where((k == 1) | (k == 2), tf.reverse(turned, [1]), turned)
    return tf.where(k >= 2, tf.reverse(turned, [2]), turned)


def _draw_rotation(x, seed, o):
    height, width = x.shape[1], x.shape[2]
    if height is not None and width is not None and height != width:
        raise ValueError(
            f"rotation needs square images (H == W). Received: images with shape {x.shape}"
        )
    return {"k": tf.random.stateless_uniform([_shape(x)[0]], seed, 0, 4, dtype=tf.int32)}


def _apply_rotation(x, draws, o):
    return tf.cast(rotate_images(x, draws["k"]), tf.float32), draws["k"]


def rotation(images, seed):
    """RotNet: each image turned by k·90° (k uniform in 0..3) → 4-way label k.

    Args:
        images: (B, H, W, C) uint8/float32 0-255, H == W.
        seed: shape-[2] integer tensor (or int).

    Returns:
        inputs float32 (B, H, W, C); targets int32 (B,) = k (counter-clockwise quarter turns).
    """
    return _run("rotation", images, seed, {})


# === jigsaw ===


@functools.lru_cache(maxsize=1)
def _all_permutations_t():
    """All 9! permutations, transposed: uint8 (9, 362880), row r = the value at slot r."""
    table = np.array(list(itertools.permutations(range(9))), dtype=np.uint8)
    return np.ascontiguousarray(table.T)


@functools.lru_cache(maxsize=32)
def _jigsaw_permutations(n, seed):
    table = _all_permutations_t()
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(_NUM_ALL_PERMUTATIONS))]

    def distances(index):
        d = np.zeros(_NUM_ALL_PERMUTATIONS, np.uint8)
        for slot in range(9):
            d += table[slot] != table[slot, index]
        return d

    min_distance = distances(chosen[0])
    for _ in range(n - 1):
        candidates = np.flatnonzero(min_distance == min_distance.max())
        pick = int(candidates[rng.integers(len(candidates))])
        chosen.append(pick)
        np.minimum(min_distance, distances(pick), out=min_distance)
    result = np.ascontiguousarray(table[:, chosen].T.astype(np.int32))
    result.flags.writeable = False
    return result


def jigsaw_permutations(n, seed=0):
    """A fixed set of ``n`` permutations of 9 tiles with maximal minimum Hamming distance.

    Greedy selection over all 9! permutations (Noroozi & Favaro 2016): start from one permutation
    drawn with ``seed``, then repeatedly add the permutation whose minimum Hamming distance to the
    chosen ones is largest (ties broken by the same seeded generator). NumPy, cached per
    (n, seed); about 2 ms per permutation chosen. The minimum pairwise distance of the set is
    ``jigsaw_min_distance(perms)``: 9 for n <= 9 (a Latin square); see the tests for larger n.

    Args:
        n: number of permutations, 1 <= n <= 362880.
        seed: int, picks the first permutation and breaks ties.

    Returns:
        Read-only int32 array (n, 9); row p maps tile slot j → original tile ``perms[p][j]``.
    """
    pretext_options("jigsaw", num_permutations=n, permutation_seed=seed)
    return _jigsaw_permutations(int(n), int(seed))


def jigsaw_min_distance(perms):
    """Minimum pairwise Hamming distance of a (n, 9) permutation set (9 when n == 1)."""
    perms = np.asarray(perms)
    if len(perms) < 2:
        return 9
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    d[np.diag_indices(len(perms))] = 9
    return int(d.min())


def _to_tiles(x):
    """(B, 3·th, 3·tw, C) → (B, 9, th, tw, C), tiles in raster order."""
    b, h, w, c = _shape(x)
    th, tw = h // 3, w // 3
    tiles = tf.reshape(x, [b, 3, th, 3, tw, c])
    tiles = tf.transpose(tiles, [0, 1, 3, 2, 4, 5])
    return tf.reshape(tiles, [b, 9, th, tw, c])


def _from_tiles(tiles):
    """(B, 9, th, tw, C) → (B, 3·th, 3·tw, C)."""
    b, _, th, tw, c = _shape(tiles)
    x = tf.reshape(tiles, [b, 3, 3, th, tw, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [b, 3 * th, 3 * tw, c])


def jigsaw_crop(images):
    """Centre crop of (B, H, W, C) to (B, 3·(H//3), 3·(W//3), C), the part the jigsaw uses."""
    images = tf.convert_to_tensor(images)
    _, h, w, _ = _shape(images)
    th, tw = h // 3, w // 3
    top, left = (h - 3 * th) // 2, (w - 3 * tw) // 2
    return images[:, top : top + 3 * th, left : left + 3 * tw, :]


def shuffle_tiles(images, order):
    """Re-assembles the 3×3 tiles of each image so that slot j shows original tile order[b, j].

    Args:
        images: (B, 3·th, 3·tw, C) (already cropped, see ``jigsaw_crop``).
        order: int (B, 9), one permutation per image. ``np.argsort(perm)`` un-shuffles.
    """
    images = tf.convert_to_tensor(images)
    return _from_tiles(tf.gather(_to_tiles(images), order, batch_dims=1))


def _draw_jigsaw(x, seed, o):
    h, w = x.shape[1], x.shape[2]
    if (h is not None and h < 3) or (w is not None and w < 3):
        raise ValueError(f"jigsaw needs images of at least 3×3 pixels. Received: {x.shape}")
    n = o["num_permutations"]
    return {"index": tf.random.stateless_uniform([_shape(x)[0]], seed, 0, n, dtype=tf.int32)}


def _apply_jigsaw(x, draws, o):
    index = draws["index"]
    perms = tf.constant(jigsaw_permutations(o["num_permutations"], o["permutation_seed"]))
    order = tf.gather(perms, index)  # (B, 9): slot j shows original tile order[b, j]
    b, h, w, c = _shape(x)
    th, tw = h // 3, w // 3
    if isinstance(h, int) and isinstance(w, int):
        # One pixel gather does crop + shuffle (on the input dtype, cast afterwards).
        slot, offset, origin = (tf.constant(t) for t in _jigsaw_tables(h, w, o["tiles"]))
        source = tf.gather(origin, tf.gather(order, slot, axis=1)) + offset
        pixels = tf.gather(tf.reshape(x, [b, h * w, c]), source, batch_dims=1)
        shape = [b, 9, th, tw, c] if o["tiles"] else [b, 3 * th, 3 * tw, c]
        return tf.cast(tf.reshape(pixels, shape), tf.float32), index
    shuffled = tf.gather(_to_tiles(jigsaw_crop(x)), order, batch_dims=1)
    shuffled = shuffled if o["tiles"] else _from_tiles(shuffled)
    return tf.cast(shuffled, tf.float32), index


def jigsaw(images, seed, *, num_permutations=100, permutation_seed=0, tiles=False):
    """Jigsaw puzzle: 3×3 tiles shuffled by a permutation of a fixed max-Hamming set → its index.

    Args:
        images: (B, H, W, C) uint8/float32 0-255; centre-cropped to (3·(H//3), 3·(W//3)).
        seed: shape-[2] integer tensor (or int).
        num_permutations: size n of the set ``jigsaw_permutations(n, permutation_seed)``.
        permutation_seed: seed of that fixed set (the model's head only needs n).
        tiles: return the shuffled tiles (B, 9, th, tw, C) instead of the re-assembled image.

    Returns:
        inputs float32 (B, 3·th, 3·tw, C) (or tiles); targets int32 (B,) = permutation index p,
        slot j showing original tile ``perms[p][j]``.
    """
    options = {
        "num_permutations": num_permutations,
        "permutation_seed": permutation_seed,
        "tiles": tiles,
    }
    return _run("jigsaw", images, seed, options)


@functools.lru_cache(maxsize=16)
def _jigsaw_tables(h, w, tiles):
    """Index maps of the crop + shuffle gather, for every output pixel q (raster order of the
    re-assembled image, or tile-major order with ``tiles``): its slot, its offset inside a tile
    in the flat (H·W) source image, and the flat origin of each of the 9 source tiles."""
    th, tw = h // 3, w // 3
    top, left = (h - 3 * th) // 2, (w - 3 * tw) // 2
    rows, cols = np.meshgrid(np.arange(3 * th), np.arange(3 * tw), indexing="ij")
    slot = (rows // th) * 3 + cols // tw
    offset = (rows % th) * w + cols % tw
    if tiles:
        order = np.argsort(slot.ravel(), kind="stable")  # tile-major, raster inside each tile
        slot, offset = slot.ravel()[order], offset.ravel()[order]
    tile = np.arange(9)
    origin = (top + (tile // 3) * th) * w + left + (tile % 3) * tw
    return slot.ravel().astype(np.int32), offset.ravel().astype(np.int32), origin.astype(np.int32)


# === colorization: quantized ab bins ===


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
    return _run("colorization", images, seed, {"mode": mode, "bin_size": bin_size})


# === inpainting masks ===


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
    return _run("inpainting", images, seed, options)


# === denoising ===


def _draw_denoising(x, seed, o):
    b, h, w, c = _shape(x)
    if o["noise"] == "gaussian":  # a 64-bit key; the bits and normals are made in apply
        return {"key": uniform_bits([2], seed)}
    return {"bits": uniform_bits([b, h, w, 1], seed)}  # one draw per pixel, all channels


def _apply_denoising(x, draws, o):
    x = tf.cast(x, tf.float32)
    if o["noise"] == "gaussian":
        # two 16-bit uniforms per hashed_bits value, each looking up its normal quantile: XLA
        # fuses bits, lookup and noise into one loop (about half the CPU time of Philox bits
        # drawn by a TF kernel; in XLA the lookup beats Box-Muller and erfinv 1.6x or more)
        bits = hashed_bits(draws["key"], (tf.size(x) + 1) // 2)
        noisy = x + float(o["stddev"]) * normal_from_bits(bits, tf.shape(x))
    else:
        u = unit_float(draws["bits"])
        p = float(o["fraction"])
        if o["noise"] == "masking":
            noisy = tf.where(u < p, 0.0, x)
        else:  # u < p/2: pepper (0); p/2 <= u < p: salt (255)
            noisy = tf.where(u < p, tf.where(u < 0.5 * p, 0.0, 255.0), x)
    return tf.clip_by_value(noisy, 0.0, 255.0), x / 255.0


def denoising(images, seed, *, noise="gaussian", stddev=25.0, fraction=0.1):
    """Denoising autoencoder: corrupt, then reconstruct the clean image.

    Args:
        images: (B, H, W, C) uint8/float32 0-255.
        seed: shape-[2] integer tensor (or int).
        noise: "gaussian" (i.i.d. per value, ``stddev`` in pixel units;
            ``zoo.ops.random.normal_from_bits``); "salt_pepper"
            (a fraction ``fraction`` of pixels, all channels, set to 0 or 255 with equal odds);
            "masking" (a fraction ``fraction`` of pixels set to 0).

    Returns:
        inputs float32 (B, H, W, C) noisy, clipped to [0, 255]; targets float32 = clean / 255.
    """
    options = {"noise": noise, "stddev": stddev, "fraction": fraction}
    return _run("denoising", images, seed, options)


# === registry and dispatcher ===

_PARTS = {
    "rotation": (_draw_rotation, _apply_rotation),
    "jigsaw": (_draw_jigsaw, _apply_jigsaw),
    "colorization": (_draw_colorization, _apply_colorization),
    "inpainting": (_draw_inpainting, _apply_inpainting),
    "denoising": (_draw_denoising, _apply_denoising),
}


def _run(task, images, seed, options):
    o = pretext_options(task, **options)
    x = _checked_images(images, task)
    draw, apply = _PARTS[task]
    return apply(x, draw(x, as_seed(seed), o), o)


def split_pretext_transform(task, **options):
    """The two halves of a transform: ``draw(images, seed) -> dict`` of random tensors (all
    the randomness, stateless) and ``apply(images, draws) -> (inputs, targets)`` (pure
    arithmetic, no random ops), so that ``apply`` can be XLA-compiled on its own (XLA's CPU
    random-number kernels are slow) and ``pretext_transform(task, images, seed, **options)``
    equals ``apply(images, draw(images, seed))``. Options are checked here.
    """
    o = pretext_options(task, **options)
    draw_fn, apply_fn = _PARTS[task]

    def draw(images, seed):
        return draw_fn(_checked_images(images, task), as_seed(seed), o)

    def apply(images, draws):
        return apply_fn(_checked_images(images, task), draws, o)

    return draw, apply


PRETEXT_TASKS = types.MappingProxyType(
    {
        "rotation": rotation,
        "jigsaw": jigsaw,
        "colorization": colorization,
        "inpainting": inpainting,
        "denoising": denoising,
    }
)


def pretext_transform(task, images, seed, **options):
    """Applies the pretext transform ``task`` to a batch: ``(inputs, targets)``.

    Args:
        task: one of ``TASKS`` ("rotation", "jigsaw", "colorization", "inpainting",
            "denoising").
        images: (B, H, W, C) uint8/float32 0-255.
        seed: shape-[2] integer tensor (or int s → [s, 0]).
        **options: the task's options (see each transform); unknown names or bad values raise
            ValueError echoing them.

    Example:
    ```python
    inputs, targets = pretext_transform("inpainting", images, batch_seed(0, 3), mask="irregular")
    ```
    """
    options = pretext_options(task, **options)
    return _run(task, images, seed, options)
