import os

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
    with pytest.raises(DataError) as info:
        read_voc(voc_dir)
    message = str(info.value)
    assert message.startswith(f"{voc_dir / 'Annotations' / '000002.xml'}: filename = '000002.jpg'")
    for tried in ("000002.jpg", "000002.png"):
        assert str(voc_dir / "JPEGImages" / tried) in message
    assert "pass the image folder with --image-dir (image_dir= in Python)" in message


def _devkit(tmp_path, write_image, years=("VOC2007",)):
    """VOCdevkit/<year>/ sets with one image each, split files train.txt and val.txt."""
    devkit = tmp_path / "VOCdevkit"
    for year in years:
        root = devkit / year
        (root / "Annotations").mkdir(parents=True)
        (root / "ImageSets" / "Main").mkdir(parents=True)
        for i, name in enumerate(("000001", "000002")):
            write_image(root / "JPEGImages" / f"{name}.jpg", 20, 10, seed=i)
            (root / "Annotations" / f"{name}.xml").write_text(
                _xml(f"{name}.jpg", 20, 10, [("dog", 0, (2, 2, 8, 8))])
            )
        (root / "ImageSets" / "Main" / "train.txt").write_text("000001\n")
        (root / "ImageSets" / "Main" / "val.txt").write_text("000002\n")
        (root / "ImageSets" / "Main" / "dog_train.txt").write_text("000001  1\n")
    return devkit


def test_devkit_folder_picks_its_single_set(tmp_path, write_image):
    devkit = _devkit(tmp_path, write_image)
    data = read_voc(devkit, split="train")
    assert data.source == str(devkit / "VOC2007")
    assert [f[-10:] for f in data.files] == ["000001.jpg"]
    # a folder holding VOCdevkit/ works too; "validation" reads val.txt
    assert [f[-10:] for f in read_voc(tmp_path, split="validation").files] == ["000002.jpg"]


def test_devkit_with_several_sets_asks_for_one(tmp_path, write_image):
    devkit = _devkit(tmp_path, write_image, years=("VOC2007", "VOC2012"))
    with pytest.raises(DataError) as info:
        read_voc(devkit)
    message = str(info.value)
    assert message.startswith(f"{devkit}: holds 2 VOC sets (VOC2007, VOC2012)")
    assert f"--data {devkit / 'VOC2007'}" in message


def test_no_voc_set_lists_what_was_tried(tmp_path):
    with pytest.raises(DataError) as info:
        read_voc(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "Annotations") in message and "--data" in message


def test_missing_split_lists_the_split_files(tmp_path, write_image):
    devkit = _devkit(tmp_path, write_image)
    with pytest.raises(DataError) as info:
        read_voc(devkit, split="test")
    message = str(info.value)
    assert "no split file for split 'test'" in message
    assert "ImageSets/Main has train, val" in message  # class files (dog_train) are not splits


def test_duplicate_id_in_split_file(voc_dir):
    (voc_dir / "ImageSets" / "Main" / "val.txt").write_text("000001\n000002\n000001\n")
    with pytest.raises(
        DataError, match=r"val\.txt: line 3 = '000001': id listed twice \(also line 1\)"
    ):
        read_voc(voc_dir, split="val")


def test_split_id_without_annotation_file(voc_dir):
    (voc_dir / "ImageSets" / "Main" / "val.txt").write_text("000001\n000009\n")
    with pytest.raises(
        DataError, match=r"000009\.xml: annotation file not found \(the id is listed"
    ):
        read_voc(voc_dir, split="val")


def test_image_found_by_stem_basename_and_image_dir(voc_dir, write_image):
    # no <filename>: the XML's stem with an image extension
    (voc_dir / "JPEGImages" / "000002.jpg").rename(voc_dir / "JPEGImages" / "000002.png")
    (voc_dir / "Annotations" / "000002.xml").write_text(
        "<annotation><size><width>30</width><height>20</height></size></annotation>"
    )
    # a path written on another machine: its basename
    (voc_dir / "Annotations" / "000001.xml").write_text(
        _xml("C:/labelling/job/000001.jpg".replace("C:", "/abs"), 50, 40, [])
    )
    data = read_voc(voc_dir)
    assert [os.path.basename(f) for f in data.files] == ["000001.jpg", "000002.png"]
    # image_dir is tried before JPEGImages/
    write_image(voc_dir / "pics" / "000001.jpg", 50, 40)
    data = read_voc(voc_dir, image_dir=voc_dir / "pics")
    assert data.files[0] == str(voc_dir / "pics" / "000001.jpg")


def test_classes_txt_beside_annotations(voc_dir):
    (voc_dir / "classes.txt").write_text("cat\ndog\nperson\n")
    first, second = _elements(read_voc(voc_dir))
    np.testing.assert_array_equal(first["bounding_boxes"]["labels"], [1, 2])
    np.testing.assert_array_equal(second["bounding_boxes"]["labels"], [0])
