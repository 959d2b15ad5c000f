"""Jigsaw pretext task: 3×3 tiles shuffled by one permutation of a fixed max-Hamming set, the
label is the permutation's index.

Example:
```python
inputs, p = jigsaw(images, seed=batch_seed(0, 0), num_permutations=100)
perms = jigsaw_permutations(100)                        # tile slot j shows tile perms[p][j]
```
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import tensorflow as tf

from zoo.ssl.pretext.common import _NUM_ALL_PERMUTATIONS, _run_task, _shape, pretext_options


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
    return _run_task("jigsaw", (_draw_jigsaw, _apply_jigsaw), images, seed, options)


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
