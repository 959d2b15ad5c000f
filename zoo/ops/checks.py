"""Argument checks shared by the model builders (errors echo the bad value, Keras style)."""

from __future__ import annotations

__all__ = ["check_int", "encoder_feature_dim"]


def check_int(name, value, minimum=1):
    """``value`` if it is an int (not a bool) ``>= minimum``, else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return value


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
