"""Argument checks shared by every family (errors echo the bad value, Keras style):
``check_int``, ``check_fraction``, ``encoder_feature_dim``."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_fraction", "check_int", "encoder_feature_dim"]


def check_int(name, value, minimum=1):
    """``int(value)`` if it is an integer (Python or NumPy, not a bool) ``>= minimum``, else a
    ``ValueError`` naming the argument and echoing the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def check_fraction(name, value, low=0.0, high=1.0, include_low=True):
    """``float(value)`` if it is a finite number in ``[low, high]`` (``(low, high]`` with
    ``include_low=False``), else a ``ValueError`` naming the argument and echoing the value."""
    bracket = "[" if include_low else "("
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(float(value))
        and (low <= value if include_low else low < value)
        and value <= high
    )
    if not ok:
        raise ValueError(
            f"{name} must be a number in {bracket}{low:g}, {high:g}]. Received: {name}={value!r}"
        )
    return float(value)


def encoder_feature_dim(encoder):
    """Feature size D of a built encoder mapping images to ``(batch, D)``; else ``ValueError``."""
    try:
        shape = encoder.output_shape
    except (AttributeError, ValueError, RuntimeError):
        shape = None
    if not isinstance(shape, tuple) or len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            "encoder must be a built keras.Model mapping images to (batch, features). Received "
            f"output shape {shape!r}"
        )
    return int(shape[-1])
