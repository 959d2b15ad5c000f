"""The one result type every detection source returns, and the common element layout.

Element layout (unbatched; Keras's own, so preprocessing layers with ``bounding_box_format``
accept it)::

    {"images": uint8 (H, W, 3),
     "bounding_boxes": {"boxes": float32 (N, 4) absolute pixels "xyxy", "labels": int32 (N,)}}

Box coordinates are pixel edges: a box covering pixel columns 3..5 inclusive is ``x1=3, x2=6``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError, DataReport

AUTOTUNE = tf.data.AUTOTUNE


def element_spec(height=None, width=None):
    """The ``tf.data`` element spec of the common layout (unbatched)."""
    return {
        "images": tf.TensorSpec((height, width, 3), tf.uint8),
        "bounding_boxes": {
            "boxes": tf.TensorSpec((None, 4), tf.float32),
            "labels": tf.TensorSpec((None,), tf.int32),
        },
    }


def make_element(image, boxes, labels):
    """Packs an image and its boxes/labels into the common layout."""
    return {
        "images": image,
        "bounding_boxes": {
            "boxes": tf.reshape(tf.cast(boxes, tf.float32), (-1, 4)),
            "labels": tf.reshape(tf.cast(labels, tf.int32), (-1,)),
        },
    }


@dataclasses.dataclass
class DetectionData:
    """A detection set from any source, in the common layout.

    ``records`` is the cheap, undecoded form (file path + boxes + labels, or an index for synthetic
    sets) and ``decode_fn`` turns one record into an element; ``dataset`` chains the two. Shuffle
    ``records`` (not ``dataset``) to avoid buffering decoded images; ``detection_pipeline`` does.

    Attributes:
        records: Unbatched ``tf.data.Dataset`` of undecoded records.
        decode_fn: ``record -> element`` in the common layout (a tf function, safe in ``map``).
        class_names: Names of labels ``0..C-1``.
        num_examples: Number of images (``None`` when unknown).
        report: What was clipped / dropped / skipped while reading.
        source: Where the data came from (a path, ``"tfds:voc/2007"``, ``"synthetic"``).
        files: Image paths in dataset order, where the source has files (else ``None``).

    Example:
    ```python
    data = zoo.data.load_detection_data("synthetic", num_images=8)
    for element in data.dataset.take(1):
        print(element["images"].shape, element["bounding_boxes"]["boxes"].shape)
    ```
    """

    records: tf.data.Dataset
    decode_fn: Callable
    class_names: list
    num_examples: int | None
    report: DataReport
    source: str
    files: list | None = None

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def dataset(self):
        """Unbatched ``tf.data.Dataset`` of decoded elements in the common layout."""
        return self.as_dataset()

    def as_dataset(self, shuffle=False, seed=None, buffer_size=None):
        """Decoded elements; with ``shuffle`` the records are shuffled before decoding.

        Args:
            shuffle: Shuffle the records (reshuffled every iteration, reproducible with ``seed``).
            seed: Shuffle seed.
            buffer_size: Shuffle buffer; defaults to all examples (records are small).

        Returns:
            An unbatched ``tf.data.Dataset`` in the common layout.
        """
        records = self.records
        if shuffle:
            size = buffer_size or min(self.num_examples or 10_000, 100_000)
            records = records.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)
        return records.map(self.decode_fn, num_parallel_calls=AUTOTUNE, deterministic=True)


# A set this small is validated on its training images (as Ultralytics does for its 8-image
# sets): holding one image out would leave too little to train on and a meaningless score.
SMALL_SET_IMAGES = 10


def split_detection_data(data, fraction=0.1, seed=0):
    """Splits one source into (train, validation) by a seeded shuffle of its records.

    For sources that come as a single split (one COCO JSON, one YOLO folder): the same
    ``seed`` always puts the same images in the same part.

    Args:
        data: a ``DetectionData`` with a known ``num_examples``.
        fraction: share of images for validation, in (0, 1).
        seed: shuffle seed.

    Returns:
        ``(train, validation)`` ``DetectionData`` sharing ``class_names`` and ``report``; for a
        set of at most ``SMALL_SET_IMAGES`` images, ``(data, data)`` with a warning.

    Example:
        >>> train, val = split_detection_data(read_coco("ann.json", "images"), 0.1)
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1). Received: fraction={fraction!r}")
    total = data.num_examples
    if not total:
        raise DataError("no images to split into train and validation", file=data.source)
    if total <= SMALL_SET_IMAGES:
        warnings.warn(
            f"{data.source}: only {total} images; validating on the training images",
            stacklevel=2,
        )
        return data, data
    num_val = min(total - 1, max(1, int(round(total * fraction))))
    order = np.random.default_rng(seed).permutation(total)
    val_index = tf.constant(np.sort(order[:num_val]), tf.int64)
    indexed = data.records.enumerate()

    def part(keep_val):
        def keep(index, _):
            member = tf.reduce_any(tf.equal(val_index, index))
            return member if keep_val else tf.logical_not(member)

        return indexed.filter(keep).map(lambda _, record: record)

    files = data.files
    val_set = set(order[:num_val].tolist())
    return tuple(
        dataclasses.replace(
            data,
            records=part(is_val),
            num_examples=num_val if is_val else total - num_val,
            files=None
            if files is None
            else [f for i, f in enumerate(files) if (i in val_set) == is_val],
        )
        for is_val in (False, True)
    )


def decode_image_bytes(encoded):
    """Decodes JPEG/PNG/GIF/BMP bytes to uint8 (H, W, 3) (grey and RGBA become RGB)."""
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape((None, None, 3))
    return image


def decode_image_file(path):
    """Reads and decodes an image file to uint8 (H, W, 3), lazily inside tf.data."""
    return decode_image_bytes(tf.io.read_file(path))


def _decode_file_record(path, boxes, labels):
    return make_element(decode_image_file(path), boxes, labels)


def rendered_data(render, num_images, image_size, class_names, source):
    """``DetectionData`` of images drawn in NumPy on demand: records are the indices
    ``0 .. num_images - 1`` and ``render(index) -> (uint8 image (H, W, 3), float32 boxes (N, 4)
    pixel xyxy, int32 labels (N,))`` runs in ``tf.numpy_function`` when an element is decoded,
    so the set costs no memory and example ``i`` is the same however it is read."""
    height, width = (int(v) for v in image_size)

    def decode(index):
        image, boxes, labels = tf.numpy_function(
            lambda i: render(int(i)), [index], (tf.uint8, tf.float32, tf.int32), stateful=False
        )
        image.set_shape((height, width, 3))
        return make_element(image, boxes, labels)

    return DetectionData(
        records=tf.data.Dataset.range(num_images),
        decode_fn=decode,
        class_names=list(class_names),
        num_examples=int(num_images),
        report=DataReport(),
        source=source,
    )


def from_files(paths, boxes, labels, *, class_names, report, source):
    """Builds a ``DetectionData`` from per-image paths, boxes and labels parsed in Python.

    Args:
        paths: Image file paths (one per example).
        boxes: One float array (N_i, 4) per image, absolute pixels "xyxy".
        labels: One int array (N_i,) per image.
        class_names: Names of labels ``0..C-1``.
        report: The reader's ``DataReport``.
        source: Description of the source.

    Returns:
        A ``DetectionData`` whose records are ``(path, boxes, labels)``.
    """
    counts = np.array([len(b) for b in boxes], np.int64)
    ends = np.cumsum(counts)
    starts = ends - counts
    flat_boxes = (
        np.concatenate([np.reshape(b, (-1, 4)) for b in boxes]).astype(np.float32)
        if len(boxes)
        else np.zeros((0, 4), np.float32)
    )
    flat_labels = (
        np.concatenate([np.reshape(lab, (-1,)) for lab in labels]).astype(np.int32)
        if len(labels)
        else np.zeros((0,), np.int32)
    )
    all_boxes = tf.constant(flat_boxes.reshape(-1, 4))
    all_labels = tf.constant(flat_labels)

    def gather(path, start, end):
        return path, all_boxes[start:end], all_labels[start:end]

    paths = [str(p) for p in paths]
    records = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string), starts, ends)).map(
        gather
    )
    return DetectionData(
        records=records,
        decode_fn=_decode_file_record,
        class_names=list(class_names),
        num_examples=len(paths),
        report=report,
        source=source,
        files=paths,
    )
