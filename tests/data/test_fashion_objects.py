"""zoo.data.fashion_objects: real Fashion-MNIST items as detection objects, and write_coco."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import (
    DataError,
    fashion_objects,
    load_fashion_mnist,
    read_coco,
    render_fashion_objects,
    synthetic_shapes,
    write_coco,
)
from zoo.data.fashion_mnist import FASHION_MNIST_CLASSES

SIZE = (64, 64)


@pytest.fixture(scope="module")
def fashion():
    try:
        return load_fashion_mnist()
    except DataError as error:
        pytest.skip(reason=f"Fashion-MNIST files not installed: {error}")


def _as_numpy(element):
    return (
        element["images"],
        element["bounding_boxes"]["boxes"],
        element["bounding_boxes"]["labels"],
    )


def test_same_seed_and_index_give_the_same_example_in_any_order(fashion):
    data = fashion_objects(8, image_size=SIZE, seed=5)
    spec = data.dataset.element_spec
    assert spec["images"].shape == (64, 64, 3) and spec["images"].dtype == tf.uint8
    assert data.class_names == list(FASHION_MNIST_CLASSES) and data.num_examples == 8
    in_order = [_as_numpy(e) for e in data.dataset.as_numpy_iterator()]
    shuffled = data.records.shuffle(8, seed=1).map(
        lambda i: (i, data.decode_fn(i)), num_parallel_calls=2, deterministic=False
    )
    for index, element in shuffled.as_numpy_iterator():
        for a, b in zip(in_order[index], _as_numpy(element), strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(in_order[3], render_fashion_objects(3, seed=5, image_size=SIZE), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(render_fashion_objects(3, seed=6, image_size=SIZE)[0], in_order[3][0])


def test_boxes_are_inside_tight_and_around_visible_items(fashion):
    height, width = SIZE
    boxed = 0
    for index in range(40):
        image, boxes, labels, sources = render_fashion_objects(
            index, seed=1, image_size=SIZE, return_sources=True
        )
        assert boxes.dtype == np.float32 and labels.dtype == np.int32
        assert len(boxes) == len(labels) == len(sources["objects"])
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= width)
        assert np.all(boxes[:, 3] <= height)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert np.all((labels >= 0) & (labels <= 9))
        # the item's visible pixels differ from the background it was pasted on (the final
        # noise has a standard deviation of 1-5 levels per channel)
        change = np.abs(image.astype(int) - sources["background"].astype(int)).sum(-1)
        for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            inside, shown = change[y1:y2, x1:x2], sources["top"][y1:y2, x1:x2] == k
            assert shown.any() and (inside[shown] > 40).mean() > 0.5
            # tight: the first and last row and column inside the box all hold item pixels
            for line in (inside[0], inside[-1], inside[:, 0], inside[:, -1]):
                assert line.max() > 25
            # the box is the bounding box of the item's visible silhouette
            rows, cols = np.flatnonzero(shown.any(1)), np.flatnonzero(shown.any(0))
            assert (rows[0], cols[0], rows[-1], cols[-1]) == (0, 0, y2 - y1 - 1, x2 - x1 - 1)
            boxed += 1
    assert boxed > 60


def test_train_and_validation_items_come_from_different_idx_files(fashion):
    (_, y_train), (_, y_test) = fashion
    for split, pool, idx_labels in (
        ("train", "train", y_train),
        ("validation", "test", y_test),
        ("test", "test", y_test),
    ):
        for index in range(10):
            _, _, labels, sources = render_fashion_objects(
                index, image_size=SIZE, split=split, return_sources=True
            )
            assert sources["pool"] == pool
            # each box's label is that of the IDX item it was made from
            np.testing.assert_array_equal(labels, idx_labels[sources["objects"]])
            # background fragments are crops of other items, never of a boxed one
            assert not set(sources["fragments"]) & set(sources["objects"])
    train = render_fashion_objects(0, image_size=SIZE, split="train")[0]
    val = render_fashion_objects(0, image_size=SIZE, split="validation")[0]
    assert not np.array_equal(train, val)


def test_all_ten_classes_appear_in_200_images(fashion):
    seen = set()
    for index in range(200):
        seen.update(render_fashion_objects(index, seed=2, image_size=SIZE)[2].tolist())
    assert seen == set(range(10))


def test_missing_files_raise_load_fashion_mnists_data_error(tmp_path):
    with pytest.raises(DataError, match="Fashion-MNIST IDX files"):
        fashion_objects(4, image_size=SIZE, path=tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"split": "training"},
        {"image_size": (8, 8)},
        {"size_range": (0.5, 0.2)},
        {"max_overlap": 1.0},
        {"empty_fraction": 2.0},
    ],
)
def test_bad_arguments_raise(fashion, kwargs):
    with pytest.raises(ValueError):
        fashion_objects(4, **{"image_size": SIZE, **kwargs})


def _elements(data):
    return [_as_numpy(e) for e in data.dataset.as_numpy_iterator()]


@pytest.mark.parametrize("source", ["shapes", "fashion"])
def test_write_coco_round_trips_through_read_coco(tmp_path, source, request):
    if source == "fashion":
        request.getfixturevalue("fashion")
        data = fashion_objects(6, image_size=SIZE, seed=3, empty_fraction=0.3)
    else:
        data = synthetic_shapes(6, image_size=(48, 64), seed=3)
    path = write_coco(data, tmp_path / "set", start_id=11)
    copy = read_coco(path)
    assert copy.class_names == data.class_names and copy.num_examples == 6
    assert [f.rsplit("/", 1)[-1] for f in copy.files] == [f"{i:06d}.png" for i in range(11, 17)]
    for (image, boxes, labels), (image2, boxes2, labels2) in zip(
        _elements(data), _elements(copy), strict=True
    ):
        np.testing.assert_array_equal(image, image2)  # PNG is lossless
        np.testing.assert_array_equal(boxes, boxes2)
        np.testing.assert_array_equal(labels, labels2)


def test_write_coco_rejects_a_bad_start_id(tmp_path):
    with pytest.raises(ValueError, match="start_id"):
        write_coco(synthetic_shapes(1, image_size=(32, 32)), tmp_path, start_id=0)


def test_bench_yolo_budget_table_formats_given_numbers(load_script):
    bench = load_script("benchmarks/bench_yolo.py")
    nan = float("nan")
    zoo = {"map50": 0.6, "map": 0.35, "map_small": 0.2, "map_medium": 0.4, "map_large": nan}
    yolo = {"map50": 0.7, "map": 0.45, "map_small": 0.25, "map_medium": 0.5, "map_large": nan}
    table = bench.budget_table(
        [
            {"budget": 3.0, "zoo": zoo, "yolov8n": yolo},
            {"budget": 10, "zoo": zoo, "yolov8n": None},
            {"budget": "smoke", "zoo": zoo, "yolov8n": None},
        ]
    ).splitlines()
    assert table[0] == (
        "| budget | zoo mAP@.5 / mAP@[.5:.95] (SavedModel) | YOLOv8n | zoo - YOLOv8n "
        "| zoo AP small / medium / large | YOLOv8n AP small / medium / large |"
    )
    assert table[2] == (
        "| 3 min | 0.600 / 0.350 | 0.700 / 0.450 | -0.100 / -0.100 | 0.200 / 0.400 / n/a "
        "| 0.250 / 0.500 / n/a |"
    )
    assert table[3] == (
        "| 10 min | 0.600 / 0.350 | not run | not run | 0.200 / 0.400 / n/a | not run |"
    )
    assert table[4].startswith("| smoke | 0.600 / 0.350 |")
    assert len(table) == 5


def test_bench_yolo_writes_the_fashion_set_with_a_fixed_validation_split(
    tmp_path, fashion, load_script
):
    bench = load_script("benchmarks/bench_yolo.py")
    train_ann, val_ann = bench.write_fashion_objects(tmp_path / "f", 5, 3, seed=0, image_size=64)
    assert val_ann == tmp_path / "f" / "val" / "instances.json"
    train, val = read_coco(train_ann), read_coco(val_ann)
    names = [f.rsplit("/", 1)[-1] for f in train.files + val.files]
    assert len(set(names)) == 8  # unique across both: one YOLO copy holds both splits
    yaml = bench.write_yolo_split(
        tmp_path / "yolo", [train_ann, val_ann], {"train": train.files, "val": val.files}
    )
    assert len((yaml.parent / "val.txt").read_text().split()) == 3
    assert len(list((yaml.parent / "labels" / "train").iterdir())) == 5
