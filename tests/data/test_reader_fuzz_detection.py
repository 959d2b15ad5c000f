"""Bad input for the detection file readers: each read either gives a valid set (every box
finite, inside its image, with area, labels in range; repairs counted) or raises ``DataError``
naming a file of the set. Never another exception, never a hang, never a silent bad box."""

import contextlib
import datetime
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data import DataError, read_coco, read_voc, read_yolo
from zoo.data.errors import DROPPED_EMPTY

FUZZ = settings(
    max_examples=25,
    deadline=datetime.timedelta(seconds=30),  # generous: the machine is shared; a hang is caught
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SIZES = {"a.png": (20, 10), "b.png": (12, 12)}

# --- tiny valid sets ------------------------------------------------------------------------


def _png(path, size, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _coco_doc():
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 20, "height": 10},
            {"id": 2, "file_name": "b.png", "width": 12, "height": 12},
        ],
        "categories": [{"id": 5, "name": "cat"}, {"id": 9, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "bbox": [1, 1, 5, 4]},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [10, 2, 6, 6]},
            {"id": 3, "image_id": 2, "category_id": 9, "bbox": [0, 0, 12, 12]},
        ],
    }


def _make_coco(root):
    for i, (name, size) in enumerate(SIZES.items()):
        _png(os.path.join(root, "images", name), size, i)
    path = os.path.join(root, "annotations.json")
    with open(path, "w") as f:
        json.dump(_coco_doc(), f)
    return path


YOLO_LABELS = {"a.txt": "0 0.5 0.5 0.5 0.5\n1 0.25 0.5 0.2 0.4\n", "b.txt": "1 0.5 0.5 1 1\n"}


def _make_yolo(root):
    for i, (name, size) in enumerate(SIZES.items()):
        _png(os.path.join(root, "images", name), size, i)
    os.makedirs(os.path.join(root, "labels"))
    for name, text in YOLO_LABELS.items():
        with open(os.path.join(root, "labels", name), "w") as f:
            f.write(text)
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("cat\ndog\n")
    return root


YOLO_YAML = {"path": ".", "train": "images/train", "val": "images/train", "names": ["cat", "dog"]}


def _make_yolo_yaml(root):
    for i, (name, size) in enumerate(SIZES.items()):
        _png(os.path.join(root, "images", "train", name), size, i)
    os.makedirs(os.path.join(root, "labels", "train"))
    for name, text in YOLO_LABELS.items():
        with open(os.path.join(root, "labels", "train", name), "w") as f:
            f.write(text)
    path = os.path.join(root, "data.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(YOLO_YAML, f)
    return path


def _voc_xml(file_name, size, objects):
    body = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    return (
        f"<annotation><filename>{file_name}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height></size>{body}</annotation>"
    )


VOC_OBJECTS = {
    "a": [("cat", (2, 2, 6, 5)), ("dog", (11, 3, 16, 8))],
    "b": [("dog", (1, 1, 12, 12))],
}


def _make_voc(root):
    os.makedirs(os.path.join(root, "Annotations"))
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    for i, (name, size) in enumerate(SIZES.items()):
        _png(os.path.join(root, "JPEGImages", name), size, i)
        stem = name[:-4]
        with open(os.path.join(root, "Annotations", f"{stem}.xml"), "w") as f:
            f.write(_voc_xml(name, size, VOC_OBJECTS[stem]))
    with open(os.path.join(root, "ImageSets", "Main", "train.txt"), "w") as f:
        f.write("a\nb\n")
    return root


@contextlib.contextmanager
def _fresh(make):
    """A new folder with a valid set written by ``make(root) -> path``; removed afterwards."""
    root = tempfile.mkdtemp(prefix="zoo_fuzz_")
    try:
        yield root, make(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the property ---------------------------------------------------------------------------


def _assert_valid(data, num_boxes=None):
    """Every box finite, inside its image, with area; labels in range; with ``num_boxes``, boxes
    kept + dropped (counted) == boxes in the input."""
    kept = 0
    for path, boxes, labels in data.records.as_numpy_iterator():
        with Image.open(path.decode()) as image:
            width, height = image.size
        assert np.all(np.isfinite(boxes)), boxes
        assert np.all((boxes[:, 0] >= 0) & (boxes[:, 1] >= 0)), boxes
        assert np.all((boxes[:, 2] <= width) & (boxes[:, 3] <= height)), (boxes, width, height)
        assert np.all((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])), boxes
        assert np.all((labels >= 0) & (labels < data.num_classes)), labels
        kept += len(boxes)
    if num_boxes is not None:
        assert kept + data.report[DROPPED_EMPTY] == num_boxes, data.report.summary()


def _read_or_data_error(read, root, num_boxes=None):
    """Runs ``read()``; a ``DataError`` must name a file of the set at its start."""
    try:
        data = read()
    except DataError as error:
        assert error.file is not None, str(error)
        assert str(error).startswith(error.file), str(error)
        assert os.path.abspath(error.file).startswith(os.path.realpath(root)) or (
            error.file.startswith(root)
        ), str(error)
        return None
    _assert_valid(data, num_boxes)
    return data


def _rewrite(path, data):
    with open(path, "wb") as f:
        f.write(data)


# --- strategies -----------------------------------------------------------------------------

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-5, 50), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**40), 10**40),
    st.sampled_from([0, -1, 1e30, 1e31, 3.5e38, 1e308, -1e308, 0.5]),
)
NUMBER_TEXT = st.one_of(
    st.sampled_from(
        ["nan", "inf", "-inf", "-5", "0", "1e400", "1e30", "1e31", "", " ", "abc", "1_0", "٣", "+1"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.text(max_size=6),
)
BAD_BYTES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(["utf-16", "latin-1", "empty"]),
)

COCO_PATHS = [
    (),
    ("images",),
    ("images", 0),
    ("images", 0, "id"),
    ("images", 0, "file_name"),
    ("images", 0, "width"),
    ("images", 1, "height"),
    ("categories",),
    ("categories", 0),
    ("categories", 0, "id"),
    ("categories", 1, "name"),
    ("annotations",),
    ("annotations", 0),
    ("annotations", 0, "id"),
    ("annotations", 0, "image_id"),
    ("annotations", 1, "category_id"),
    ("annotations", 2, "bbox"),
    ("annotations", 2, "bbox", 2),
    ("annotations", 1, "iscrowd"),
]


def _mutate(doc, path, delete, value):
    if not path:
        return {} if delete else value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        if isinstance(parent, list):
            parent.pop(path[-1])
        else:
            parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    return doc


def _bad_bytes(original, kind):
    """Re-encodes ``original`` (text bytes) as UTF-16 / latin-1 with a non-ASCII name, empties
    it, or replaces it with random bytes."""
    if kind == "utf-16":
        return original.decode().encode("utf-16")
    if kind == "latin-1":
        return original.decode().replace("cat", "caté").encode("latin-1")
    if kind == "empty":
        return b""
    return kind


# --- COCO -----------------------------------------------------------------------------------


@FUZZ
@given(cut=st.integers(0, 2000))
def test_coco_truncated_at_any_byte(cut):
    with _fresh(_make_coco) as (root, path):
        with open(path, "rb") as f:
            text = f.read()
        _rewrite(path, text[: cut % (len(text) + 1)])
        _read_or_data_error(lambda: read_coco(path), root)


@FUZZ
@given(
    where=st.sampled_from(COCO_PATHS),
    delete=st.booleans(),
    value=JSON_VALUES,
    check=st.sampled_from(["header", "none"]),
)
def test_coco_wrong_types_and_missing_keys(where, delete, value, check):
    with _fresh(_make_coco) as (root, path):
        doc = _mutate(_coco_doc(), where, delete, value)
        with open(path, "w") as f:
            json.dump(doc, f)  # NaN / Infinity written as JSON extensions, as Python reads them
        _read_or_data_error(lambda: read_coco(path, check_images=check), root)


@FUZZ
@given(
    bbox=st.lists(NUMBERS, min_size=4, max_size=4), size=st.lists(NUMBERS, min_size=2, max_size=2)
)
def test_coco_nan_inf_negative_and_huge_numbers(bbox, size):
    with _fresh(_make_coco) as (root, path):
        doc = _coco_doc()
        doc["annotations"][0]["bbox"] = bbox
        _rewrite(path, json.dumps(doc).encode())
        _read_or_data_error(lambda: read_coco(path), root, num_boxes=3)
        doc["images"][0]["width"], doc["images"][0]["height"] = size
        _rewrite(path, json.dumps(doc).encode())
        _read_or_data_error(lambda: read_coco(path, check_images="none"), root, num_boxes=3)


@FUZZ
@given(kind=BAD_BYTES)
def test_coco_wrong_encodings_and_random_bytes(kind):
    with _fresh(_make_coco) as (root, path):
        with open(path, "rb") as f:
            _rewrite(path, _bad_bytes(f.read(), kind))
        _read_or_data_error(lambda: read_coco(path), root)


def test_coco_encoding_errors_say_so(tmp_path):
    path = _make_coco(str(tmp_path))
    text = open(path, "rb").read()
    _rewrite(path, text.decode().encode("utf-16"))
    with pytest.raises(DataError, match=r"annotations\.json: is UTF-16 text; save it as UTF-8"):
        read_coco(path)
    _rewrite(path, text.decode().replace("cat", "caté").encode("latin-1"))
    with pytest.raises(
        DataError, match=r"annotations\.json: not UTF-8 text \(byte \d+ = b'\\xe9'\)"
    ):
        read_coco(path)
    _rewrite(path, b'{"images": [], "categories": [], "x": ' + b"1" * 5000 + b"}")
    with pytest.raises(DataError, match=r"annotations\.json: invalid JSON"):
        read_coco(path)
    _rewrite(path, b"[" * 100_000)
    with pytest.raises(DataError, match=r"annotations\.json: invalid JSON"):
        read_coco(path)


@pytest.mark.parametrize(
    "list_name, field",
    [
        ("images", r"images\[1\]\.id = 1: duplicate id \(also images\[0\]\.id\)"),
        ("categories", r"categories\[1\]\.id = 5: duplicate id \(also categories\[0\]\.id\)"),
        ("annotations", r"annotations\[1\]\.id = 1: duplicate id \(also annotations\[0\]\.id\)"),
    ],
)
def test_coco_duplicate_ids_name_the_id(tmp_path, list_name, field):
    path = _make_coco(str(tmp_path))
    doc = _coco_doc()
    doc[list_name][1]["id"] = doc[list_name][0]["id"]
    _rewrite(path, json.dumps(doc).encode())
    with pytest.raises(DataError, match=r"annotations\.json: " + field):
        read_coco(path)


# --- YOLO txt -------------------------------------------------------------------------------

TOKENS = st.one_of(
    st.sampled_from(["0", "1", "2", "-1", "0.5", "1", "1e9", "-0.5", "nan", "inf", "x", "1e400"]),
    st.sampled_from(["0.0", "1_0", "+1", "٣", "1e31", "0x1", "+-1"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
LABEL_LINES = st.lists(st.lists(TOKENS, min_size=0, max_size=7).map(" ".join), max_size=4)


@FUZZ
@given(lines=LABEL_LINES)
def test_yolo_label_lines_with_extra_missing_and_bad_fields(lines):
    with _fresh(_make_yolo) as (root, _):
        _rewrite(os.path.join(root, "labels", "a.txt"), "\n".join(lines).encode())
        data = _read_or_data_error(lambda: read_yolo(root), root)
        if data is not None:
            boxes = sum(1 for line in lines if line.strip() and not line.startswith("#")) + 1
            _assert_valid(data, num_boxes=boxes)


@FUZZ
@given(cut=st.integers(0, 200), kind=BAD_BYTES, which=st.sampled_from(["label", "classes"]))
def test_yolo_truncated_and_badly_encoded_files(cut, kind, which):
    with _fresh(_make_yolo) as (root, _):
        path = os.path.join(root, "labels", "a.txt") if which == "label" else None
        path = path or os.path.join(root, "classes.txt")
        with open(path, "rb") as f:
            original = f.read()
        _rewrite(path, original[: cut % (len(original) + 1)])
        _read_or_data_error(lambda: read_yolo(root), root)
        _rewrite(path, _bad_bytes(original, kind))
        _read_or_data_error(lambda: read_yolo(root), root)


@FUZZ
@given(
    key=st.sampled_from(["path", "train", "val", "names", None]),
    value=st.one_of(JSON_VALUES, st.sampled_from(["images", "../x", "/", "train.txt", "a.png"])),
    split=st.sampled_from(["train", "validation", "test"]),
    cut=st.integers(0, 200),
)
def test_yolo_data_yaml_wrong_types_and_truncation(key, value, split, cut):
    with _fresh(_make_yolo_yaml) as (root, path):
        doc = dict(YOLO_YAML)
        if key is None:
            doc = value
        else:
            doc[key] = value
        try:
            text = yaml.safe_dump(doc).encode()
        except yaml.YAMLError:
            text = b"{"
        _rewrite(path, text)
        _read_or_data_error(lambda: read_yolo(path, split=split), root)
        _rewrite(path, text[: cut % (len(text) + 1)])
        _read_or_data_error(lambda: read_yolo(root, split=split), root)


def test_yolo_image_folder_symlink_loops(tmp_path):
    root = _make_yolo(str(tmp_path / "plain"))
    os.symlink(os.path.join(root, "images"), os.path.join(root, "images", "loop"))
    os.symlink(os.path.join(root, "images", "self"), os.path.join(root, "images", "self"))
    os.symlink(root, os.path.join(root, "images", "up"))
    data = read_yolo(root)
    assert [os.path.basename(f) for f in data.files] == ["a.png", "b.png"]
    _assert_valid(data, num_boxes=3)
    path = _make_yolo_yaml(str(tmp_path / "yaml"))
    train = os.path.join(os.path.dirname(path), "images", "train")
    os.symlink(os.path.dirname(train), os.path.join(train, "parent"))
    data = read_yolo(path)
    assert sorted(os.path.basename(f) for f in data.files) == ["a.png", "b.png"]


def test_yolo_encoding_errors_name_file_and_encoding(tmp_path):
    root = _make_yolo(str(tmp_path))
    label = os.path.join(root, "labels", "a.txt")
    _rewrite(label, YOLO_LABELS["a.txt"].encode("utf-16"))
    with pytest.raises(DataError, match=r"a\.txt: is UTF-16 text; save it as UTF-8"):
        read_yolo(root)
    _rewrite(label, b"0 0.5 0.5 0.5 0.5 \xff\n")
    with pytest.raises(DataError, match=r"a\.txt: not UTF-8 text \(byte 18 = b'\\xff'\)"):
        read_yolo(root)


# --- VOC ------------------------------------------------------------------------------------

VOC_TAGS = ["width", "height", "xmin", "ymin", "xmax", "ymax", "name", "difficult", "filename"]


@FUZZ
@given(
    tag=st.sampled_from([*VOC_TAGS, "size", "bndbox", "object"]),
    delete=st.booleans(),
    text=NUMBER_TEXT,
    check=st.sampled_from(["header", "none"]),
)
def test_voc_bad_numbers_and_missing_tags(tag, delete, text, check):
    with _fresh(_make_voc) as (root, _):
        path = os.path.join(root, "Annotations", "a.xml")
        tree = ET.parse(path)
        parent_of = {child: parent for parent in tree.iter() for child in parent}
        node = next(tree.iter(tag))
        if delete:
            parent_of[node].remove(node)
        else:
            node.text = text
        tree.write(path)
        num_boxes = 3 if tag in ("xmin", "ymin", "xmax", "ymax") else None
        _read_or_data_error(lambda: read_voc(root, check_images=check), root, num_boxes)


@FUZZ
@given(cut=st.integers(0, 400), kind=BAD_BYTES, which=st.sampled_from(["xml", "split"]))
def test_voc_truncated_and_badly_encoded_files(cut, kind, which):
    with _fresh(_make_voc) as (root, _):
        if which == "xml":
            path = os.path.join(root, "Annotations", "a.xml")
        else:
            path = os.path.join(root, "ImageSets", "Main", "train.txt")
        with open(path, "rb") as f:
            original = f.read()
        _rewrite(path, original[: cut % (len(original) + 1)])
        _read_or_data_error(lambda: read_voc(root, split="train"), root)
        _rewrite(path, _bad_bytes(original, kind))
        _read_or_data_error(lambda: read_voc(root, split="train"), root)


def test_voc_duplicate_id_and_symlinked_image_folder(tmp_path):
    root = _make_voc(str(tmp_path))
    _rewrite(os.path.join(root, "ImageSets", "Main", "train.txt"), b"a\nb\na\n")
    with pytest.raises(DataError, match=r"train\.txt: line 3 = 'a': id listed twice"):
        read_voc(root, split="train")
    os.symlink(os.path.join(root, "JPEGImages"), os.path.join(root, "JPEGImages", "loop"))
    _assert_valid(read_voc(root), num_boxes=3)
