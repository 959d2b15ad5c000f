"""Fashion-MNIST from local IDX files (nothing is downloaded), and a general IDX reader.

``read_idx`` reads any IDX file (the MNIST family's format, optionally gzip-compressed):
a 4-byte magic ``0x00 0x00 <type> <ndim>``, ``ndim`` big-endian uint32 dimension sizes, then the
data, big-endian, row-major. Types: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C``
int32, ``0x0D`` float32, ``0x0E`` float64.

``load_fashion_mnist`` looks for the four files (``train-images-idx3-ubyte[.gz]``,
``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
``t10k-labels-idx1-ubyte[.gz]``) in, in order: the given ``path``; ``$ZOO_FASHION_MNIST``; the
Debian/Ubuntu package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, or
wherever ``dpkg -L dataset-fashion-mnist`` puts them); ``~/.keras/datasets/fashion-mnist`` and
``~/.keras/datasets`` (where ``keras.datasets.fashion_mnist`` caches them). A miss raises
``DataError`` listing every place it looked.

Example:
    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    >>> x_train.shape, x_train.dtype, y_test[:3]
    ((60000, 28, 28), dtype('uint8'), array([9, 2, 1], dtype=uint8))
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np

from zoo.data.errors import DataError

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "fashion_mnist_search_paths",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "read_idx",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"
ENV_VARIABLE = "ZOO_FASHION_MNIST"

_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read_exactly(f, size):
    """Up to ``size`` bytes, in chunks: a header that claims gigabytes allocates nothing."""
    chunks, left = [], size
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_idx(path):
    """Read an IDX file (plain or gzip, detected from the content) into a NumPy array.

    The header is checked against the file's length before the data is read, so a corrupt
    header that claims gigabytes fails at once.

    Args:
        path: the file.

    Returns:
        ``np.ndarray`` of the file's shape, in native byte order (uint8 for image/label files).

    Raises:
        DataError: unreadable or truncated file (plain or gzip), not an IDX file (bad magic),
            unknown type code, a size that disagrees with the header, or NaN / infinity in a
            float file; the message names the file, the field and the value.

    Example:
        >>> read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").shape
        (10000,)
    """
    path = os.fspath(path)
    gzipped = False
    try:
        gzipped = _is_gzip(path)
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            return _read_idx(f, path, None if gzipped else os.fstat(f.fileno()).st_size)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as error:
        kind = "gzip-compressed IDX" if gzipped else "IDX"
        raise DataError(f"cannot read {kind} file ({error})", file=path) from None


def _read_idx(f, path, file_size):
    magic = f.read(4)
    if len(magic) < 4:
        raise DataError(
            "file too short for an IDX header", file=path, field="size", value=len(magic)
        )
    zero0, zero1, type_code, ndim = magic
    if zero0 != 0 or zero1 != 0:
        raise DataError(
            "not an IDX file: the magic number must start with two zero bytes",
            file=path,
            field="magic",
            value=f"0x{magic.hex()}",
        )
    if type_code not in _IDX_TYPES:
        raise DataError(
            f"unknown IDX type code; expected one of {[hex(k) for k in _IDX_TYPES]}",
            file=path,
            field="magic[2] (type)",
            value=hex(type_code),
        )
    dims = f.read(4 * ndim)
    header = 4 + len(dims)
    if len(dims) < 4 * ndim:
        raise DataError(
            f"file too short for {ndim} dimension sizes", file=path, field="size", value=header
        )
    shape = tuple(int(v) for v in np.frombuffer(dims, ">u4", count=ndim))
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    # Plain files: the length is known before reading; gzip: read at most one byte too many.
    data = f.read() if file_size is not None and file_size - header == expected else None
    if data is None and file_size is None:
        data = _read_exactly(f, expected + 1)
    found = len(data) if data is not None else file_size - header
    if found != expected:
        raise DataError(
            f"data size disagrees with the header shape {list(shape)} x {dtype.itemsize} bytes "
            f"= {expected} bytes",
            file=path,
            field="data bytes",
            value=found,
        )
    array = np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    if dtype.kind == "f" and not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise DataError(
            "IDX data holds NaN or infinity",
            file=path,
            field=f"element {list(index)}",
            value=float(array[index]),
        )
    return array


def _dpkg_folders():
    """Folders holding the package's IDX files, from ``dpkg -L`` (empty without dpkg)."""
    if shutil.which("dpkg") is None:
        return []
    try:
        listing = subprocess.run(
            ["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if listing.returncode != 0:
        return []
    folders = []
    for line in listing.stdout.splitlines():
        if Path(line).name.startswith(FASHION_MNIST_FILES["train_images"]):
            folders.append(Path(line).parent)
    return folders


def fashion_mnist_search_paths(path=None):
    """The folders ``load_fashion_mnist`` searches, in order (duplicates removed).

    Args:
        path: an extra folder, searched first.

    Returns:
        List of ``pathlib.Path``.
    """
    candidates = []
    if path is not None:
        candidates.append(Path(path).expanduser())
    if os.environ.get(ENV_VARIABLE):
        candidates.append(Path(os.environ[ENV_VARIABLE]).expanduser())
    candidates.append(Path(DEBIAN_FOLDER))
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    candidates += [keras_home / "datasets" / "fashion-mnist", keras_home / "datasets"]
    if path is None:
        candidates += _dpkg_folders()
    seen, unique = set(), []
    for folder in candidates:
        key = str(folder)
        if key not in seen:
            seen.add(key)
            unique.append(folder)
    return unique


def _find_file(folder, stem):
    for name in (stem + ".gz", stem):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_fashion_mnist(path=None):
    """The four Fashion-MNIST files of the first folder that holds all of them.

    Args:
        path: a folder to search first. When given and the files are not there, it is an error
            even if they exist elsewhere (a typo must not silently load other data).

    Returns:
        ``{"train_images": Path, "train_labels": Path, "test_images": Path, "test_labels": Path}``.

    Raises:
        DataError: listing every folder searched and how to get the data.
    """
    folders = [Path(path).expanduser()] if path is not None else fashion_mnist_search_paths()
    for folder in folders:
        found = {key: _find_file(folder, stem) for key, stem in FASHION_MNIST_FILES.items()}
        if all(found.values()):
            return found
    looked = "\n".join(f"  - {folder}" for folder in folders)
    names = ", ".join(f"{stem}[.gz]" for stem in FASHION_MNIST_FILES.values())
    raise DataError(
        f"Fashion-MNIST IDX files ({names}) not found. Looked in:\n{looked}\n"
        f"Install the Debian package (`apt-get install {DEBIAN_PACKAGE}`), copy the files to "
        f"one of these folders, or pass path= (or set ${ENV_VARIABLE}; recipes with "
        f"`--data fashion_mnist` search these same folders).",
        file=str(path) if path is not None else None,
    )


def load_fashion_mnist(path=None):
    """Load Fashion-MNIST like ``keras.datasets.fashion_mnist.load_data()``, from local files.

    Args:
        path: folder holding the IDX files; ``None`` searches ``fashion_mnist_search_paths()``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 images ``(N, 28, 28)`` and uint8 labels
        ``(N,)`` (class names in ``FASHION_MNIST_CLASSES``).

    Raises:
        DataError: files missing (with the folders searched), malformed, not uint8, labels
            outside ``0..9``, or images and labels that disagree in count.
    """
    files = find_fashion_mnist(path)
    arrays = {key: read_idx(file) for key, file in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                "expected images (N, H, W) and labels (N,)",
                file=files[f"{split}_images"],
                field="shape",
                value=[list(images.shape), list(labels.shape)],
            )
        if len(images) != len(labels):
            raise DataError(
                f"{len(images)} images but {len(labels)} labels",
                file=files[f"{split}_labels"],
                field="count",
                value=len(labels),
            )
        for key, array in ((f"{split}_images", images), (f"{split}_labels", labels)):
            if array.dtype != np.uint8:
                raise DataError(
                    "Fashion-MNIST files hold unsigned bytes (IDX type 0x08)",
                    file=files[key],
                    field="dtype",
                    value=str(array.dtype),
                )
        bad = np.flatnonzero(labels >= len(FASHION_MNIST_CLASSES))
        if len(bad):
            raise DataError(
                f"labels must lie in 0..{len(FASHION_MNIST_CLASSES) - 1}",
                file=files[f"{split}_labels"],
                field=f"label[{int(bad[0])}]",
                value=int(labels[bad[0]]),
            )
    return (arrays["train_images"], arrays["train_labels"]), (
        arrays["test_images"],
        arrays["test_labels"],
    )
