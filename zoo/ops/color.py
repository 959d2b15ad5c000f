"""Colour spaces: sRGB (0-255) <-> CIE L*a*b* (D65 white, 2° observer), the standard formulas.

TensorFlow versions for pipelines and graphs, NumPy twins for code that runs outside TensorFlow.
"""

import functools

import numpy as np
import tensorflow as tf

__all__ = ["lab_numpy", "lab_to_rgb", "lab_to_rgb_numpy", "rgb_to_lab"]


_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_LINEAR_RGB = (np.linalg.inv(_RGB_TO_XYZ) * _WHITE_D65[None, :]).T  # white-scaled XYZ → RGB
_DELTA = 6.0 / 29.0


@functools.lru_cache(maxsize=1)
def _srgb_to_linear_table():
    c = np.arange(256) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _pow(x, exponent):
    """x ** exponent for x > 0 as exp(exponent·log x): vectorised on CPU, unlike tf.pow."""
    return tf.exp(exponent * tf.math.log(x))


def rgb_to_lab(images):
    """sRGB (0-255) → CIE L*a*b* (D65 white, 2° observer), the standard formulas.

    uint8 input is linearised through a 256-entry table (the same formula, precomputed).

    Args:
        images: (..., 3) uint8/float 0-255.

    Returns:
        float32 (..., 3): L* in [0, 100], a*, b* roughly in [-128, 128].
        White → (100, 0, 0); sRGB red → (53.24, 80.09, 67.20).
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        linear = tf.gather(tf.constant(_srgb_to_linear_table()), tf.cast(images, tf.int32))
    else:
        c = tf.cast(images, tf.float32) / 255.0
        linear = tf.where(
            c <= 0.04045, c / 12.92, _pow((tf.maximum(c, 0.04045) + 0.055) / 1.055, 2.4)
        )
    matrix = tf.constant((_RGB_TO_XYZ / _WHITE_D65[:, None]).T, tf.float32)
    xyz = tf.tensordot(linear, matrix, axes=1)
    f = tf.where(
        xyz > _DELTA**3,
        _pow(tf.maximum(xyz, _DELTA**3), 1.0 / 3.0),
        xyz / (3.0 * _DELTA**2) + 4.0 / 29.0,
    )
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    """CIE L*a*b* (D65) → sRGB float32 (..., 3) in 0-255 (out-of-gamut values clipped)."""
    lab = tf.cast(lab, tf.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = tf.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = tf.where(f > _DELTA, f**3, 3.0 * _DELTA**2 * (f - 4.0 / 29.0))
    matrix = tf.constant(_XYZ_TO_LINEAR_RGB, tf.float32)
    linear = tf.tensordot(xyz, matrix, axes=1)
    c = tf.where(
        linear <= 0.0031308,
        12.92 * linear,
        1.055 * _pow(tf.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055,
    )
    return tf.clip_by_value(c, 0.0, 1.0) * 255.0


def lab_numpy(rgb):
    """NumPy sRGB (0-255) → CIE L*a*b* (D65), float64 (..., 3): the twin of ``rgb_to_lab``."""
    c = rgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ (_RGB_TO_XYZ / _WHITE_D65[:, None]).T
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def lab_to_rgb_numpy(lab):
    """NumPy twin of ``lab_to_rgb``: CIE L*a*b* (D65) → sRGB float64 (..., 3) in 0-255, clipped.

    For code that runs outside TensorFlow (the synthetic renderer's class colours).
    """
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3.0 * _DELTA**2 * (f - 4.0 / 29.0))
    linear = xyz @ _XYZ_TO_LINEAR_RGB
    linear = np.maximum(linear, 0.0)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1.0 / 2.4) - 0.055)
    return np.clip(c, 0.0, 1.0) * 255.0
