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
