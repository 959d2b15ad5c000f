"""Batching detection elements: dense padded boxes (or ragged) and the one-call pipeline."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from zoo.data.augment import Augmentation, augment_dataset, resize
from zoo.data.errors import OVER_MAX_BOXES, DataReport
from zoo.data.mosaic import mosaic_dataset

logger = logging.getLogger("zoo.data")


def _truncation_counter(report, max_boxes):
    def note(count):
        first = report[OVER_MAX_BOXES] == 0
        report.add(
            OVER_MAX_BOXES, f"an image with {int(count)} boxes", count=int(count) - max_boxes
        )
        if first:
            logger.warning(
                "an image has %d boxes > max_boxes=%d: the extra boxes are dropped "
                "(counted in the report passed to pad_batch; raise max_boxes to keep them)",
                int(count),
                max_boxes,
            )
        return np.int64(0)

    return note


def _truncate(max_boxes, note):
    def truncate(element):
        boxes = element["bounding_boxes"]["boxes"]
        labels = element["bounding_boxes"]["labels"]
        count = tf.shape(labels, out_type=tf.int64)[0]
        noted = tf.cond(
            count > max_boxes,
            lambda: tf.numpy_function(note, [count], tf.int64, stateful=True),
            lambda: tf.constant(0, tf.int64),
        )
        with tf.control_dependencies([noted]):
            boxes = tf.identity(boxes[:max_boxes])
            labels = tf.identity(labels[:max_boxes])
        return boxes, labels

    return truncate


def pad_batch(
    dataset, batch_size, max_boxes=100, *, ragged=False, drop_remainder=False, report=None
):
    """Batches detection elements; boxes padded to ``max_boxes`` (or kept ragged).

    Images must all have one size first (``zoo.data.resize``, or a synthetic set): a dataset whose
    image shape is not static is refused. Boxes beyond ``max_boxes`` in one image are dropped (the
    first ``max_boxes`` are kept); each time, ``report`` counts them and the first time a warning
    is logged.

    Args:
        dataset: Unbatched dataset in the common layout, images of one static size.
        batch_size: Images per batch.
        max_boxes: Boxes per image after padding (dense) or at most (ragged; ``None``: no limit).
        ragged: Return ``tf.RaggedTensor`` boxes (B, None, 4) and labels (B, None) instead.
        drop_remainder: Drop the last incomplete batch.
        report: A ``DataReport`` to count dropped boxes into (a new one when ``None``).

    Returns:
        Dataset of ``{"images": uint8 (B, H, W, 3), "bounding_boxes": {"boxes": float32
        (B, max_boxes, 4) zero-padded, "labels": int32 (B, max_boxes) padded with -1}}``.

    Example:
    ```python
    batches = pad_batch(data.dataset.map(lambda e: resize(e, (128, 128))), 8, max_boxes=20)
    ```
    """
    image_shape = dataset.element_spec["images"].shape
    if not image_shape.is_fully_defined():
        raise ValueError(
            "pad_batch needs images of one static size; map zoo.data.resize(element, size) first. "
            f"Received: images with shape {image_shape}"
        )
    if max_boxes is None and not ragged:
        raise ValueError("max_boxes=None needs ragged=True")
    report = DataReport() if report is None else report

    def to_fixed(element):
        boxes = element["bounding_boxes"]["boxes"]
        labels = element["bounding_boxes"]["labels"]
        if max_boxes is not None:
            boxes, labels = truncate(element)
        if not ragged:
            pad = max_boxes - tf.shape(labels)[0]
            boxes = tf.ensure_shape(tf.pad(boxes, [[0, pad], [0, 0]]), (max_boxes, 4))
            labels = tf.ensure_shape(tf.pad(labels, [[0, pad]], constant_values=-1), (max_boxes,))
        return {"images": element["images"], "bounding_boxes": {"boxes": boxes, "labels": labels}}

    if max_boxes is not None:
        truncate = _truncate(int(max_boxes), _truncation_counter(report, int(max_boxes)))
    dataset = dataset.map(to_fixed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if ragged:
        return dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def detection_pipeline(
    data,
    image_size,
    batch_size,
    max_boxes=100,
    augment=False,
    shuffle=None,
    seed=0,
    letterbox=False,
    ragged=False,
    drop_remainder=False,
    repeat=False,
    cache=False,
    mosaic=None,
):
    """Records -> (shuffle) -> decode -> resize -> (mosaic) -> (augment) -> pad/batch -> prefetch.

    Shuffling happens on the undecoded records (cheap); every map is parallel and keeps order, so
    a given ``seed`` gives the same batches.

    Args:
        data: A ``DetectionData`` (any reader or ``synthetic_shapes``).
        image_size: ``(height, width)`` of the batched images.
        batch_size: Images per batch.
        max_boxes: Padded boxes per image (see ``pad_batch``).
        augment: ``False``, ``True`` (default ``Augmentation()``) or an ``Augmentation``.
        shuffle: Shuffle records; defaults to ``bool(augment)`` (training).
        seed: Seed for shuffling and augmentation.
        letterbox: Resize keeping the aspect ratio (grey padding).
        ragged: Ragged boxes/labels instead of padding.
        drop_remainder: Drop the last incomplete batch.
        repeat: Repeat forever (a new shuffle and new augmentation draws every epoch).
        cache: Decode and resize once, keep the resized images in memory (``H*W*3`` bytes
            each), then shuffle the cached elements every epoch; worth it when decoding (or
            drawing the synthetic set) costs more than a training step's share of the CPU.
        mosaic: a ``zoo.data.Mosaic`` to tile images in fours before augmenting, or None.

    Returns:
        A batched, prefetched ``tf.data.Dataset`` (layout of ``pad_batch``). Dropped boxes are
        counted in ``data.report``.

    Example:
    ```python
    data = synthetic_shapes(512, image_size=(128, 128))
    train = detection_pipeline(data, (128, 128), batch_size=16, max_boxes=20, augment=True)
    ```
    """
    shuffle = bool(augment) if shuffle is None else shuffle
    size = (int(image_size[0]), int(image_size[1]))

    def resized(dataset):
        return dataset.map(
            lambda element: resize(element, size, letterbox=letterbox),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    if cache:
        dataset = resized(data.dataset).cache()
        if shuffle:
            buffer = max(1, min(data.num_examples or 10_000, 100_000))
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
    else:
        dataset = data.as_dataset(shuffle=shuffle, seed=seed)
        if repeat:
            dataset = dataset.repeat()
        dataset = resized(dataset)
    if mosaic is not None:
        dataset = mosaic_dataset(dataset, mosaic, seed=seed)
    if augment:
        augmentation = augment if isinstance(augment, Augmentation) else Augmentation()
        dataset = augment_dataset(dataset, augmentation, seed=seed)
    dataset = pad_batch(
        dataset,
        batch_size,
        max_boxes,
        ragged=ragged,
        drop_remainder=drop_remainder,
        report=data.report,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
