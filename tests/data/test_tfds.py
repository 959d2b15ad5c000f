"""TFDS readers on mock data (no download): ``tfds.testing.mock_data`` with examples we choose.

TFDS's random mock generator draws each field of the ``objects`` sequence with its own length,
which ``voc`` and ``coco`` reject, so the tests supply their own examples through
``as_dataset_fn`` (encoded and decoded by the real feature specs, decoders included).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.data import DataError, read_tfds

_Y, _X = np.mgrid[0:20, 0:40]
IMAGE = np.stack([_X * 6, _Y * 12, np.full_like(_X, 100)], axis=-1).astype(np.uint8)  # smooth


def _objects(name, boxes, labels, flags):
    objects = {"bbox": [tfds.features.BBox(*b) for b in boxes], "label": labels}
    if name.startswith("voc"):
        objects.update(
            is_difficult=flags, is_truncated=[False] * len(labels), pose=["frontal"] * len(labels)
        )
    else:
        objects.update(is_crowd=flags, area=[1] * len(labels), id=list(range(len(labels))))
    return objects


def _example(name, objects):
    example = {"image": IMAGE, "image/filename": "x.jpg", "objects": objects}
    if name.startswith("voc"):
        example.update(
            labels=sorted(set(objects["label"])), labels_no_difficult=sorted(set(objects["label"]))
        )
    else:
        example.update({"image/id": 1})
    return example


def _mock(name, examples):
    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        features = self.info.features
        specs = features.get_serialized_info()
        encoded = [features.encode_example(e) for e in examples]

        def generate():
            yield from encoded

        ds = tf.data.Dataset.from_generator(
            generate,
            output_types=tf.nest.map_structure(lambda t: t.tf_dtype, specs),
            output_shapes=tf.nest.map_structure(lambda t: t.shape, specs),
        )
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(examples)))
        return ds.map(lambda e: features.decode_example(e, decoders=decoders))

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


@pytest.mark.parametrize("name", ["voc/2007", "coco/2017"])
def test_converts_relative_yxyx_to_pixel_xyxy(name, tmp_path):
    boxes = [
        (0.1, 0.25, 0.5, 0.75),
        (0.0, 0.0, 1.0, 1.0),
        (0.5, 0.5, 0.5, 0.6),
    ]  # last: zero height
    examples = [
        _example(name, _objects(name, boxes, [3, 1, 2], [False, True, False])),
        _example(name, _objects(name, [], [], [])),
    ]
    with _mock(name, examples):
        data = read_tfds(name, split="train", data_dir=str(tmp_path))
        elements = list(data.dataset.as_numpy_iterator())
    assert data.source == f"tfds:{name}" and data.num_examples == 2
    if name.startswith("voc"):
        assert (
            data.class_names[:3] == ["aeroplane", "bicycle", "bird"] and len(data.class_names) == 20
        )
        expected_boxes, expected_labels = (
            [[10, 2, 30, 10], [0, 0, 40, 20]],
            [3, 1],
        )  # difficult kept
    else:
        # COCO label names come from the prepared dataset_info.json; mock data only knows "0".."79"
        assert len(data.class_names) == 80
        expected_boxes, expected_labels = [[10, 2, 30, 10]], [3]  # crowd skipped
    first, empty = elements
    assert first["images"].shape == IMAGE.shape and first["images"].dtype == np.uint8
    # the image may be stored as JPEG (lossy): compare loosely
    assert np.abs(first["images"].astype(int) - IMAGE).mean() < 4
    np.testing.assert_allclose(first["bounding_boxes"]["boxes"], expected_boxes, atol=1e-4)
    np.testing.assert_array_equal(first["bounding_boxes"]["labels"], expected_labels)
    assert first["bounding_boxes"]["labels"].dtype == np.int32
    assert empty["bounding_boxes"]["boxes"].shape == (0, 4)


def test_voc_difficult_skip(tmp_path):
    examples = [
        _example(
            "voc",
            _objects("voc", [(0.1, 0.1, 0.2, 0.2), (0.3, 0.3, 0.4, 0.4)], [4, 5], [True, False]),
        )
    ]
    with _mock("voc/2007", examples):
        data = read_tfds("voc/2007", data_dir=str(tmp_path), skip_flagged=True)
        (element,) = list(data.dataset.as_numpy_iterator())
    np.testing.assert_array_equal(element["bounding_boxes"]["labels"], [5])


def test_not_prepared_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"tfds:voc/2007: cannot load .*tfds build voc"):
        read_tfds("voc/2007", data_dir=str(tmp_path))
