import json
import logging
import os

import numpy as np
import pytest

from zoo.data import DataError, read_coco
from zoo.data.errors import CLIPPED, DROPPED_EMPTY, SKIPPED_CROWD


def _elements(data):
    return list(data.dataset.as_numpy_iterator())


def test_reads_boxes_labels_and_images(coco_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="zoo.data"):
        data = read_coco(coco_dir / "annotations.json", coco_dir / "images")
    # sorted ids 1, 3, 7 -> labels 0, 1, 2
    assert data.class_names == ["one", "three", "seven"]
    assert data.num_examples == 3 and len(data.files) == 3
    a, b, c = _elements(data)
    assert a["images"].shape == (30, 40, 3) and a["images"].dtype == np.uint8
    np.testing.assert_allclose(a["bounding_boxes"]["boxes"], [[1, 2, 11, 7], [30, 20, 40, 30]])
    np.testing.assert_array_equal(a["bounding_boxes"]["labels"], [0, 2])
    # image b: crowd skipped, zero-width dropped, one box kept
    np.testing.assert_allclose(b["bounding_boxes"]["boxes"], [[0.5, 1.5, 3.5, 3.5]])
    np.testing.assert_array_equal(b["bounding_boxes"]["labels"], [2])
    assert b["bounding_boxes"]["boxes"].dtype == np.float32
    assert b["bounding_boxes"]["labels"].dtype == np.int32
    # image c has no annotations and is kept
    assert c["bounding_boxes"]["boxes"].shape == (0, 4) and c["images"].shape == (16, 16, 3)
    assert data.report[CLIPPED] == 1 and data.report[DROPPED_EMPTY] == 1
    assert data.report[SKIPPED_CROWD] == 1
    assert "annotations[1].bbox" in data.report.examples[CLIPPED][0]
    assert any("1 boxes clipped to the image" in r.getMessage() for r in caplog.records)


def test_decoded_pixels_match_the_file(tmp_path, write_image):
    pixels = write_image(tmp_path / "images" / "x.png", 12, 9, seed=5)
    doc = {
        "images": [{"id": 1, "file_name": "x.png", "width": 12, "height": 9}],
        "categories": [{"id": 1, "name": "a"}],
    }
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (element,) = _elements(read_coco(tmp_path / "a.json", tmp_path / "images"))
    np.testing.assert_array_equal(element["images"], pixels)


def test_crowd_kept_when_asked(coco_dir):
    data = read_coco(coco_dir / "annotations.json", coco_dir / "images", skip_crowd=False)
    _, b, _ = _elements(data)
    np.testing.assert_array_equal(b["bounding_boxes"]["labels"], [1, 2])
    assert data.report[SKIPPED_CROWD] == 0


def _edit(coco_dir, change):
    path = coco_dir / "annotations.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def test_bad_json_names_file_line_and_text(coco_dir):
    path = coco_dir / "annotations.json"
    path.write_text('{"images": [],\n "categories": [ {"id": 1 "name": "a"} ]}')
    with pytest.raises(DataError) as info:
        read_coco(path, coco_dir / "images")
    message = str(info.value)
    assert message.startswith(str(path) + ": line 2 column")
    assert '"id": 1 "name"' in message and "Expecting ','" in message


def test_unknown_category_id(coco_dir):
    path = _edit(coco_dir, lambda d: d["annotations"][2].update(category_id=99))
    with pytest.raises(
        DataError,
        match=r"annotations\[2\]\.category_id = 99: unknown category id \(categories has ids \[1, 3, 7\]\)",
    ):
        read_coco(path, coco_dir / "images")


def test_unknown_image_id(coco_dir):
    path = _edit(coco_dir, lambda d: d["annotations"][0].update(image_id=5))
    with pytest.raises(DataError, match=r"annotations\[0\]\.image_id = 5: no image with this id"):
        read_coco(path, coco_dir / "images")


@pytest.mark.parametrize(
    "bbox, field, text",
    [
        ([1, 2, 3], r"annotations\[1\]\.bbox = \[1, 2, 3\]", "bbox must be"),
        ([1, "x", 3, 4], r"annotations\[1\]\.bbox\[1\] = 'x'", "not a number"),
    ],
)
def test_malformed_bbox(coco_dir, bbox, field, text):
    path = _edit(coco_dir, lambda d: d["annotations"][1].update(bbox=bbox))
    with pytest.raises(DataError, match=field + ": " + text):
        read_coco(path, coco_dir / "images")


def test_missing_key(coco_dir):
    path = _edit(coco_dir, lambda d: d["images"][1].pop("file_name"))
    with pytest.raises(DataError, match=r"annotations.json: images\[1\]: missing key 'file_name'"):
        read_coco(path, coco_dir / "images")


def test_missing_image_file(coco_dir):
    (coco_dir / "images" / "b.png").unlink()
    with pytest.raises(DataError, match=r"images\[1\]\.file_name = 'b\.png': image not found"):
        read_coco(coco_dir / "annotations.json", coco_dir / "images")


def test_undecodable_image_names_the_file(coco_dir):
    (coco_dir / "images" / "c.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    with pytest.raises(DataError) as info:
        read_coco(coco_dir / "annotations.json", coco_dir / "images")
    assert str(info.value).startswith(str(coco_dir / "images" / "c.jpg") + ": cannot decode image")


def test_truncated_image_found_with_full_check(coco_dir):
    path = coco_dir / "images" / "a.png"
    path.write_bytes(path.read_bytes()[:80])
    read_coco(coco_dir / "annotations.json", coco_dir / "images")  # header is intact
    with pytest.raises(DataError, match=r"a\.png: cannot decode image"):
        read_coco(coco_dir / "annotations.json", coco_dir / "images", check_images="full")


def test_size_mismatch_with_json(coco_dir):
    path = _edit(coco_dir, lambda d: d["images"][0].update(width=41))
    with pytest.raises(
        DataError, match=r"images\[0\] width x height = '41x30': disagrees with the image file"
    ):
        read_coco(path, coco_dir / "images")


def _annotation_tool_layout(tmp_path, write_image, file_names):
    """data/annotations.json whose file_name values are relative to the JSON's own folder."""
    root = tmp_path / "data"
    for i, file_name in enumerate(file_names):
        write_image(root / file_name, 16, 12, seed=i)
    doc = {
        "images": [
            {"id": i, "file_name": f, "width": 16, "height": 12} for i, f in enumerate(file_names)
        ],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 5, 5]}
            for i in range(len(file_names))
        ],
    }
    (root / "annotations.json").write_text(json.dumps(doc))
    return root


def test_file_names_relative_to_the_json_folder_resolve(tmp_path, write_image):
    root = _annotation_tool_layout(tmp_path, write_image, ["train/00000.png", "train/00001.png"])
    data = read_coco(root / "annotations.json")
    assert data.num_examples == 2
    assert [os.path.relpath(p, root) for p in data.files] == ["train/00000.png", "train/00001.png"]


def test_basenames_resolve_in_the_image_folders(tmp_path, write_image):
    root = _annotation_tool_layout(tmp_path, write_image, ["images/a.png"])
    doc = json.loads((root / "annotations.json").read_text())
    doc["images"][0]["file_name"] = "C:/export/job 7/a.png".replace("C:/", "/abs/")
    (root / "annotations.json").write_text(json.dumps(doc))
    data = read_coco(root / "annotations.json")
    assert os.path.relpath(data.files[0], root) == os.path.join("images", "a.png")


def test_image_dir_is_tried_first(tmp_path, write_image):
    root = _annotation_tool_layout(tmp_path, write_image, ["a.png"])
    write_image(tmp_path / "other" / "a.png", 16, 12, seed=5)
    data = read_coco(root / "annotations.json", tmp_path / "other")
    assert data.files[0] == os.path.join(str(tmp_path / "other"), "a.png")


def test_missing_image_lists_what_was_tried(tmp_path, write_image):
    root = _annotation_tool_layout(tmp_path, write_image, ["train/a.png"])
    (root / "train" / "a.png").unlink()
    with pytest.raises(DataError) as info:
        read_coco(root / "annotations.json", tmp_path / "pics")
    message = str(info.value)
    for tried in (
        tmp_path / "pics" / "train" / "a.png",
        root / "train" / "a.png",
        root / "images" / "a.png",
    ):
        assert str(tried) in message
    assert "--image-dir" in message and "image_dir=" in message
