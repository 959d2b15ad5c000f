"""Bad-input fuzzing of the IDX reader (Fashion-MNIST) and of class image folders.

Each test starts from a small valid input, corrupts it (truncation, random bytes, wrong magic
numbers, dimensions that claim gigabytes, broken gzip, NaN, undecodable or 16-bit images,
symlink loops) and checks that the reader either returns a valid result or raises
``DataError`` naming the file: never another exception, never a huge allocation, never a
silently wrong value.
"""

import gzip
import io
import os
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data.classification import load_classification_data, read_image_folder
from zoo.data.errors import DataError
from zoo.data.fashion_mnist import FASHION_MNIST_FILES, load_fashion_mnist, read_idx

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
TYPE_CODES.update({np.float32: 0x0D, np.float64: 0x0E})


def idx_bytes(array, type_code=None, dims=None):
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.type] if type_code is None else type_code
    dims = array.shape if dims is None else dims
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


VALID = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


def read_or_error(path):
    """``read_idx(path)``, or ``None`` after checking that the DataError names the file."""
    try:
        array = read_idx(path)
    except DataError as error:
        assert str(error).startswith(os.fspath(path)), str(error)
        return None
    assert isinstance(array, np.ndarray)
    if array.dtype.kind == "f":
        assert np.isfinite(array).all()
    return array


# === IDX ===


@FUZZ
@given(
    how=st.sampled_from(["truncate", "flip", "replace", "append", "random", "empty"]),
    position=st.integers(0, 200),
    payload=st.binary(min_size=1, max_size=8),
    gzipped=st.booleans(),
)
def test_idx_corrupted(tmp_path, how, position, payload, gzipped):
    data = idx_bytes(VALID)
    cut = position % (len(data) + 1)
    if how == "truncate":
        data = data[:cut]
    elif how == "flip":
        cut = min(cut, len(data) - 1)
        data = data[:cut] + bytes([data[cut] ^ payload[0] or 1]) + data[cut + 1 :]
    elif how == "replace":
        data = data[:cut] + payload + data[cut + len(payload) :]
    elif how == "append":
        data = data + payload
    elif how == "random":
        data = payload
    elif how == "empty":
        data = b""
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
    array = read_or_error(path)
    if array is not None:  # whatever it read is exactly what the bytes say
        header = 4 + 4 * data[3]
        dims = struct.unpack(f">{data[3]}I", data[4:header])
        assert array.shape == dims
        code = {v: k for k, v in TYPE_CODES.items()}[data[2]]
        expected = np.frombuffer(data[header:], np.dtype(code).newbyteorder(">")).reshape(dims)
        np.testing.assert_array_equal(array, expected)


@FUZZ
@given(
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6),
    type_code=st.sampled_from([0x08, 0x0B, 0x0E, 0x01, 0xFF]),
    gzipped=st.booleans(),
)
def test_idx_dims_that_claim_gigabytes(tmp_path, dims, type_code, gzipped):
    data = idx_bytes(VALID, type_code=type_code, dims=dims)
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
    tracemalloc.start()
    try:
        array = read_or_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"read_idx allocated {peak} bytes for a {len(data)}-byte file"
    if array is not None:
        assert int(np.prod(dims)) * array.itemsize == len(VALID.tobytes())


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_gigabyte_claim_message(tmp_path, gzipped):
    data = idx_bytes(VALID, dims=(60000, 28, 28_000))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
    with pytest.raises(DataError, match=r"header shape \[60000, 28, 28000\]") as caught:
        read_idx(path)
    assert caught.value.file == str(path) and caught.value.value == 24


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x1f\x8b\x08\x00garbage", "cannot read gzip-compressed IDX file"),
        (gzip.compress(idx_bytes(VALID), mtime=0)[:-9], "cannot read gzip-compressed IDX file"),
        (b"\x00\x00\x08", "file too short for an IDX header"),
        (b"\x00\x00\x08\x03\x00\x00", "file too short for 3 dimension sizes"),
        (b"\x08\x03\x00\x00" + bytes(30), "magic number must start with two zero bytes"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX type code"),
    ],
)
def test_idx_specific_failures(tmp_path, data, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as caught:
        read_idx(path)
    assert str(caught.value).startswith(str(path))


def test_idx_corrupt_deflate_stream(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(VALID), compresslevel=0, mtime=0))
    packed[10] = 0x07  # an invalid deflate block type: zlib.error inside gzip
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(packed))
    with pytest.raises(DataError, match="cannot read gzip-compressed IDX file"):
        read_idx(path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_idx_float_nan(tmp_path, value):
    array = np.ones((2, 3), np.float32)
    array[1, 2] = value
    path = tmp_path / "floats-idx2"
    path.write_bytes(idx_bytes(array))
    with pytest.raises(DataError, match=r"element \[1, 2\] = -?(nan|inf): .*NaN or infinity"):
        read_idx(path)
    array[1, 2] = 7.5
    path.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path), array)


def _fashion_folder(root, labels=None, images_dims=None):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        images = rng.integers(0, 256, (n, 28, 28), np.uint8)
        y = np.arange(n, dtype=np.uint8) if labels is None else np.asarray(labels[split])
        (root / FASHION_MNIST_FILES[f"{split}_images"]).write_bytes(
            idx_bytes(images, dims=images_dims)
        )
        (root / (FASHION_MNIST_FILES[f"{split}_labels"] + ".gz")).write_bytes(
            gzip.compress(idx_bytes(y), mtime=0)
        )
    return root


def test_fashion_mnist_bad_labels_and_types(tmp_path):
    (x, y), (xt, yt) = load_fashion_mnist(_fashion_folder(tmp_path / "ok"))
    assert x.shape == (4, 28, 28) and y.tolist() == [0, 1, 2, 3] and yt.tolist() == [0, 1]
    labels = {"train": np.array([0, 1, 10, 2], np.uint8), "test": np.array([0, 1], np.uint8)}
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: label\[2\] = 10: labels"):
        load_fashion_mnist(_fashion_folder(tmp_path / "range", labels))
    labels = {"train": np.array([0, 1, 2, 3], np.int32), "test": np.array([0, 1], np.int32)}
    with pytest.raises(DataError, match=r"labels-idx1-ubyte\.gz: dtype = 'int32'"):
        load_fashion_mnist(_fashion_folder(tmp_path / "int32", labels))
    with pytest.raises(
        DataError, match=r"images-idx3-ubyte: data bytes = 3136: data size disagrees"
    ):
        load_fashion_mnist(_fashion_folder(tmp_path / "dims", images_dims=(4, 28, 29)))
    with pytest.raises(DataError, match=r"--data fashion_mnist"):
        load_fashion_mnist(tmp_path / "missing")


# === Image class folders ===


def png_bytes(seed, size=(8, 6), mode="RGB", fmt="PNG"):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    pixels = rng.integers(0, 256, shape, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def image_folder(root):
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{i}.png").write_bytes(png_bytes(10 * c + i))
    return root


def huge_png_header(width, height):
    """A PNG whose header claims ``width x height`` pixels, with almost no data."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))


FOLDER_EDITS = [
    "none", "random bytes", "truncated", "empty", "text", "huge header", "bomb header",
    "16-bit", "16-bit small", "grayscale", "jpeg as png", "loop to parent", "loop to root",
    "loop to self", "dir named png", "empty class", "hidden folder", "stray file", "gif",
]  # fmt: skip
MUST_FAIL = ("truncated", "empty", "text", "huge header", "bomb header", "16-bit", "empty class")
MUST_FAIL += ("loop to root",)


@FUZZ
@given(
    edit=st.sampled_from(FOLDER_EDITS),
    cut=st.integers(1, 60),
    payload=st.binary(min_size=1, max_size=64),
)
def test_image_folder(tmp_path_factory, edit, cut, payload):
    root = image_folder(tmp_path_factory.mktemp("images") / "set")
    target = root / "dog" / "1.png"
    count = 6
    if edit == "random bytes":
        target.write_bytes(payload)
    elif edit == "truncated":
        target.write_bytes(target.read_bytes()[:cut])
    elif edit == "empty":
        target.write_bytes(b"")
    elif edit == "text":
        target.write_text("hello")
    elif edit == "huge header":
        target.write_bytes(huge_png_header(4000, 3000))
    elif edit == "bomb header":
        target.write_bytes(huge_png_header(2**31 - 1, 2**31 - 1))
    elif edit in ("16-bit", "16-bit small"):
        top = 60_000 if edit == "16-bit" else 200
        pixels = np.linspace(0, top, 48, dtype=np.uint16).reshape(6, 8)
        Image.fromarray(pixels).save(target)
    elif edit == "grayscale":
        target.write_bytes(png_bytes(3, mode="L"))
    elif edit == "jpeg as png":
        target.write_bytes(png_bytes(3, fmt="JPEG"))
    elif edit == "loop to parent":
        os.symlink("..", root / "dog" / "up")
        os.symlink("..", root / "dog" / "up.png")
    elif edit == "loop to root":
        os.symlink("..", root / "loop")
    elif edit == "loop to self":
        os.symlink("self", root / "self")
        os.symlink("self.png", root / "cat" / "self.png")
    elif edit == "dir named png":
        (root / "cat" / "dir.png").mkdir()
    elif edit == "empty class":
        (root / "bird").mkdir()
    elif edit == "hidden folder":
        (root / ".cache").mkdir()
        (root / ".cache" / "x.png").write_bytes(b"junk")
    elif edit == "stray file":
        (root / "cat" / "notes.txt").write_bytes(payload)
        (root / "README").write_bytes(payload)
    elif edit == "gif":
        Image.open(io.BytesIO(png_bytes(4))).save(root / "cat" / "extra.gif")
        count = 7
    try:
        data = read_image_folder(root)
    except DataError as error:
        assert error.file is not None and error.file.startswith(str(root)), str(error)
        assert edit in MUST_FAIL or edit == "random bytes", str(error)
        return
    assert edit not in MUST_FAIL, f"{edit}: read without an error"
    assert data.class_names == ("cat", "dog")
    assert data.images.dtype == np.uint8 and data.images.shape == (count, 6, 8, 3)
    assert sorted(data.labels.tolist()) == [0] * (count - 3) + [1] * 3
    if edit == "16-bit small":  # 16-bit container, 8-bit values: read exactly
        np.testing.assert_array_equal(data.images[4, ..., 0], np.asarray(Image.open(target)))
    elif edit == "none":
        np.testing.assert_array_equal(data.images[4], np.asarray(Image.open(target)))


def test_image_folder_specific_messages(tmp_path):
    root = image_folder(tmp_path / "set")
    Image.fromarray(np.full((6, 8), 40_000, np.uint16)).save(root / "dog" / "1.png")
    with pytest.raises(DataError, match=r"dog/1\.png: max value = 40000: .*save it as 8-bit"):
        read_image_folder(root)
    (root / "dog" / "1.png").write_bytes(png_bytes(1, size=(5, 5)))
    with pytest.raises(DataError, match=r"pass image_size=\(H, W\).*--data folder"):
        read_image_folder(root)
    assert read_image_folder(root, image_size=(6, 8)).images.shape == (6, 6, 8, 3)
    os.symlink(str(root), root / "again")
    with pytest.raises(DataError, match=r"again: symlink = '.*set': class folder is a symlink"):
        read_image_folder(root)


def test_load_classification_data_train_test_folders(tmp_path):
    root = tmp_path / "split"
    image_folder(root / "train")
    image_folder(root / "test")
    train, test = load_classification_data(str(root))
    assert len(train) == len(test) == 6 and train.class_names == test.class_names
    (root / "test" / "cat" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"test/cat/0\.png: cannot decode image"):
        load_classification_data(str(root))
    with pytest.raises(DataError, match="image folder not found"):
        load_classification_data(str(tmp_path / "nowhere"))
