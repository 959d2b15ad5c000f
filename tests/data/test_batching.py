import logging

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import (
    DataReport,
    detection_pipeline,
    make_element,
    pad_batch,
    read_coco,
    synthetic_shapes,
)
from zoo.data.errors import OVER_MAX_BOXES


def _dataset(counts, size=(16, 24)):
    elements = []
    for n in counts:
        boxes = np.array([[i, i, i + 2, i + 3] for i in range(n)], np.float32).reshape(-1, 4)
        elements.append((np.zeros((*size, 3), np.uint8), boxes, np.arange(n, dtype=np.int32) + 1))

    def gen():
        yield from elements

    sig = (
        tf.TensorSpec((*size, 3), tf.uint8),
        tf.TensorSpec((None, 4), tf.float32),
        tf.TensorSpec((None,), tf.int32),
    )
    return tf.data.Dataset.from_generator(gen, output_signature=sig).map(make_element)


def test_dense_padding_values_and_shapes():
    (batch, last) = list(
        pad_batch(_dataset([2, 0, 3]), batch_size=2, max_boxes=4).as_numpy_iterator()
    )
    boxes, labels = batch["bounding_boxes"]["boxes"], batch["bounding_boxes"]["labels"]
    assert batch["images"].shape == (2, 16, 24, 3) and batch["images"].dtype == np.uint8
    assert boxes.shape == (2, 4, 4) and labels.shape == (2, 4)
    np.testing.assert_array_equal(labels, [[1, 2, -1, -1], [-1, -1, -1, -1]])
    np.testing.assert_allclose(boxes[0, :2], [[0, 0, 2, 3], [1, 1, 3, 4]])
    assert (boxes[0, 2:] == 0).all() and (boxes[1] == 0).all()
    assert last["bounding_boxes"]["labels"].shape == (1, 4)


def test_static_shapes_and_drop_remainder():
    ds = pad_batch(_dataset([1, 1, 1]), batch_size=2, max_boxes=5, drop_remainder=True)
    assert ds.element_spec["bounding_boxes"]["boxes"].shape == (2, 5, 4)
    assert ds.element_spec["bounding_boxes"]["labels"].shape == (2, 5)
    assert len(list(ds)) == 1


def test_boxes_beyond_max_are_dropped_and_counted(caplog):
    report = DataReport()
    with caplog.at_level(logging.WARNING, logger="zoo.data"):
        batches = list(
            pad_batch(_dataset([5, 1, 4]), 3, max_boxes=3, report=report).as_numpy_iterator()
        )
    np.testing.assert_array_equal(
        batches[0]["bounding_boxes"]["labels"], [[1, 2, 3], [1, -1, -1], [1, 2, 3]]
    )
    assert report[OVER_MAX_BOXES] == 3  # 2 + 1
    warnings = [r for r in caplog.records if "max_boxes=3" in r.getMessage()]
    assert len(warnings) == 1


def test_ragged_option():
    (batch,) = list(pad_batch(_dataset([2, 0, 3]), 3, max_boxes=None, ragged=True))
    boxes = batch["bounding_boxes"]["boxes"]
    assert isinstance(boxes, tf.RaggedTensor)
    assert boxes.row_lengths().numpy().tolist() == [2, 0, 3]
    assert batch["bounding_boxes"]["labels"].row_lengths().numpy().tolist() == [2, 0, 3]


def test_unresized_images_are_refused(coco_dir):
    data = read_coco(coco_dir / "annotations.json", coco_dir / "images")
    with pytest.raises(ValueError, match="map zoo.data.resize"):
        pad_batch(data.dataset, 2, max_boxes=4)


def test_pipeline_on_synthetic_with_augmentation_is_reproducible():
    data = synthetic_shapes(10, image_size=(64, 64), seed=2)

    def first_batches(seed):
        ds = detection_pipeline(data, (48, 64), batch_size=4, max_boxes=8, augment=True, seed=seed)
        return list(ds.take(2).as_numpy_iterator())

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    assert a[0]["images"].shape == (4, 48, 64, 3) and a[0]["images"].dtype == np.uint8
    assert a[0]["bounding_boxes"]["boxes"].shape == (4, 8, 4)
    labels = a[0]["bounding_boxes"]["labels"]
    assert labels.min() >= -1 and labels.max() < 5
    boxes = a[0]["bounding_boxes"]["boxes"]
    assert boxes[..., [0, 2]].max() <= 64 and boxes[..., [1, 3]].max() <= 48 and boxes.min() >= 0
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["images"], y["images"])
        np.testing.assert_array_equal(x["bounding_boxes"]["boxes"], y["bounding_boxes"]["boxes"])
    assert not np.array_equal(a[0]["images"], c[0]["images"])


def test_pipeline_without_augmentation_keeps_order(coco_dir):
    data = read_coco(coco_dir / "annotations.json", coco_dir / "images")
    (batch,) = list(
        detection_pipeline(
            data, (20, 20), batch_size=3, max_boxes=2, letterbox=True
        ).as_numpy_iterator()
    )
    # image a (40x30) letterboxed into 20x20: scale 0.5, 15 rows, top offset 2
    np.testing.assert_allclose(
        batch["bounding_boxes"]["boxes"][0, 0], [0.5, 1 + 2, 5.5, 3.5 + 2], atol=1e-4
    )
    np.testing.assert_array_equal(batch["bounding_boxes"]["labels"], [[0, 2], [2, -1], [-1, -1]])


def test_cached_pipeline_gives_the_same_images_as_uncached():
    data = synthetic_shapes(6, image_size=(32, 32), seed=3)
    plain = detection_pipeline(data, (32, 32), batch_size=6, max_boxes=8)
    cached = detection_pipeline(data, (32, 32), batch_size=6, max_boxes=8, cache=True)
    a, b = next(iter(plain)), next(iter(cached))
    np.testing.assert_array_equal(a["images"].numpy(), b["images"].numpy())
    np.testing.assert_array_equal(
        a["bounding_boxes"]["boxes"].numpy(), b["bounding_boxes"]["boxes"].numpy()
    )
    # shuffled + cached: every epoch is a permutation of the same cached images
    shuffled = detection_pipeline(
        data, (32, 32), batch_size=6, max_boxes=8, cache=True, shuffle=True, seed=1
    )
    epochs = [next(iter(shuffled))["images"].numpy() for _ in range(2)]
    for epoch in epochs:
        assert sorted(x.tobytes() for x in epoch) == sorted(
            x.tobytes() for x in a["images"].numpy()
        )
