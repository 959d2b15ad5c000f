"""Mosaic augmentation (YOLOv4 / YOLOv5): four training images in one, switchable during training.

Four consecutive (shuffled) elements are tiled 2 x 2 on a ``2H x 2W`` canvas and an ``H x W``
window is cut from it at a random position in the canvas's middle half, so every object keeps
its scale and the window shows parts of all four images. Boxes move with their image, are
clipped to the window and dropped when less than ``min_visibility`` of their area (or less than
``min_box_size`` pixels a side) stays inside, exactly as ``Augmentation`` drops them.

The probability lives in a ``tf.Variable`` that the dataset reads at every element, so training
can turn mosaic off for its last part (YOLOX and YOLOv8 close it for the last epochs, so the
model ends on images that look like the test images): ``Mosaic.close()``, or the
``CloseMosaic`` callback at a fraction of the epochs or of the time budget.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from zoo.data.augment import filter_boxes
from zoo.data.detection import make_element


def _ragged(*tensors):
    """Ragged views of batched boxes / labels (dense when every image had as many boxes)."""
    return [
        t if isinstance(t, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(t) for t in tensors
    ]


class Mosaic:
    """Tiles four elements and cuts an image-sized window, with probability ``probability``.

    Args:
        probability: chance that an output is a mosaic; otherwise it is the first of the four
            elements, unchanged (the other three are skipped).
        min_visibility: boxes keeping less than this fraction of their area are dropped.
        min_box_size: boxes narrower or lower than this (pixels, after clipping) are dropped.

    Example:
    ```python
    mosaic = Mosaic(0.5)
    dataset = mosaic_dataset(dataset, mosaic, seed=0)  # unbatched, one image size
    mosaic.close()  # from now on, plain images
    ```
    """

    def __init__(self, probability=1.0, min_visibility=0.25, min_box_size=2.0):
        if isinstance(probability, bool) or not 0 <= float(probability) <= 1:
            raise ValueError(
                f"probability must be in [0, 1]. Received: probability={probability!r}"
            )
        if not 0 <= float(min_visibility) <= 1:
            raise ValueError(
                f"min_visibility must be in [0, 1]. Received: min_visibility={min_visibility!r}"
            )
        self.probability = tf.Variable(
            float(probability), trainable=False, dtype=tf.float32, name="mosaic_probability"
        )
        self.min_visibility = float(min_visibility)
        self.min_box_size = float(min_box_size)

    @property
    def closed(self):
        return float(self.probability.numpy()) == 0.0

    def close(self):
        """Turns mosaic off for every element drawn from now on (a few prefetched ones aside)."""
        self.probability.assign(0.0)

    def tile(self, group, offset):
        """The window at ``offset`` = ``(x, y)`` pixels of the 2 x 2 tiling of ``group``.

        ``group`` is four elements batched with ``ragged_batch(4)``: images ``(4, H, W, 3)``,
        boxes ``(4, None, 4)`` and labels ``(4, None)`` ragged. Image 0 is top left, 1 top
        right, 2 bottom left, 3 bottom right.
        """
        images = group["images"]
        height, width = images.shape[1], images.shape[2]
        canvas = tf.concat(
            [tf.concat([images[0], images[1]], 1), tf.concat([images[2], images[3]], 1)], 0
        )
        x, y = offset[0], offset[1]
        window = tf.ensure_shape(
            tf.slice(canvas, [y, x, 0], [height, width, 3]), (height, width, 3)
        )
        boxes, labels = _ragged(group["bounding_boxes"]["boxes"], group["bounding_boxes"]["labels"])
        corners = tf.constant([[0, 0], [width, 0], [0, height], [width, height]], tf.float32)
        shift = tf.gather(corners, boxes.value_rowids()) - tf.cast(offset, tf.float32)[None]
        flat = boxes.flat_values
        moved = flat + tf.tile(shift, [1, 2])
        areas = (flat[:, 2] - flat[:, 0]) * (flat[:, 3] - flat[:, 1])
        kept, kept_labels = filter_boxes(
            moved,
            labels.flat_values,
            areas,
            float(height),
            float(width),
            self.min_box_size,
            self.min_visibility,
        )
        return make_element(window, kept, kept_labels)

    def __call__(self, group, seed):
        """One output element from four, by a stateless ``seed`` (shape (2,) ints)."""
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        height, width = group["images"].shape[1], group["images"].shape[2]
        offset = tf.stack([
            tf.random.stateless_uniform((), seeds[1], width // 4, 3 * width // 4 + 1, tf.int32),
            tf.random.stateless_uniform((), seeds[2], height // 4, 3 * height // 4 + 1, tf.int32),
        ])  # fmt: skip
        use = tf.random.stateless_uniform((), seeds[0]) < self.probability
        first = make_element(
            group["images"][0],
            group["bounding_boxes"]["boxes"][0],
            group["bounding_boxes"]["labels"][0],
        )
        return tf.cond(use, lambda: self.tile(group, offset), lambda: first)


def mosaic_dataset(dataset, mosaic, seed=0, num_parallel_calls=tf.data.AUTOTUNE):
    """Groups an unbatched dataset (one static image size) in fours and applies ``mosaic``.

    Each output consumes four elements, also when it is not a mosaic, so switching mosaic off
    keeps the stream's order and randomness.
    """
    shape = dataset.element_spec["images"].shape
    if not shape.is_fully_defined():
        raise ValueError(
            "mosaic needs images of one static size; map zoo.data.resize(element, size) first. "
            f"Received: images with shape {shape}"
        )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    groups = dataset.ragged_batch(4, drop_remainder=True)
    return tf.data.Dataset.zip(groups, seeds).map(
        mosaic, num_parallel_calls=num_parallel_calls, deterministic=True
    )


class CloseMosaic(keras.callbacks.Callback):
    """Calls ``mosaic.close()`` once training reaches ``at`` (a fraction of it).

    Progress is the larger of the epoch fraction and, with ``time_fraction``, the fraction of
    the time budget used. ``zoo.training.train`` (``make_callbacks``) hands a ``CloseMosaic``
    without one the run's ``TimeBudget.progress``, which counts the time of earlier attempts,
    so a resumed run closes mosaic when the whole run reaches ``at``, not its last attempt.

    Args:
        mosaic: the ``Mosaic`` the training dataset reads.
        at: progress in (0, 1] at which mosaic stops (YOLOX: the last 15 of 300 epochs, 0.95).
        time_fraction: function returning the fraction of the time budget used (e.g.
            ``TimeBudget.progress``), or None.

    Example:
        >>> budget = TimeBudget(minutes=10)
        >>> close = CloseMosaic(mosaic, at=0.85, time_fraction=budget.progress)
        >>> model.fit(data, epochs=100, callbacks=[budget, close])  # doctest: +SKIP
    """

    def __init__(self, mosaic, at=0.85, time_fraction=None):
        super().__init__()
        if not 0 < float(at) <= 1:
            raise ValueError(f"at must be in (0, 1]. Received: at={at!r}")
        self.mosaic = mosaic
        self.at = float(at)
        self.time_fraction = time_fraction
        self.closed_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def progress(self):
        epochs = max(1, int(self.params.get("epochs") or 1))
        fraction = self._epoch / epochs
        if self.time_fraction is not None:
            fraction = max(fraction, float(self.time_fraction()))
        return fraction

    def on_train_batch_begin(self, batch, logs=None):
        if self.closed_at is None and self.progress() >= self.at:
            self.mosaic.close()
            self.closed_at = (self._epoch, batch)
