"""zoo.data.fashion_mnist: IDX reading (every type, gzip or not), search paths, errors."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from zoo.data.errors import DataError
from zoo.data.fashion_mnist import (
    DEBIAN_FOLDER,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    fashion_mnist_search_paths,
    find_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)

TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def write_idx(path, array, compress=False, type_code=None):
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.type] if type_code is None else type_code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype is np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    got = read_idx(write_idx(tmp_path / "x.idx", array, compress))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_read_idx_errors_name_file_field_value(tmp_path):
    bad_magic = tmp_path / "bad_magic"
    bad_magic.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match=r"bad_magic: magic = '0x01000801'"):
        read_idx(bad_magic)
    with pytest.raises(DataError, match=r"type\) = '0x7'"):
        read_idx(write_idx(tmp_path / "bad_type", np.zeros(3, np.uint8), type_code=0x07))
    truncated = tmp_path / "truncated"
    truncated.write_bytes(write_idx(tmp_path / "ok", np.zeros((2, 2), np.uint8)).read_bytes()[:-1])
    with pytest.raises(DataError, match=r"truncated: data bytes = 3: .*4 bytes"):
        read_idx(truncated)
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "missing")


def fake_dataset(folder, n_train=6, n_test=4, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        name = FASHION_MNIST_FILES[key] + (".gz" if compress else "")
        write_idx(folder / name, array, compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_load_from_given_path(tmp_path, compress):
    arrays = fake_dataset(tmp_path / "fm", compress=compress)
    (x, y), (xt, yt) = load_fashion_mnist(tmp_path / "fm")
    np.testing.assert_array_equal(x, arrays["train_images"])
    np.testing.assert_array_equal(yt, arrays["test_labels"])
    assert x.dtype == np.uint8 and y.shape == (6,) and xt.shape == (4, 28, 28)


def test_missing_files_error_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(DataError) as info:
        find_fashion_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert (
        str(tmp_path / "nowhere") in message and "apt-get install dataset-fashion-mnist" in message
    )
    paths = [str(p) for p in fashion_mnist_search_paths(tmp_path / "first")]
    assert paths[0] == str(tmp_path / "first")
    assert DEBIAN_FOLDER in paths
    assert str(tmp_path / "keras_home" / "datasets") in paths


def test_keras_cache_folder_is_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setattr("zoo.data.fashion_mnist.DEBIAN_FOLDER", str(tmp_path / "no_debian"))
    monkeypatch.setattr("zoo.data.fashion_mnist._dpkg_folders", lambda: [])
    monkeypatch.delenv("ZOO_FASHION_MNIST", raising=False)
    fake_dataset(tmp_path / "kh" / "datasets" / "fashion-mnist", compress=False)
    found = find_fashion_mnist()
    assert found["test_labels"].parent == tmp_path / "kh" / "datasets" / "fashion-mnist"


def test_count_mismatch_is_an_error(tmp_path):
    fake_dataset(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), True)
    with pytest.raises(DataError, match="4 images but 3 labels"):
        load_fashion_mnist(tmp_path / "fm")


@pytest.mark.skipif(
    not Path(DEBIAN_FOLDER, FASHION_MNIST_FILES["test_labels"] + ".gz").exists(),
    reason="needs the Debian package dataset-fashion-mnist (installed by .ci/run)",
)
def test_real_debian_package():
    (x, y), (xt, yt) = load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert yt[:3].tolist() == [9, 2, 1] and len(FASHION_MNIST_CLASSES) == 10
