import numpy as np
import pytest

from zoo.data import VOC_CLASSES, DataError, read_voc
from zoo.data.errors import CLIPPED, SKIPPED_DIFFICULT


def _xml(filename, width, height, objects):
    body = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, difficult, (x1, y1, x2, y2) in objects
    )
    return (
        f"<annotation>\n<filename>{filename}</filename>\n"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n{body}\n</annotation>\n"
    )


@pytest.fixture
def voc_dir(tmp_path, write_image):
    (tmp_path / "Annotations").mkdir()
    write_image(tmp_path / "JPEGImages" / "000001.jpg", 50, 40, seed=1)
    write_image(tmp_path / "JPEGImages" / "000002.jpg", 30, 20, seed=2)
    (tmp_path / "Annotations" / "000001.xml").write_text(
        _xml("000001.jpg", 50, 40, [("dog", 0, (1, 1, 10, 20)), ("person", 1, (5, 6, 60, 30))])
    )
    (tmp_path / "Annotations" / "000002.xml").write_text(
        _xml("000002.jpg", 30, 20, [("cat", 0, (3, 4, 8, 9))])
    )
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("000002\n")
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("000001\n000002\n")
    return tmp_path


def _elements(data):
    return list(data.dataset.as_numpy_iterator())


def test_reads_all_with_voc_classes(voc_dir):
    data = read_voc(voc_dir)
    assert data.class_names == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    first, second = _elements(data)
    assert first["images"].shape == (40, 50, 3)
    # 1-based inclusive corners -> pixel edges; the person box is clipped at x = 50
    np.testing.assert_allclose(first["bounding_boxes"]["boxes"], [[0, 0, 10, 20], [4, 5, 50, 30]])
    np.testing.assert_array_equal(
        first["bounding_boxes"]["labels"], [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]
    )
    np.testing.assert_array_equal(second["bounding_boxes"]["labels"], [VOC_CLASSES.index("cat")])
    assert data.report[CLIPPED] == 1


def test_split_file_and_difficult_skip(voc_dir):
    assert [f[-10:] for f in read_voc(voc_dir, split="train").files] == ["000002.jpg"]
    data = read_voc(voc_dir, split="val", skip_difficult=True)
    first, _ = _elements(data)
    np.testing.assert_array_equal(first["bounding_boxes"]["labels"], [VOC_CLASSES.index("dog")])
    assert data.report[SKIPPED_DIFFICULT] == 1
    with pytest.raises(DataError, match=r"test\.txt: no split file for split 'test'"):
        read_voc(voc_dir, split="test")


def test_custom_class_list(voc_dir):
    data = read_voc(voc_dir, split="val", class_names=["person", "dog", "cat"])
    first, second = _elements(data)
    np.testing.assert_array_equal(first["bounding_boxes"]["labels"], [1, 0])
    np.testing.assert_array_equal(second["bounding_boxes"]["labels"], [2])


def test_unknown_class_name(voc_dir):
    with pytest.raises(
        DataError,
        match=r"000001\.xml: object\[1\]\.name = 'person': unknown class \(not in the 2 class names: dog, cat\)",
    ):
        read_voc(voc_dir, class_names=["dog", "cat"])


def test_bad_xml_names_line_and_text(voc_dir):
    (voc_dir / "Annotations" / "000002.xml").write_text(
        "<annotation>\n<filename>x.jpg</filename\n</annotation>\n"
    )
    with pytest.raises(DataError) as info:
        read_voc(voc_dir)
    message = str(info.value)
    assert "000002.xml: line 3 column" in message and "invalid XML" in message
    assert "'</annotation>'" in message


def test_non_numeric_coordinate(voc_dir):
    (voc_dir / "Annotations" / "000002.xml").write_text(
        _xml("000002.jpg", 30, 20, [("cat", 0, (3, "four", 8, 9))])
    )
    with pytest.raises(
        DataError, match=r"000002\.xml: object\[0\]\.bndbox\.ymin = 'four': not a number"
    ):
        read_voc(voc_dir)


def test_missing_and_undecodable_image(voc_dir):
    (voc_dir / "JPEGImages" / "000002.jpg").write_bytes(b"GIF89a but not really")
    with pytest.raises(DataError, match=r"000002\.jpg: cannot decode image"):
        read_voc(voc_dir)
    (voc_dir / "JPEGImages" / "000002.jpg").unlink()
    with pytest.raises(DataError, match=r"JPEGImages/000002\.jpg: image file not found"):
        read_voc(voc_dir)
