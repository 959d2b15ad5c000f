"""Denoising pretext task: corrupt the image (Gaussian, salt-and-pepper or masking noise) and
reconstruct the clean one.

Example:
```python
inputs, clean = denoising(images, seed=batch_seed(0, 0), noise="salt_pepper", fraction=0.2)
```
"""

from __future__ import annotations

import tensorflow as tf

from zoo.ops.random import hashed_bits, normal_from_bits, uniform_bits, unit_float
from zoo.ssl.pretext.common import _run_task, _shape


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
    return _run_task("denoising", (_draw_denoising, _apply_denoising), images, seed, options)
