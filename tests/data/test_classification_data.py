"""zoo.data.classification: readers, class splits, subsets, resizing, augmentation."""

import numpy as np
import pytest
from PIL import Image

from zoo.data.classification import (
    ClassificationData,
    load_classification_data,
    load_digits_data,
    make_augmentation,
    read_image_folder,
    resize_images,
    split_classes,
    stratified_split,
    subsample,
)
from zoo.data.errors import DataError


def toy(n_per_class=6, classes=4, size=6):
    labels = np.repeat(np.arange(classes), n_per_class)
    images = np.zeros((len(labels), size, size, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels))  # pixel (0, 0) identifies the example
    images[:, 1, 1, 0] = labels * 10  # pixel (1, 1) encodes the class
    return ClassificationData(images, labels, [f"c{i}" for i in range(classes)], "toy")


def test_digits_default_is_scaled_and_split_by_class():
    train, test = load_digits_data(test_fraction=0.25, seed=0)
    assert train.image_shape == (8, 8, 1) and train.images.dtype == np.uint8
    assert train.images.max() == 255 and len(train) + len(test) == 1797
    assert set(np.unique(test.labels)) == set(range(10))
    fractions = np.bincount(test.labels) / (np.bincount(test.labels) + np.bincount(train.labels))
    assert np.all(np.abs(fractions - 0.25) < 0.02)


def test_load_classification_data_by_name_and_default():
    train, test = load_classification_data("digits")
    assert train.num_classes == 10 and test.image_shape == (8, 8, 1)
    default_train, _ = load_classification_data()  # Fashion-MNIST when installed, else digits
    assert default_train.num_classes == 10


def write_folder(root, classes=("cat", "dog"), n=3, size=(5, 7), mode="L"):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            array = np.full((*size, 3) if mode == "RGB" else size, 40 * c + i, np.uint8)
            Image.fromarray(array, mode).save(root / name / f"{i}.png")


def test_read_image_folder(tmp_path):
    write_folder(tmp_path / "data")
    data = read_image_folder(tmp_path / "data")
    assert data.class_names == ("cat", "dog") and data.image_shape == (5, 7, 1)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.images[4, 0, 0, 0] == 41
    rgb = read_image_folder(tmp_path / "data", image_size=(4, 4), channels=3)
    assert rgb.image_shape == (4, 4, 3)


def test_folder_with_train_test_splits(tmp_path):
    write_folder(tmp_path / "d" / "train", n=3)
    write_folder(tmp_path / "d" / "test", n=2)
    train, test = load_classification_data(str(tmp_path / "d"))
    assert len(train) == 6 and len(test) == 4 and test.class_names == train.class_names


def test_image_folder_errors_name_the_file(tmp_path):
    write_folder(tmp_path / "bad")
    (tmp_path / "bad" / "dog" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"broken\.png: cannot decode image"):
        read_image_folder(tmp_path / "bad")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images"):
        read_image_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="not found"):
        read_image_folder(tmp_path / "missing")
    write_folder(tmp_path / "sizes", classes=("a",), size=(4, 4))
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "sizes" / "a" / "z.png")
    with pytest.raises(DataError, match="different sizes"):
        read_image_folder(tmp_path / "sizes")


def test_classification_data_validates_labels():
    with pytest.raises(DataError, match="label = 5"):
        ClassificationData(np.zeros((2, 3, 3), np.uint8), [0, 5], ["a", "b"], "x.npz")


def test_split_classes_subsample_resize():
    data = toy()
    seen, unseen = split_classes(data, [1, 3])
    assert set(seen.labels) == {0, 2} and set(unseen.labels) == {1, 3}
    assert len(seen) + len(unseen) == len(data)
    with pytest.raises(ValueError, match="holdout"):
        split_classes(data, [7])
    small = subsample(data, 8, seed=0)
    assert np.bincount(small.labels).tolist() == [2, 2, 2, 2]
    assert subsample(data, 1000) is data
    big = resize_images(data, (12, 12))
    assert big.image_shape == (12, 12, 1) and big.images.dtype == np.uint8
    train, test = stratified_split(data, 0.5, seed=1)
    assert np.bincount(test.labels).tolist() == [3, 3, 3, 3]


def test_augmentation_keeps_shape_and_changes_images():
    augment = make_augmentation(flip=True, max_shift=0.2, seed=1)
    x = np.random.default_rng(0).random((8, 10, 10, 1)).astype("float32") * 255
    y = np.asarray(augment(x))
    assert y.shape == x.shape and not np.allclose(x, y)
    assert make_augmentation(flip=False, max_shift=0) is None


def test_shapes_data_is_rgb_labelled_and_deterministic():
    from zoo.data.classification import load_shapes_data
    from zoo.data.synthetic import SHAPES

    train, test = load_shapes_data(num_train=12, num_test=6, image_size=(16, 16), seed=3)
    assert train.images.shape == (12, 16, 16, 3) and test.images.shape == (6, 16, 16, 3)
    assert train.images.dtype == np.uint8 and train.class_names == SHAPES
    assert train.labels.min() >= 0 and train.labels.max() < len(SHAPES)
    again, _ = load_shapes_data(num_train=12, num_test=6, image_size=(16, 16), seed=3)
    np.testing.assert_array_equal(train.images, again.images)
    assert not any(np.array_equal(a, b) for a in train.images for b in test.images)
    # the channels differ somewhere: colour, not grey
    assert np.abs(train.images[..., 0].astype(int) - train.images[..., 1]).max() > 20


def test_shapes_by_class_source_gives_class_coloured_shapes():
    from zoo.data.classification import load_classification_data, load_shapes_data

    train, test = load_classification_data("shapes_by_class", image_size=(16, 16), seed=3)
    assert train.source == "shapes_by_class/train" and test.source == "shapes_by_class/test"
    small, _ = load_shapes_data(12, 6, (16, 16), seed=3, colors="by_class")
    np.testing.assert_array_equal(small.images, train.images[:12])
    plain, _ = load_shapes_data(12, 6, (16, 16), seed=3)
    np.testing.assert_array_equal(small.labels, plain.labels)  # same shapes, other colours
    assert not np.array_equal(small.images, plain.images)
