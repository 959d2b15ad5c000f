"""Rotation pretext task (RotNet): each image turned by k·90°, the label is k.

Example:
```python
inputs, k = rotation(images, seed=batch_seed(0, 0))
restored = rotate_images(inputs, (4 - k) % 4)          # == images
```
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from zoo.ssl.pretext.common import _run_task, _shape


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
    return _run_task("rotation", (_draw_rotation, _apply_rotation), images, seed, {})
