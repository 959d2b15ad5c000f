"""What every pretext task shares: the task names, their options (defaults, allowed values,
checks), the per-batch seed contract and the run of a task's draw/apply halves.

Batch ``i`` of a stream with base seed ``s`` uses ``batch_seed(s, i)`` =
``stateless_fold_in([s, 0], i)`` (int64), in ``make_pretext_dataset`` and in ``PretextLayer``.

Example: ``pretext_options("jigsaw", num_permutations=30)`` →
``{"num_permutations": 30, "permutation_seed": 0, "tiles": False}``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from zoo.ops.random import as_seed, split_seed

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


def _run_task(task, parts, images, seed, options):
    """Checks ``options`` and ``images``, then runs the task's halves ``parts = (draw, apply)``:
    ``apply(x, draw(x, seed, o), o)``."""
    o = pretext_options(task, **options)
    x = _checked_images(images, task)
    draw, apply = parts
    return apply(x, draw(x, as_seed(seed), o), o)
