"""Pretext labels in tf.data (``make_pretext_dataset``) or inside the model (``PretextLayer``,
``OnDevicePretext``), with the same per-batch seeds, so both placements give the same
(inputs, targets).

Batch i of a stream with base seed s uses ``batch_seed(s, i)`` = ``stateless_fold_in([s, 0], i)``;
the layer counts its training calls in a variable and derives the same seeds.

Example:
```python
ds = tf.data.Dataset.from_tensor_slices(images)                  # (N, 32, 32, 3) uint8
train = make_pretext_dataset(ds, "rotation", batch_size=128, seed=0)
model.fit(train)                                                  # model: inputs -> 4 logits

# or on the accelerator: raw image batches in, labels made inside train_step
wrapper = OnDevicePretext(model, "rotation", seed=0)
wrapper.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
wrapper.fit(ds.batch(128))
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from zoo.ssl.pretext.common import batch_seed, pretext_options
from zoo.ssl.pretext.registry import PRETEXT_TASKS, split_pretext_transform

_LAYER_KWARGS = ("name", "dtype", "trainable", "autocast")


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be a Python int. Received: seed={seed!r}")
    return seed


def _image_picker(spec):
    """A function element -> images for datasets of images, (images, labels...) or dicts."""
    if isinstance(spec, dict):
        if "images" not in spec:
            raise ValueError(
                "make_pretext_dataset: a dataset of dicts needs an 'images' key. "
                f"Received: keys {sorted(spec)}"
            )
        return spec["images"], lambda element: element["images"]
    if isinstance(spec, (tuple, list)):
        return _image_picker(spec[0])[0], lambda *element: element[0]
    return spec, None


def images_of(data):
    """The image batch in a Keras ``data`` element: a tensor, (images, ...) or {"images": ...}."""
    if isinstance(data, dict):
        return data["images"]
    if isinstance(data, (tuple, list)):
        return images_of(data[0])
    return data


def make_pretext_dataset(
    ds,
    task,
    batch_size,
    seed=0,
    num_parallel_calls=tf.data.AUTOTUNE,
    drop_remainder=True,
    *,
    jit_compile=True,
    **options,
):
    """Batches an unlabeled dataset, then labels every batch with a vectorised pretext transform.

    Batch first, then one parallel ``map`` of the batched transform (stateless, seeded per batch:
    batch i uses ``batch_seed(seed, i)``), then prefetch. Deterministic for a seed
    (``deterministic=True`` map, seeds from the batch number). With ``jit_compile`` the
    arithmetic half of the transform (``split_pretext_transform``) is XLA-compiled (fused
    kernels: 3-9x faster on CPU; compiled once per batch shape, a second or two), while the
    random draws stay TF kernels; results equal ``pretext_transform`` up to float rounding
    (integer labels, masks and noise draws exactly).

    Args:
        ds: ``tf.data.Dataset`` of images (H, W, C) uint8/float32 0-255, or of
            (images, labels, ...) tuples, or of dicts with an "images" key (the images are taken,
            the rest dropped). With ``batch_size=None`` its elements are already batches.
        task: "rotation", "jigsaw", "colorization", "inpainting" or "denoising".
        batch_size: images per batch, or None when ``ds`` is already batched.
        seed: int, base seed of the stream.
        num_parallel_calls: of the labelling map.
        drop_remainder: drop the last partial batch (static batch size).
        jit_compile: XLA-compile the arithmetic (keyword only).
        **options: the task's options (``pretext_options``).

    Returns:
        ``tf.data.Dataset`` of (inputs, targets) batches, as described in ``PRETEXT_TASKS``.
    """
    options = pretext_options(task, **options)
    seed = _check_seed(seed)
    if not isinstance(ds, tf.data.Dataset):
        raise ValueError(
            f"make_pretext_dataset takes a tf.data.Dataset. Received: ds of type {type(ds).__name__}"
        )
    spec, pick = _image_picker(ds.element_spec)
    if pick is not None:
        ds = ds.map(pick, num_parallel_calls=num_parallel_calls, deterministic=True)
    want = 3 if batch_size is not None else 4
    if spec.shape.rank != want:
        raise ValueError(
            f"make_pretext_dataset: with batch_size={batch_size!r} the images must have rank "
            f"{want} ({'(H, W, C)' if want == 3 else '(B, H, W, C)'}). "
            f"Received: element shape {spec.shape}"
        )
    if task == "colorization" and spec.shape[-1] is not None and spec.shape[-1] != 3:
        raise ValueError(
            "colorization needs RGB images (C == 3): a grayscale image has no colour to predict. "
            f"Received: images with shape {spec.shape}"
        )
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1. Received: batch_size={batch_size!r}")
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    draw, apply = split_pretext_transform(task, **options)
    if jit_compile:
        apply = tf.function(apply, jit_compile=True, autograph=False)

    def label(index, images):
        return apply(images, draw(images, batch_seed(seed, index)))

    ds = ds.enumerate().map(label, num_parallel_calls=num_parallel_calls, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="zoo")
class PretextLayer(keras.layers.Layer):
    """A pretext transform as a layer: ``call(images) -> (inputs, targets)``.

    Placed in the training step (see ``OnDevicePretext``) the labels are made on the accelerator.
    A non-trainable int64 ``step`` variable counts training calls: call i (from 0) uses
    ``batch_seed(seed, i)``, the seed of batch i of ``make_pretext_dataset(..., seed=seed)``, so
    both placements give identical (inputs, targets). Calls with ``training=False`` use their own
    counter ``eval_step`` on stream 1 (``batch_seed(seed, i, stream=1)``) and leave the training
    sequence untouched. Under a multi-replica strategy every replica would use the same seed for
    its share of the batch: use the tf.data placement there.

    Args:
        task: "rotation", "jigsaw", "colorization", "inpainting" or "denoising".
        seed: int, base seed.
        **options: the task's options (``pretext_options``), plus Layer kwargs (name, ...).

    Example:
    ```python
    layer = PretextLayer("jigsaw", seed=0, num_permutations=64)
    tiles, index = layer(images)      # images (B, 33, 33, 3) -> (B, 33, 33, 3), (B,) int32
    ```
    """

    def __init__(self, task, seed=0, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_KWARGS if k in kwargs}
        layer_kwargs.setdefault("dtype", "float32")
        super().__init__(**layer_kwargs)
        self.options = pretext_options(task, **kwargs)
        self.task = task
        self.seed = _check_seed(seed)
        self.step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="step"
        )
        self.eval_step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="eval_step"
        )
        self.built = True

    def call(self, images, training=None):
        counter, stream = (self.eval_step, 1) if training is False else (self.step, 0)
        index = tf.identity(counter.value)
        outputs = PRETEXT_TASKS[self.task](
            images, batch_seed(self.seed, index, stream), **self.options
        )
        counter.assign_add(1)
        return outputs

    def reset_counters(self):
        """Restarts both seed sequences from batch 0."""
        self.step.assign(0)
        self.eval_step.assign(0)

    def get_config(self):
        return {**super().get_config(), "task": self.task, "seed": self.seed, **self.options}


@keras.saving.register_keras_serializable(package="zoo")
class OnDevicePretext(keras.Model):
    """Trains ``model`` on pretext labels made inside the train/test step from raw image batches.

    ``fit(x)`` takes batches of unlabeled images (a dataset of image batches, of
    (images, labels) or of {"images": ...}; or an array with ``batch_size``); each step applies a
    ``PretextLayer`` to the images and trains ``model`` on (inputs, targets) with the compiled
    loss and metrics. On a GPU the labels are thus generated on the accelerator. Evaluation
    batches use the layer's evaluation stream, restarted at each ``evaluate`` (so validation sets
    are labelled the same way every epoch). ``call``/``predict`` run ``model`` on pretext inputs.

    Args:
        model: a Keras model, pretext inputs → predictions.
        task: "rotation", "jigsaw", "colorization", "inpainting" or "denoising".
        seed: int, base seed (training step i uses ``batch_seed(seed, i)``).
        **options: the task's options.

    Example:
    ```python
    wrapper = OnDevicePretext(model, "denoising", seed=0, noise="masking", fraction=0.3)
    wrapper.compile(optimizer="adam", loss="mse")
    wrapper.fit(tf.data.Dataset.from_tensor_slices(images).batch(64), epochs=2)
    ```
    """

    def __init__(self, model, task, seed=0, **kwargs):
        model_kwargs = {k: kwargs.pop(k) for k in ("name", "trainable") if k in kwargs}
        super().__init__(**model_kwargs)
        self.model = model
        self.pretext = PretextLayer(task, seed=seed, **kwargs)
        self.task = task
        self.seed = seed
        self.options = self.pretext.options

    def build(self, input_shape):
        if not self.model.built:
            self.model.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def _pretext_batch(self, data, training):
        return self.pretext(images_of(data), training=training)

    def train_step(self, data):
        return super().train_step(self._pretext_batch(data, training=True))

    def test_step(self, data):
        return super().test_step(self._pretext_batch(data, training=False))

    def evaluate(self, *args, **kwargs):
        self.pretext.eval_step.assign(0)
        return super().evaluate(*args, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model": keras.saving.serialize_keras_object(self.model),
            "task": self.task,
            "seed": self.seed,
            **self.options,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)
