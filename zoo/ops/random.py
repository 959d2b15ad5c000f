"""Stateless random draws that XLA and the TensorFlow kernels produce identically.

XLA keys stateless ops with the low 32 bits of each seed word (the TF kernels with all 64), and
the float ``stateless_uniform`` differs under ``jit_compile``; uint32 draws from low-bit seeds
agree. So transforms made in tf.data and in a compiled training step give the same numbers.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["low_bits", "split_seed", "uniform", "uniform_bits", "unit_float"]


def low_bits(seed):
    """The low 32 bits of each word of an integer seed tensor, as int64."""
    return tf.bitwise.bitwise_and(tf.cast(seed, tf.int64), 0xFFFFFFFF)


def split_seed(seed, num):
    """``num`` independent sub-seeds of ``seed``: an int64 ``(num, 2)`` tensor (low bits)."""
    return low_bits(tf.random.experimental.stateless_split(seed, num))


def uniform_bits(shape, seed):
    """Stateless uint32 draws of ``shape``."""
    return tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.uint32)


def unit_float(bits):
    """uint32 draws → float32 uniform in [0, 1) (24 bits)."""
    return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))


def uniform(shape, seed, minval=0.0, maxval=1.0):
    """float32 uniform in ``[minval, maxval)`` from uint32 draws."""
    return minval + (maxval - minval) * unit_float(uniform_bits(shape, seed))
