"""Bad-input fuzzing of the landmark file readers (iBUG ``.pts`` files and ``.pts`` folders).

Each test starts from a small valid input, corrupts it (truncation, other encodings, random
bytes, bad numbers, missing / repeated lines, broken images, symlink loops) and checks that the
reader either returns a valid result or raises ``DataError`` naming the file: never another
exception, never a hang, never a silently wrong point.
"""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data.errors import DataError
from zoo.landmarks.data import (
    MAX_COORDINATE,
    PTS_SKIPPED_NO_POINTS,
    read_pts,
    read_pts_folder,
)

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALID_POINTS = [(10.5, 20.0), (30.25, 5.0), (1.0, 1.0), (15.0, 25.75)]

# Tokens a broken tool (or a bad hand edit) writes where a number belongs.
NASTY_NUMBERS = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e400", "1e7", "-2e6", "1e-320",
    "-5", "0", "-0.0", "3.4e38", "1,5", "", "x", "0x10", "1e", "--1", "1.2.3", "½", "١٢",
]  # fmt: skip


def pts_text(points, n_points=None, version=True):
    n = len(points) if n_points is None else n_points
    body = "".join(f"{x} {y}\n" for x, y in points)
    head = "version: 1\n" if version else ""
    return f"{head}n_points: {n}\n{{\n{body}}}\n"


def _reference_points(data):
    """What a strict reader makes of ``data``: the point lines between ``{`` and ``}``."""
    lines = data.decode("utf-8-sig").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("{"))
    points = []
    for line in lines[start + 1 :]:
        if line.strip().startswith("}"):
            break
        if line.strip():
            points.append([float(v) for v in line.split()])
    return np.asarray(points, np.float64).reshape(-1, 2)


def read_or_error(path, **kwargs):
    """``read_pts(path)``, or ``None`` after checking that a DataError names the file."""
    try:
        points = read_pts(path, **kwargs)
    except DataError as error:
        assert os.fspath(path) in str(error), str(error)
        assert error.file == os.fspath(path)
        return None
    assert isinstance(points, np.ndarray) and points.dtype == np.float64
    assert points.ndim == 2 and points.shape[1] == 2 and len(points) >= 1, points.shape
    assert np.isfinite(points).all() and (np.abs(points) <= MAX_COORDINATE).all(), points
    return points


# === One .pts file ===


@FUZZ
@given(
    how=st.sampled_from(
        ["truncate", "replace", "insert", "latin-1", "utf-16", "utf-16-le", "random"]
    ),
    position=st.integers(0, 10_000),
    payload=st.binary(max_size=12),
)
def test_corrupted_bytes(tmp_path, corrupt_text, how, position, payload):
    path = tmp_path / "face.pts"
    text = pts_text(VALID_POINTS)
    if how == "latin-1":
        text = text.replace("1", "é", 1)  # a letter latin-1 writes as a single byte
    data = corrupt_text(text, how, position, payload)
    path.write_bytes(data)
    points = read_or_error(path)
    if points is not None:  # the reader agrees with a strict reading of the same bytes
        np.testing.assert_array_equal(points, _reference_points(data))


@FUZZ
@given(
    index=st.integers(0, len(VALID_POINTS) - 1),
    axis=st.integers(0, 1),
    token=st.sampled_from(NASTY_NUMBERS) | st.floats(allow_nan=True).map(repr),
)
def test_bad_numbers(tmp_path, index, axis, token):
    lines = [[str(x), str(y)] for x, y in VALID_POINTS]
    lines[index][axis] = token
    path = tmp_path / "face.pts"
    path.write_text(
        "version: 1\nn_points: 4\n{\n" + "".join(f"{a} {b}\n" for a, b in lines) + "}\n"
    )
    points = read_or_error(path)
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and abs(value) <= MAX_COORDINATE:
        assert points is not None, f"{token!r} is a plain number and should be read"
        assert points[index, axis] == value
        assert points[index, 1 - axis] == VALID_POINTS[index][1 - axis]
    else:
        assert points is None, f"{token!r} was read as {points[index, axis]}"


@FUZZ
@given(
    n_points=st.sampled_from([-1, 0, 3, 5, 2**31, 10**30]) | st.integers(-10, 10),
    edit=st.sampled_from(["none", "drop line", "repeat line", "no header", "twice", "no close"]),
    line=st.integers(0, 20),
)
def test_wrong_counts_and_missing_lines(tmp_path, n_points, edit, line):
    lines = pts_text(VALID_POINTS, n_points=n_points).splitlines()
    if edit == "drop line":
        del lines[line % len(lines)]
    elif edit == "repeat line":
        lines.insert(line % len(lines), lines[line % len(lines)])
    elif edit == "no header":
        lines = [x for x in lines if not x.startswith("n_points")]
    elif edit == "twice":
        lines.insert(1, "n_points: 4")
    elif edit == "no close":
        lines = lines[:-1]
    path = tmp_path / "face.pts"
    path.write_text("\n".join(lines) + "\n")
    points = read_or_error(path)
    if points is not None:
        text = path.read_text()
        assert text.count("n_points") == 1 and f"n_points: {len(points)}" in text
        np.testing.assert_array_equal(points, _reference_points(text.encode()))


@pytest.mark.parametrize("num_landmarks", [1, 3, 5, 68])
def test_num_landmarks_disagrees(tmp_path, num_landmarks):
    path = tmp_path / "face.pts"
    path.write_text(pts_text(VALID_POINTS))
    with pytest.raises(DataError, match=r"face\.pts: wrong number of points: expected"):
        read_pts(path, num_landmarks=num_landmarks)
    assert read_pts(path, num_landmarks=len(VALID_POINTS)).shape == (4, 2)


def test_specific_failures_name_the_file(tmp_path):
    cases = {
        "empty.pts": b"",
        "latin1.pts": "version: 1\nn_points: 1\n{\n1 2\n}\n# café\n".encode("latin-1"),
        "utf16.pts": pts_text(VALID_POINTS).encode("utf-16"),
        "zero.pts": b"n_points: 0\n{\n}\n",
        "twice.pts": b"n_points: 1\nn_points: 2\n{\n1 2\n}\n",
        "huge.pts": b"n_points: 1\n{\n1e30 2\n}\n",
    }
    messages = {
        "empty.pts": "no 'n_points:' header",
        "latin1.pts": "line 6: not ASCII / UTF-8 text",
        "utf16.pts": "not ASCII / UTF-8 text",
        "zero.pts": "n_points must be >= 1",
        "twice.pts": "n_points given twice",
        "huge.pts": "x is beyond 1,000,000 pixels",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=messages[name]) as caught:
            read_pts(tmp_path / name)
        assert str(caught.value).startswith(str(tmp_path / name))
    folder = tmp_path / "dir.pts"
    folder.mkdir()
    with pytest.raises(DataError, match="cannot read the .pts file"):
        read_pts(folder)


# === .pts folders with images ===


def _image_bytes(seed, size=(12, 10), fmt="PNG"):
    import io

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def _valid_folder(root):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (root / f"f{i}.png").write_bytes(_image_bytes(i))
        (root / f"f{i}.pts").write_text(pts_text([(1 + i, 2), (3, 4 + i)]))
    return root


FOLDER_EDITS = [
    "none", "garbage image", "truncated image", "empty image", "text as image", "no image",
    "extra image", "other count", "bad pts", "loop to parent", "loop to self", "dir named pts",
    "dir named png", "second image format", "nested copy", "pts symlink",
]  # fmt: skip


MUST_FAIL = ("truncated image", "empty image", "text as image", "no image", "other count")


@FUZZ
@given(
    edit=st.sampled_from(FOLDER_EDITS),
    which=st.integers(0, 2),
    cut=st.integers(0, 200),
    payload=st.binary(min_size=1, max_size=64),
)
def test_pts_folder(tmp_path_factory, edit, which, cut, payload):
    root = _valid_folder(tmp_path_factory.mktemp("pts") / "set")
    image, pts = root / f"f{which}.png", root / f"f{which}.pts"
    expected_files, skipped = 3, 0
    if edit == "garbage image":
        image.write_bytes(payload)
    elif edit == "truncated image":
        image.write_bytes(image.read_bytes()[: cut % 60])
    elif edit == "empty image":
        image.write_bytes(b"")
    elif edit == "text as image":
        image.write_text("not an image")
    elif edit == "no image":
        image.unlink()
    elif edit == "extra image":
        (root / "lonely.png").write_bytes(_image_bytes(9))
        skipped = 1
    elif edit == "other count":
        pts.write_text(pts_text([(1, 2), (3, 4), (5, 6)]))
    elif edit == "bad pts":
        pts.write_bytes(payload)
    elif edit == "loop to parent":
        os.symlink("..", root / "up")
        os.symlink(".", root / "here")
    elif edit == "loop to self":
        os.symlink("self.pts", root / "self.pts")
        os.symlink("self.png", root / "self.png")
    elif edit == "dir named pts":
        (root / "folder.pts").mkdir()
    elif edit == "dir named png":
        (root / "folder.png").mkdir()
    elif edit == "second image format":
        (root / f"f{which}.jpg").write_bytes(_image_bytes(which, fmt="JPEG"))
    elif edit == "nested copy":
        (root / "sub").mkdir()
        (root / "sub" / "g.png").write_bytes(_image_bytes(5))
        (root / "sub" / "g.pts").write_text(pts_text([(7, 8), (9, 10)]))
        expected_files = 4
    elif edit == "pts symlink":
        (root / "sub").mkdir()
        (root / "sub" / "g.png").write_bytes(_image_bytes(5))
        os.symlink(pts, root / "sub" / "g.pts")
        expected_files = 4
    try:
        data = read_pts_folder(root, check_images="full")
    except DataError as error:
        assert error.file is not None and error.file.startswith(str(root)), str(error)
        # garbage bytes may or may not decode; a refused one must name its own file
        assert edit in MUST_FAIL or edit in ("garbage image", "bad pts"), str(error)
        return
    assert edit not in MUST_FAIL, f"{edit}: read without an error"
    assert data.num_examples == len(data.files) == expected_files
    assert all(os.path.isfile(f) for f in data.files)
    assert data.report[PTS_SKIPPED_NO_POINTS] >= skipped
    landmarks = np.stack([r[1] for r in data.records.as_numpy_iterator()])
    assert landmarks.shape == (expected_files, 2, 2) and np.isfinite(landmarks).all()
    # Points are the files' values shifted to continuous coordinates, in file order.
    for file, points in zip(data.files, landmarks, strict=True):
        written = read_pts(os.path.splitext(file)[0] + ".pts")
        np.testing.assert_allclose(points, written - 0.5, rtol=0, atol=1e-6)


def test_pts_folder_decodes_and_survives_a_loop(tmp_path):
    root = _valid_folder(tmp_path / "set")
    os.symlink("..", root / "up")
    os.symlink(str(root), root / "again")
    data = read_pts_folder(root, check_images="full")
    assert data.num_examples == 3
    for element in data.as_dataset():
        assert element["images"].shape == (10, 12, 3)
        assert np.isfinite(element["landmarks"].numpy()).all()
