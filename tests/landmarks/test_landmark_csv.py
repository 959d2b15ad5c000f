"""CelebA-style landmark tables (``read_landmark_table``): the ``.txt`` and ``.csv`` forms,
golden values, splits, image folders, specific failures and bad-input fuzzing.

The fuzz tests start from a valid 3-image table, corrupt it (truncation, other encodings, bad
numbers, missing / extra fields, repeated rows, a wrong count line, an empty file) and check that
the reader either returns valid data or raises ``DataError`` naming the file, never another
exception.
"""

import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_reader_fuzz import FUZZ, NASTY_NUMBERS, _image_bytes

from zoo.data.errors import DataError
from zoo.landmarks.data import (
    CELEB_A_FLIP,
    CELEB_A_LANDMARKS,
    MAX_COORDINATE,
    TABLE_OUTSIDE_IMAGE,
    load_landmark_data,
    read_landmark_table,
)

CELEB_A_COLUMNS = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
).split()
# Three images (width 12, height 10) with five hand-written points each, inside the image.
ROWS = {
    "000001.png": [3, 4, 8, 4, 6, 6, 4, 8, 8, 8],
    "000002.png": [2, 3, 9, 3, 5.5, 5, 3, 7, 9, 7.25],
    "000003.png": [0, 0, 11, 0, 6, 5, 0, 9, 11, 9],
}
# The same values as continuous coordinates (0-based pixel centres + 0.5), written out.
GOLDEN = np.array(
    [
        [[3.5, 4.5], [8.5, 4.5], [6.5, 6.5], [4.5, 8.5], [8.5, 8.5]],
        [[2.5, 3.5], [9.5, 3.5], [6.0, 5.5], [3.5, 7.5], [9.5, 7.75]],
        [[0.5, 0.5], [11.5, 0.5], [6.5, 5.5], [0.5, 9.5], [11.5, 9.5]],
    ],
    np.float32,
)


def _fmt(value):
    if isinstance(value, str):  # a token written as is
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def celeb_a_txt(rows=ROWS, count=None):
    count = len(rows) if count is None else count
    body = "".join(
        f"{name} " + " ".join(_fmt(v) for v in values) + "\n" for name, values in rows.items()
    )
    return f"{count}\n" + " ".join(CELEB_A_COLUMNS) + "\n" + body


def celeb_a_csv(rows=ROWS):
    body = "".join(
        f"{name}," + ",".join(_fmt(v) for v in values) + "\n" for name, values in rows.items()
    )
    return "image_id," + ",".join(CELEB_A_COLUMNS) + "\n" + body


def _images(folder, names=ROWS):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).write_bytes(_image_bytes(i))
    return folder


def _points(data):
    return np.stack([r[1] for r in data.records.as_numpy_iterator()])


# === Golden values ===


@pytest.mark.parametrize("form", ["txt", "csv"])
def test_golden_celeb_a_table(tmp_path, form):
    images = _images(tmp_path / "img_align_celeba")
    path = tmp_path / f"list_landmarks_align_celeba.{form}"
    path.write_text(celeb_a_txt() if form == "txt" else celeb_a_csv())
    data = read_landmark_table(path, check_images="full")
    assert data.files == [str(images / name) for name in ROWS]
    assert data.num_examples == 3 and data.source == str(path)
    assert data.landmark_names == CELEB_A_LANDMARKS
    assert data.flip_permutation == CELEB_A_FLIP and data.eye_indices == (0, 1)
    np.testing.assert_array_equal(_points(data), GOLDEN)
    assert not data.report
    elements = list(data.as_dataset())
    assert [tuple(e["images"].shape) for e in elements] == [(10, 12, 3)] * 3
    np.testing.assert_array_equal(elements[1]["landmarks"].numpy(), GOLDEN[1])
    np.testing.assert_array_equal(elements[2]["visibility"].numpy(), np.ones(5, np.float32))
    assert all(float(e["presence"]) == 1.0 for e in elements)


def test_general_csv_with_images_folder(tmp_path):
    _images(tmp_path / "images", ["a.png", "b.png"])
    path = tmp_path / "points.csv"
    path.write_text(
        "image,x1,y1,x2,y2,x3,y3\r\na.png, 1, 2, 3, 4, 5, 6\r\n\r\nb.png,0,0,1.25,-1,20,9\r\n"
    )
    data = read_landmark_table(path, one_based=True)
    assert data.landmark_names == ("p1", "p2", "p3")
    assert data.flip_permutation is None and data.eye_indices is None
    expected = np.array(
        [[[0.5, 1.5], [2.5, 3.5], [4.5, 5.5]], [[-0.5, -0.5], [0.75, -1.5], [19.5, 8.5]]]
    )
    np.testing.assert_array_equal(_points(data), expected.astype(np.float32))
    # b.png: (-0.5, -0.5), (0.75, -1.5) and (19.5, 8.5) lie outside the 12 x 10 image.
    assert data.report[TABLE_OUTSIDE_IMAGE] == 3
    last = list(data.as_dataset())[1]
    np.testing.assert_array_equal(last["visibility"].numpy(), [0.0, 0.0, 0.0])
    named = read_landmark_table(path, landmark_names=["a", "b", "c"], flip_permutation=(2, 1, 0))
    assert named.landmark_names == ("a", "b", "c") and named.flip_permutation == (2, 1, 0)


def test_image_dir_and_folder_order(tmp_path):
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_text(celeb_a_txt())
    _images(tmp_path)  # beside the table: the last folder tried
    assert read_landmark_table(path).files[0] == str(tmp_path / "000001.png")
    _images(tmp_path / "images")
    assert read_landmark_table(path).files[0] == str(tmp_path / "images" / "000001.png")
    _images(tmp_path / "elsewhere")
    data = read_landmark_table(path, image_dir=tmp_path / "elsewhere")
    assert data.files[2] == str(tmp_path / "elsewhere" / "000003.png")


def test_unaligned_list_never_takes_the_aligned_crops(tmp_path):
    _images(tmp_path / "img_align_celeba")
    path = tmp_path / "list_landmarks_celeba.txt"
    path.write_text(celeb_a_txt())
    with pytest.raises(DataError, match="img_celeba, .*images, ") as caught:
        read_landmark_table(path)
    assert "img_align_celeba" not in caught.value.message and "--data" in caught.value.message
    _images(tmp_path / "img_celeba")
    assert read_landmark_table(path).files[0] == str(tmp_path / "img_celeba" / "000001.png")


def test_missing_image_lists_the_folders(tmp_path):
    images = _images(tmp_path / "img_align_celeba")
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_text(celeb_a_txt())
    (images / "000003.png").unlink()
    with pytest.raises(DataError, match=r"line 5: image '000003.png' not found in .*tried"):
        read_landmark_table(path)
    (images / "000001.png").unlink()
    with pytest.raises(DataError, match="line 3: image '000001.png' not found in any of") as caught:
        read_landmark_table(path)
    for folder in ("img_align_celeba", "images", str(tmp_path)):
        assert folder in caught.value.message


# === Splits and load_landmark_data ===


def _many_rows(n):
    return {f"{i:06d}.png": [1 + i % 5, 2, 3, 4, 5, 6, 7, 8, 9, 9] for i in range(1, n + 1)}


def test_load_landmark_data_splits_90_10(tmp_path):
    rows = _many_rows(20)
    _images(tmp_path / "img_align_celeba", rows)
    path = tmp_path / "list_landmarks_align_celeba.csv"
    path.write_text(celeb_a_csv(rows))
    train = load_landmark_data(str(path), "train", check_images="none")
    val = load_landmark_data(path, "validation", check_images="none")
    assert (train.num_examples, val.num_examples) == (18, 2)
    assert train.files + val.files == [str(tmp_path / "img_align_celeba" / n) for n in rows]
    assert val.source.endswith("[validation]") and len(_points(val)) == 2


def test_celeb_a_partition_file(tmp_path):
    rows = _many_rows(6)
    _images(tmp_path / "img_align_celeba", rows)
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_text(celeb_a_txt(rows))
    splits = [0, 0, 1, 2, 0, 1]
    (tmp_path / "list_eval_partition.txt").write_text(
        "".join(f"{name} {s}\n" for name, s in zip(rows, splits, strict=True))
    )
    names = list(rows)
    for split, wanted in (("train", 0), ("validation", 1), ("test", 2)):
        data = load_landmark_data(str(path), split)
        expected = [n for n, s in zip(names, splits, strict=True) if s == wanted]
        assert [os.path.basename(f) for f in data.files] == expected
    (tmp_path / "list_eval_partition.txt").unlink()  # Kaggle's CSV copy, with a header
    (tmp_path / "list_eval_partition.csv").write_text(
        "image_id,partition\n" + "".join(f"{n},{s}\n" for n, s in zip(rows, splits, strict=True))
    )
    assert load_landmark_data(str(path), "validation").files == [
        str(tmp_path / "img_align_celeba" / n) for n in ("000003.png", "000006.png")
    ]
    (tmp_path / "list_eval_partition.txt").write_text("000001.png 0\n")
    with pytest.raises(DataError, match="5 images of the landmark table have no split"):
        load_landmark_data(str(path), "train")


# === Specific failures ===

FAILURES = {
    "empty": (b"", "empty landmark table"),
    "blank": (b"\n  \n", "empty landmark table"),
    "count only": (b"3\n", "line 2: no column names"),
    "header only": (celeb_a_txt({}).encode(), "no image rows"),
    "count low": (
        celeb_a_txt(count=2).encode(),
        "line 1 = 2: line 1 says 2 images, the table lists 3",
    ),
    "count high": (celeb_a_txt(count=30).encode(), "line 1 = 30: line 1 says 30 images"),
    "utf-16": (celeb_a_txt().encode("utf-16"), "UTF-16 text; save it as UTF-8"),
    "latin-1": (
        celeb_a_txt().replace("000002", "00000é").encode("latin-1"),
        "line 4: not ASCII / UTF-8",
    ),
    "duplicate": (
        celeb_a_txt().replace("000003.png", "000001.png").encode(),
        r"line 5 = '000001.png': image listed twice \(lines 3 and 5\)",
    ),
    "short row": (
        celeb_a_txt().replace(" 7.25", "").encode(),
        "line 4 = .*wrong number of fields: 10",
    ),
    "long row": (celeb_a_txt().replace(" 7.25", " 7.25 1").encode(), "line 4 = .*12 fields"),
    "nan": (
        celeb_a_txt().replace(" 5.5 ", " nan ").encode(),
        "line 4 = 'nan': nose_x is not a finite",
    ),
    "inf": (
        celeb_a_csv().replace(",7.25", ",-inf").encode(),
        "line 3 = '-inf': rightmouth_y is not a finite",
    ),
    "huge": (
        celeb_a_txt().replace(" 11 ", " 1e9 ").encode(),
        "line 5 = '1e9': righteye_x is beyond",
    ),
    "huge negative": (celeb_a_txt().replace(" 11 ", " -2e6 ").encode(), "righteye_x is beyond"),
    "text": (celeb_a_txt().replace(" 5.5 ", " five ").encode(), "nose_x is not a number"),
    "bad header": (
        b"image,left_x,right_y\na.png,1,2\n",
        "line 1 = .*the header must name the image column",
    ),
    "odd header": (b"image,x1,y1,x2\na.png,1,2,3\n", "x/y column pairs"),
    "same names": (
        b"image,x1,y1,x1,y1\na.png,1,2,3,4\n",
        "two x/y column pairs have the same name",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_specific_failures_name_the_file_and_line(tmp_path, case):
    data, message = FAILURES[case]
    _images(tmp_path / "img_align_celeba")
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as caught:
        read_landmark_table(path)
    assert str(caught.value).startswith(str(path)) and caught.value.file == str(path)


def test_not_a_table(tmp_path):
    with pytest.raises(DataError, match="landmark table not found .check --data."):
        load_landmark_data(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="landmark table not found"):
        read_landmark_table(tmp_path)
    (tmp_path / "t.csv").write_text(celeb_a_csv())
    with pytest.raises(ValueError, match="check_images must be one of"):
        read_landmark_table(tmp_path / "t.csv", check_images="yes")


def test_broken_image_names_the_image(tmp_path):
    images = _images(tmp_path / "img_align_celeba")
    (images / "000002.png").write_bytes(b"not a png")
    path = tmp_path / "list_landmarks_align_celeba.txt"
    path.write_text(celeb_a_txt())
    with pytest.raises(DataError, match="cannot decode image") as caught:
        read_landmark_table(path)
    assert caught.value.file == str(images / "000002.png")
    assert read_landmark_table(path, check_images="none").num_examples == 3


# === Fuzzing ===


def _fuzz_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    _images(root / "img_align_celeba")
    return root


def read_or_error(path):
    """``read_landmark_table(path)``, or ``None`` after checking that a DataError names a file."""
    try:
        data = read_landmark_table(path, check_images="none")
    except DataError as error:
        assert error.file == str(path), str(error)
        assert str(error).startswith(str(path)), str(error)
        return None
    points = _points(data)
    assert data.num_examples == len(data.files) == len(points) >= 1
    assert all(os.path.isfile(f) for f in data.files)
    assert len(set(data.files)) == len(data.files)
    assert points.ndim == 3 and points.shape[1:] == (data.num_landmarks, 2), points.shape
    assert np.isfinite(points).all() and (np.abs(points) <= MAX_COORDINATE + 1).all()
    return data, points


@FUZZ
@given(
    form=st.sampled_from(["txt", "csv"]),
    how=st.sampled_from(
        ["truncate", "replace", "insert", "latin-1", "utf-16", "utf-16-le", "random"]
    ),
    position=st.integers(0, 10_000),
    payload=st.binary(max_size=12),
)
def test_corrupted_bytes(tmp_path_factory, corrupt_text, form, how, position, payload):
    root = _fuzz_root(tmp_path_factory)
    path = root / f"list_landmarks_align_celeba.{form}"
    text = celeb_a_txt() if form == "txt" else celeb_a_csv()
    if how == "latin-1":
        text = text.replace("1", "é", 1)  # a letter latin-1 writes as a single byte
    path.write_bytes(corrupt_text(text, how, position, payload))
    result = read_or_error(path)
    if how in ("utf-16", "utf-16-le", "random") or (how == "latin-1" and form == "txt"):
        assert result is None or how == "random"
    if result is not None and how == "truncate" and form == "txt":
        # A cut file reads only when the cut drops nothing (the count line guards the rest).
        np.testing.assert_array_equal(result[1], GOLDEN)


@FUZZ
@given(
    form=st.sampled_from(["txt", "csv"]),
    row=st.integers(0, 2),
    column=st.integers(0, 9),
    token=st.sampled_from(NASTY_NUMBERS) | st.floats(allow_nan=True).map(repr),
)
def test_bad_numbers(tmp_path_factory, form, row, column, token):
    root = _fuzz_root(tmp_path_factory)
    rows = {name: [_fmt(v) for v in values] for name, values in ROWS.items()}
    name = list(rows)[row]
    rows[name][column] = token
    path = root / f"list_landmarks_align_celeba.{form}"
    path.write_text(celeb_a_txt(rows) if form == "txt" else celeb_a_csv(rows))
    result = read_or_error(path)
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    separator = " " if form == "txt" else ","
    plain = token.strip() and separator not in token and token.strip() == token
    if math.isfinite(value) and abs(value) <= MAX_COORDINATE and plain:
        assert result is not None, f"{token!r} is a plain number and should be read"
        points = result[1]
        assert points[row, column // 2, column % 2] == np.float32(value + 0.5)
        other = GOLDEN.copy()
        other[row, column // 2, column % 2] = points[row, column // 2, column % 2]
        np.testing.assert_array_equal(points, other)
    else:
        assert result is None, f"{token!r} was read"


ROW_EDITS = [
    "none", "drop field", "extra field", "duplicate row", "drop row", "swap rows", "empty file",
    "count", "no count", "drop header", "blank lines", "unknown image", "absolute image",
]  # fmt: skip


@FUZZ
@given(
    form=st.sampled_from(["txt", "csv"]),
    edit=st.sampled_from(ROW_EDITS),
    row=st.integers(0, 2),
    field=st.integers(0, 10),
    count=st.integers(-3, 10) | st.sampled_from([2**31, 10**30]),
)
def test_row_edits(tmp_path_factory, form, edit, row, field, count):
    root = _fuzz_root(tmp_path_factory)
    text = celeb_a_txt() if form == "txt" else celeb_a_csv()
    lines = text.splitlines()
    first = 2 if form == "txt" else 1  # index of the first data line
    sep = " " if form == "txt" else ","
    target = first + row
    fields = lines[target].split(sep)
    must_fail = edit in (
        "drop field",
        "extra field",
        "duplicate row",
        "empty file",
        "unknown image",
    )
    if edit == "drop field":
        del fields[field % len(fields)]
        lines[target] = sep.join(fields)
    elif edit == "extra field":
        fields.insert(field % (len(fields) + 1), "1")
        lines[target] = sep.join(fields)
    elif edit == "duplicate row":
        lines.insert(target, lines[target])
    elif edit == "drop row":
        del lines[target]
        must_fail = form == "txt"  # the count line disagrees
    elif edit == "swap rows":
        lines[first], lines[target] = lines[target], lines[first]
    elif edit == "empty file":
        lines = []
    elif edit == "count":
        lines.insert(0, str(count)) if form == "csv" else lines.__setitem__(0, str(count))
        must_fail = count != 3
    elif edit == "no count" and form == "txt":
        del lines[0]
    elif edit == "drop header":
        del lines[first - 1]
    elif edit == "blank lines":
        lines.insert(target, "   ")
        lines.append("")
    elif edit == "unknown image":
        lines[target] = lines[target].replace(".png", "_missing.png")
    elif edit == "absolute image":
        lines[target] = str(root / "img_align_celeba") + "/" + lines[target]
    path = root / f"list_landmarks_align_celeba.{form}"
    path.write_text("\n".join(lines) + "\n")
    result = read_or_error(path)
    if edit == "drop header":
        assert result is None  # the first row is no header
    elif must_fail:
        assert result is None, f"{edit}: read without an error"
    elif edit in ("none", "no count", "blank lines", "absolute image", "swap rows"):
        assert result is not None, edit
        data, points = result
        order = [os.path.basename(f) for f in data.files]
        expected = np.stack([GOLDEN[list(ROWS).index(n)] for n in order])
        np.testing.assert_array_equal(points, expected)
