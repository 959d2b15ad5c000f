"""TFDS detection sets (``voc``, ``coco``) converted to the common layout."""

from __future__ import annotations

import tensorflow as tf
from keras.utils import bounding_boxes

from zoo.data.detection import DetectionData, decode_image_bytes, make_element
from zoo.data.errors import DataError, DataReport
from zoo.data.readers.tfds_common import load_tfds

# name prefix -> (flag in objects that marks boxes to skip, option name)
_SKIP_FLAGS = {"voc": "is_difficult", "coco": "is_crowd"}


def _decode_record(record):
    image = decode_image_bytes(record["image"])
    shape = tf.shape(image)
    boxes = bounding_boxes.convert_format(
        record["boxes"], source="rel_yxyx", target="xyxy", height=shape[0], width=shape[1]
    )
    clipped = bounding_boxes.clip_to_image_size(
        {"boxes": boxes, "labels": record["labels"]},
        height=shape[0],
        width=shape[1],
        bounding_box_format="xyxy",
    )
    boxes = clipped["boxes"]
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return make_element(
        image, tf.boolean_mask(boxes, keep), tf.boolean_mask(record["labels"], keep)
    )


def read_tfds(name, split="train", data_dir=None, *, skip_flagged=None, download=False):
    """Loads a TFDS detection set (``voc/2007``, ``voc/2012``, ``coco/2017``, ...).

    Boxes (normalised "yxyx" in TFDS) become absolute "xyxy" pixels after the image is decoded;
    boxes outside the image are clipped and zero-area ones dropped on the fly (not counted: the
    data is read lazily). Images stay encoded in the records, so shuffling is cheap.

    Args:
        name: TFDS name with optional version/config, e.g. ``"voc/2007"``.
        split: TFDS split string (``"train"``, ``"validation"``, ``"train[:10%]"``).
        data_dir: TFDS data folder (``None``: TFDS default).
        skip_flagged: Skip VOC ``is_difficult`` / COCO ``is_crowd`` boxes. Defaults to
            ``True`` for COCO (crowd boxes are not detection targets) and ``False`` for VOC.
        download: Let TFDS download and prepare the set if it is missing. Off by default: the zoo
            downloads nothing at run time unless asked.

    Returns:
        ``DetectionData`` (``files`` is ``None``).

    Raises:
        DataError: The set is not prepared in ``data_dir`` or has no detection ``objects``.

    Example:
    ```python
    data = read_tfds("voc/2007", split="validation", data_dir="~/tensorflow_datasets")
    ```
    """
    source = f"tfds:{name}"
    family = name.split("/")[0].split(":")[0]
    builder, dataset = load_tfds(name, split, data_dir, download=download)
    objects = builder.info.features["objects"] if "objects" in builder.info.features else None
    if objects is None or "bbox" not in objects or "label" not in objects:
        raise DataError("not a detection set (no objects.bbox / objects.label)", file=source)
    class_names = list(objects["label"].names)
    flag = _SKIP_FLAGS.get(family)
    if skip_flagged is None:
        skip_flagged = family == "coco"
    if skip_flagged and (flag is None or flag not in objects):
        raise DataError(f"skip_flagged=True but {source} has no {flag or 'skip'} flag", file=source)

    def to_record(example):
        boxes = tf.reshape(tf.cast(example["objects"]["bbox"], tf.float32), (-1, 4))
        labels = tf.cast(example["objects"]["label"], tf.int32)
        if skip_flagged:
            keep = tf.logical_not(tf.cast(example["objects"][flag], tf.bool))
            boxes, labels = tf.boolean_mask(boxes, keep), tf.boolean_mask(labels, keep)
        return {"image": example["image"], "boxes": boxes, "labels": labels}

    records = dataset.map(to_record)
    cardinality = int(records.cardinality())
    return DetectionData(
        records=records,
        decode_fn=_decode_record,
        class_names=class_names,
        num_examples=cardinality if cardinality >= 0 else None,
        report=DataReport(),
        source=source,
    )
