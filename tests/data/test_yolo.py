import os

import numpy as np
import pytest

from zoo.data import DataError, read_yolo
from zoo.data.errors import CLIPPED, DROPPED_EMPTY


@pytest.fixture
def yolo_dir(tmp_path, write_image):
    write_image(tmp_path / "images" / "a.jpg", 40, 20, seed=1)
    write_image(tmp_path / "images" / "b.png", 10, 10, seed=2)
    write_image(tmp_path / "images" / "sub" / "c.png", 8, 8, seed=3)  # no label file
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n\n1 0.95 0.5 0.2 0.4\n")
    (labels / "b.txt").write_text("2 0.5 0.5 0.2 0.0\n1 0.25 0.25 0.5 0.5\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n")
    return tmp_path


def _elements(data):
    return list(data.dataset.as_numpy_iterator())


def test_reads_normalised_boxes_and_names(yolo_dir):
    data = read_yolo(yolo_dir)
    assert data.class_names == ["cat", "dog", "bird"]
    assert [f.split("images/")[1] for f in data.files] == ["a.jpg", "b.png", "sub/c.png"]
    a, b, c = _elements(data)
    assert a["images"].shape == (20, 40, 3)
    np.testing.assert_allclose(
        a["bounding_boxes"]["boxes"], [[10, 5, 30, 15], [34, 6, 40, 14]], atol=1e-4
    )
    np.testing.assert_array_equal(a["bounding_boxes"]["labels"], [0, 1])
    np.testing.assert_allclose(b["bounding_boxes"]["boxes"], [[0, 0, 5, 5]], atol=1e-4)
    np.testing.assert_array_equal(b["bounding_boxes"]["labels"], [1])
    assert c["bounding_boxes"]["labels"].shape == (0,)
    assert data.report[CLIPPED] == 1 and data.report[DROPPED_EMPTY] == 1
    assert "a.txt: line 3" in data.report.examples[CLIPPED][0]
    assert "b.txt: line 1" in data.report.examples[DROPPED_EMPTY][0]


@pytest.mark.parametrize(
    "yaml_text",
    [
        "names: [cat, dog, bird]\n",
        "path: .\nnames:\n  0: cat\n  1: dog\n  2: bird\n",
        "names:\n  - cat\n  - dog\n  - bird\n",
    ],
)
def test_names_from_data_yaml(yolo_dir, yaml_text):
    (yolo_dir / "classes.txt").unlink()
    (yolo_dir / "data.yaml").write_text(yaml_text)
    assert read_yolo(yolo_dir).class_names == ["cat", "dog", "bird"]


def test_invalid_data_yaml_is_a_data_error_naming_the_file(yolo_dir):
    (yolo_dir / "classes.txt").unlink()
    (yolo_dir / "data.yaml").write_text("names: [cat, dog\n  bad: : :\n")
    with pytest.raises(DataError, match=r"data\.yaml.*invalid YAML"):
        read_yolo(yolo_dir)


def test_names_argument_and_missing_names(yolo_dir):
    assert read_yolo(yolo_dir, class_names=["x", "y", "z", "w"]).class_names == ["x", "y", "z", "w"]
    (yolo_dir / "classes.txt").unlink()
    with pytest.raises(DataError, match="no class names"):
        read_yolo(yolo_dir)


def test_split_subfolders(tmp_path, write_image):
    write_image(tmp_path / "images" / "train" / "a.png", 10, 10)
    write_image(tmp_path / "images" / "val" / "b.png", 10, 10)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val" / "b.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    data = read_yolo(tmp_path, class_names=["x"], split="val")
    assert len(data.files) == 1 and data.files[0].endswith("val/b.png")
    (element,) = _elements(data)
    np.testing.assert_allclose(element["bounding_boxes"]["boxes"], [[3, 3, 7, 7]], atol=1e-5)


@pytest.mark.parametrize(
    "line, match",
    [
        (
            "0 0.5 0.5 0.2",
            r"b\.txt: line 2 = '0 0\.5 0\.5 0\.2': expected 5 fields \"class cx cy w h\", got 4",
        ),
        ("0 0.5 abc 0.2 0.2", r"b\.txt: line 2 cy = 'abc': not a number"),
        ("1.5 0.5 0.5 0.2 0.2", r"b\.txt: line 2 class = '1\.5': class must be an integer"),
        ("3 0.5 0.5 0.2 0.2", r"b\.txt: line 2 class = 3: unknown class: index must be in 0\.\.2"),
        ("0 nan 0.5 0.2 0.2", r"b\.txt: line 2 cx = 'nan': not a finite number"),
    ],
)
def test_bad_label_lines(yolo_dir, line, match):
    (yolo_dir / "labels" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    with pytest.raises(DataError, match=match):
        read_yolo(yolo_dir)


def test_undecodable_image(yolo_dir):
    (yolo_dir / "images" / "b.png").write_bytes(b"\x00garbage" * 20)
    with pytest.raises(DataError, match=r"images/b\.png: cannot decode image"):
        read_yolo(yolo_dir)


def _ultralytics(root, write_image):
    """An Ultralytics dataset: images/{train,val}, labels/{train,val}, no yaml yet."""
    write_image(root / "images" / "train" / "a.png", 20, 10, seed=1)
    write_image(root / "images" / "train" / "b.png", 10, 10, seed=2)
    write_image(root / "images" / "val" / "c.png", 10, 20, seed=3)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.5 0.2\n")
    (root / "labels" / "val" / "c.txt").write_text("0 0.5 0.5 0.2 0.5\n")
    return root


def test_data_yaml_splits_and_labels_the_ultralytics_way(tmp_path, write_image):
    root = _ultralytics(tmp_path / "ds", write_image)
    (root / "data.yaml").write_text(
        "train: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n"
    )
    train = read_yolo(root / "data.yaml", split="train")
    assert train.class_names == ["cat", "dog"] and train.source == str(root / "data.yaml")
    assert [os.path.relpath(f, root) for f in train.files] == [
        os.path.join("images", "train", n) for n in ("a.png", "b.png")
    ]
    a, b = _elements(train)
    np.testing.assert_allclose(a["bounding_boxes"]["boxes"], [[5, 4, 15, 6]], atol=1e-5)
    np.testing.assert_array_equal(a["bounding_boxes"]["labels"], [1])
    assert b["bounding_boxes"]["labels"].shape == (0,)
    for split in ("validation", "val"):
        (c,) = _elements(read_yolo(root / "data.yaml", split=split))
        np.testing.assert_allclose(c["bounding_boxes"]["boxes"], [[4, 5, 6, 15]], atol=1e-5)
    # the folder holding data.yaml (or dataset.yaml) reads the same
    (root / "data.yaml").rename(root / "dataset.yaml")
    assert read_yolo(root, split="val").num_examples == 1


def test_data_yaml_path_lists_and_txt_files(tmp_path, write_image):
    root = _ultralytics(tmp_path / "ds", write_image)
    (root / "train.txt").write_text("./images/train/b.png\nimages/val/c.png\n")
    config = tmp_path / "configs"
    config.mkdir()
    (config / "data.yaml").write_text(
        "path: ../ds\ntrain: train.txt\nval: [images/val, images/train]\nnames: [cat, dog]\n"
    )
    train = read_yolo(config / "data.yaml")  # split None reads train:
    assert [os.path.basename(f) for f in train.files] == ["b.png", "c.png"]
    _, c = _elements(train)
    np.testing.assert_array_equal(c["bounding_boxes"]["labels"], [0])
    val = read_yolo(config / "data.yaml", split="validation")
    assert [os.path.basename(f) for f in val.files] == ["c.png", "a.png", "b.png"]


def test_roboflow_yaml_with_parent_relative_entries(tmp_path, write_image):
    for split, seed in (("train", 1), ("valid", 2)):
        write_image(tmp_path / split / "images" / "x.jpg", 16, 16, seed=seed)
        (tmp_path / split / "labels").mkdir(parents=True)
        (tmp_path / split / "labels" / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['thing']\n"
    )
    data = read_yolo(tmp_path, split="validation")
    assert data.files == [str(tmp_path / "valid" / "images" / "x.jpg")]
    (element,) = _elements(data)
    np.testing.assert_allclose(element["bounding_boxes"]["boxes"], [[4, 4, 12, 12]], atol=1e-5)


def test_label_path_replaces_the_last_images_folder():
    from zoo.data.readers.yolo_txt import label_path_for

    sep = os.sep
    path = sep.join(["", "d", "images", "x", "images", "a.b.jpg"])
    assert label_path_for(path) == sep.join(["", "d", "images", "x", "labels", "a.b.txt"])
    assert label_path_for(sep.join(["", "d", "pics", "a.png"])) == sep.join(
        ["", "d", "pics", "a.txt"]
    )


def test_data_yaml_errors_name_the_file_and_what_was_tried(tmp_path, write_image):
    root = _ultralytics(tmp_path, write_image)
    yaml_path = root / "data.yaml"
    yaml_path.write_text("train: images/train\nnames: [cat, dog]\n")
    with pytest.raises(DataError) as info:
        read_yolo(yaml_path, split="validation")
    message = str(info.value)
    assert message.startswith(f"{yaml_path}: val: no 'val' entry for split 'validation'")
    assert "the file has: train" in message and "--data" in message
    yaml_path.write_text("path: nowhere\ntrain: pics/train\nnames: [cat, dog]\n")
    with pytest.raises(DataError) as info:
        read_yolo(yaml_path)
    message = str(info.value)
    assert message.startswith(f"{yaml_path}: train = 'pics/train': not found (tried ")
    assert str(root / "nowhere" / "pics" / "train") in message
    assert str(root / "pics" / "train") in message and "--data" in message
    (root / "list.txt").write_text("images/train/a.png\nimages/train/zzz.png\n")
    yaml_path.write_text("train: list.txt\nnames: [cat, dog]\n")
    with pytest.raises(
        DataError, match=r"list\.txt: line 2 = 'images/train/zzz\.png': image not found \(tried "
    ):
        read_yolo(yaml_path)
    (root / "list.txt").write_text("images/train/a.png\n./images/train/a.png\n")
    with pytest.raises(DataError, match=r"list\.txt: image = .*a\.png': image listed twice"):
        read_yolo(yaml_path)
    yaml_path.write_text("train: images/train\n")
    with pytest.raises(DataError) as info:
        read_yolo(yaml_path)
    message = str(info.value)
    assert message.startswith(f"{yaml_path}: names: no class names: add names:")
    assert "class_names=[...] in Python" in message
    yaml_path.write_text("- train\n- val\n")
    with pytest.raises(DataError, match=r"data\.yaml: top level = 'list': must be a YAML mapping"):
        read_yolo(yaml_path)


def test_plain_layout_split_aliases_and_errors(tmp_path, write_image):
    write_image(tmp_path / "images" / "train" / "a.png", 10, 10)
    write_image(tmp_path / "images" / "valid" / "b.png", 10, 10)
    (tmp_path / "labels").mkdir()
    data = read_yolo(tmp_path, class_names=["x"], split="validation")
    assert [os.path.basename(f) for f in data.files] == ["b.png"]
    with pytest.raises(DataError) as info:
        read_yolo(tmp_path, class_names=["x"], split="test")
    message = str(info.value)
    assert "no folder for split 'test'" in message and "images/ has train, valid" in message
    with pytest.raises(DataError) as info:
        read_yolo(tmp_path / "labels", class_names=["x"])
    message = str(info.value)
    assert "no YOLO dataset here (tried " in message
    assert str(tmp_path / "labels" / "data.yaml") in message
    assert "pass --data a data.yaml or a folder with images/ and labels/" in message


def test_missing_names_message_says_how_to_add_them(yolo_dir):
    (yolo_dir / "classes.txt").unlink()
    with pytest.raises(DataError) as info:
        read_yolo(yolo_dir)
    message = str(info.value)
    assert "add classes.txt" in message and "the recipes have no flag for class names" in message


def test_data_yaml_split_at_the_file_system_root_is_refused_without_walking_it(tmp_path):
    """`train: /` (a slip when editing) would list every image on the machine."""
    yaml = tmp_path / "data.yaml"
    yaml.write_text("path: .\ntrain: /\nval: /\nnames: [cat]\n")
    with pytest.raises(DataError, match=r"data\.yaml: train = '/': is the file-system root"):
        read_yolo(yaml, split="train")
