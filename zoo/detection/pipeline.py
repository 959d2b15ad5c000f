"""Training inputs for YOLO: anchors fitted to a data set and the (images, targets) pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from zoo.data import Augmentation, detection_pipeline
from zoo.ops.anchors import kmeans_anchors

__all__ = ["fit_anchors", "make_yolo_dataset"]

# Cache decoded, resized images in memory below this many bytes (then every epoch re-uses them).
CACHE_LIMIT_BYTES = 2 * 1024**3


# YOLOv2's VOC anchors (13x13 grid units) as fractions of the image, sorted by area.
YOLOV2_ANCHORS = tuple(
    (round(w / 13, 5), round(h / 13, 5))
    for w, h in ((1.08, 1.19), (3.42, 4.41), (9.42, 5.11), (6.63, 11.38), (16.62, 10.52))
)


def fit_anchors(data, k, seed=0, max_images=2000):
    """YOLOv2 anchors for a data set: k-means with the 1 - IoU distance on box shapes.

    Box widths and heights are taken relative to their image, so the anchors hold for any
    input size the images are resized to (plain resize, no letterbox).

    Args:
        data: a ``zoo.data.DetectionData``.
        k: number of anchors.
        seed: k-means seed.
        max_images: read at most this many images' boxes.

    Returns:
        A list of ``(w, h)`` tuples, fractions of the image, sorted by area: ``k`` of them, or
        fewer for a small set (one per distinct box shape, with a warning naming the count), or
        YOLOv2's anchors when the set holds no box at all (with a warning).
    """
    shapes = []
    for element in data.dataset.take(max_images).as_numpy_iterator():
        height, width = element["images"].shape[:2]
        boxes = element["bounding_boxes"]["boxes"]
        if len(boxes):
            shapes.append((boxes[:, 2:] - boxes[:, :2]) / np.array([width, height], np.float32))
    shapes = np.concatenate(shapes) if shapes else np.zeros((0, 2), np.float32)
    shapes = shapes[(shapes > 0).all(axis=1)]
    distinct = len(np.unique(np.round(shapes, 6), axis=0))
    if distinct == 0:
        warnings.warn(
            f"{data.source}: no boxes in the first {max_images} images; using YOLOv2's "
            f"{len(YOLOV2_ANCHORS)} anchors",
            stacklevel=2,
        )
        return list(YOLOV2_ANCHORS)
    if distinct < k:
        warnings.warn(
            f"{data.source}: {len(shapes)} boxes of {distinct} distinct shapes in the first "
            f"{max_images} images cannot give k={k} anchors; fitting {distinct}",
            stacklevel=2,
        )
        k = distinct
    anchors, _ = kmeans_anchors(shapes, k, seed=seed)
    return [(round(float(w), 5), round(float(h), 5)) for w, h in np.asarray(anchors)]


def make_yolo_dataset(
    data,
    loss,
    image_size,
    batch_size,
    max_boxes=50,
    training=False,
    seed=0,
    augmentation=None,
    mosaic=None,
):
    """``(images float32 0-255, dense YOLO targets)`` batches for ``model.fit``.

    Args:
        data: a ``zoo.data.DetectionData``.
        loss: the ``zoo.detection.YoloLoss`` the model trains with (its ``encode`` makes targets).
        image_size: ``(height, width)`` of the model input.
        batch_size: images per batch.
        max_boxes: boxes kept per image.
        training: shuffle, augment, repeat forever and drop the last partial batch.
        seed: shuffle / augmentation seed.
        augmentation: a ``zoo.data.Augmentation`` (default ``Augmentation()`` when training).
        mosaic: a ``zoo.data.Mosaic`` (training only; its ``close()`` turns it off mid-run).

    Returns:
        A batched, prefetched ``tf.data.Dataset``. Decoded images are cached in memory when
        they fit in ``CACHE_LIMIT_BYTES``.
    """
    height, width = (int(v) for v in image_size)
    cache = (data.num_examples or np.inf) * height * width * 3 <= CACHE_LIMIT_BYTES
    dataset = detection_pipeline(
        data,
        (height, width),
        batch_size,
        max_boxes=max_boxes,
        augment=(augmentation or Augmentation()) if training else False,
        shuffle=training,
        seed=seed,
        repeat=training,
        drop_remainder=training,
        cache=cache,
        mosaic=mosaic if training else None,
    )

    def to_inputs_and_targets(batch):
        boxes = batch["bounding_boxes"]
        targets = loss.encode(
            boxes["boxes"], boxes["labels"], box_format="xyxy", image_shape=(height, width)
        )
        return tf.cast(batch["images"], tf.float32), targets

    return dataset.map(to_inputs_and_targets, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE
    )
