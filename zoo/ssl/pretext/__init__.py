"""zoo.ssl.pretext: self-supervised pretext labels computed from unlabeled images.

Every transform is a pure batched TF function ``fn(images, seed, **options) -> (inputs, targets)``
(stateless random ops, vectorised over the batch); ``images`` (B, H, W, C) uint8/float32 0-255.

| task | inputs | targets |
|---|---|---|
| rotation | (B, H, W, C) turned k·90° ccw | int32 (B,) k in 0..3 |
| jigsaw | (B, 3·(H//3), 3·(W//3), C) tiles shuffled (``tiles=True``: (B, 9, th, tw, C)) | int32 (B,) index into ``jigsaw_permutations(n)`` |
| colorization | (B, H, W, 1) L*·2.55 | float32 (B, H, W, 2) ab/128, or int32 (B, H, W) bin of ``ab_bins`` |
| inpainting | (B, H, W, C) hidden pixels filled | float32 (B, H, W, C+1) concat(clean/255, mask) |
| denoising | (B, H, W, C) noisy, clipped | float32 (B, H, W, C) clean/255 |

Example:
```python
ds = tf.data.Dataset.from_tensor_slices(images)          # (N, 32, 32, 3) uint8
train = make_pretext_dataset(ds, "jigsaw", batch_size=128, seed=0, num_permutations=100)
inputs, targets = pretext_transform("rotation", batch, seed=batch_seed(0, 0))
```
"""

from zoo.ops.random import as_seed
from zoo.ssl.pretext.colorization_task import ab_bins, colorization, quantize_ab
from zoo.ssl.pretext.common import batch_seed, pretext_options
from zoo.ssl.pretext.denoising_task import denoising
from zoo.ssl.pretext.inpainting_task import inpainting, inpainting_masks
from zoo.ssl.pretext.jigsaw_task import (
    jigsaw,
    jigsaw_crop,
    jigsaw_min_distance,
    jigsaw_permutations,
    shuffle_tiles,
)
from zoo.ssl.pretext.pipeline import OnDevicePretext, PretextLayer, images_of, make_pretext_dataset
from zoo.ssl.pretext.registry import (
    PRETEXT_TASKS,
    TASKS,
    pretext_transform,
    split_pretext_transform,
)
from zoo.ssl.pretext.rotation_task import rotate_images, rotation

__all__ = [
    "ab_bins",
    "as_seed",
    "batch_seed",
    "colorization",
    "denoising",
    "images_of",
    "inpainting",
    "inpainting_masks",
    "jigsaw",
    "jigsaw_crop",
    "jigsaw_min_distance",
    "jigsaw_permutations",
    "make_pretext_dataset",
    "OnDevicePretext",
    "PRETEXT_TASKS",
    "pretext_options",
    "pretext_transform",
    "PretextLayer",
    "quantize_ab",
    "rotate_images",
    "rotation",
    "shuffle_tiles",
    "split_pretext_transform",
    "TASKS",
]
