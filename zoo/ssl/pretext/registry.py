"""Pretext-task registry and dispatch: ``pretext_transform(task, images, seed, **options)`` and
``split_pretext_transform`` over the five transforms (one module each), all pure batched TF
functions ``fn(images, seed, **options)``.

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

import types

from zoo.ops.random import as_seed
from zoo.ssl.pretext.colorization_task import _apply_colorization, _draw_colorization, colorization
from zoo.ssl.pretext.common import TASKS, _checked_images, _run_task, pretext_options
from zoo.ssl.pretext.denoising_task import _apply_denoising, _draw_denoising, denoising
from zoo.ssl.pretext.inpainting_task import _apply_inpainting, _draw_inpainting, inpainting
from zoo.ssl.pretext.jigsaw_task import _apply_jigsaw, _draw_jigsaw, jigsaw
from zoo.ssl.pretext.rotation_task import _apply_rotation, _draw_rotation, rotation

__all__ = ["PRETEXT_TASKS", "TASKS", "pretext_transform", "split_pretext_transform"]

_PARTS = {
    "rotation": (_draw_rotation, _apply_rotation),
    "jigsaw": (_draw_jigsaw, _apply_jigsaw),
    "colorization": (_draw_colorization, _apply_colorization),
    "inpainting": (_draw_inpainting, _apply_inpainting),
    "denoising": (_draw_denoising, _apply_denoising),
}


def _run(task, images, seed, options):
    return _run_task(task, _PARTS[task], images, seed, options)


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
