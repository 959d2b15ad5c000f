"""Labelled images: readers, class splits, subsets, resizing and a batch augmentation.

Every source gives a ``ClassificationData`` (uint8 images ``(N, H, W, C)``, int32 labels
``(N,)``, class names):

- ``load_digits_data``: scikit-learn's 8×8 digits (1797 images, always available offline),
- ``load_fashion_mnist_data``: Fashion-MNIST from local IDX files (``zoo.data.fashion_mnist``),
- ``load_shapes_data``: RGB synthetic shapes generated in code,
- ``read_image_folder``: one sub-folder per class (``root/<class>/<image>``),
- ``load_classification_data``: by name or path, Fashion-MNIST first and digits when it is absent.

``split_classes`` (seen / unseen classes), ``stratified_split``, ``subsample`` and
``resize_images`` shape the splits; ``make_augmentation`` is a random flip + shift for tf.data.
The families build on these: metric learning samples its P×K batches and pair / triplet
streams from them, the self-supervised family probes and fine-tunes on them.

Example:
    >>> train, test = load_classification_data()            # Fashion-MNIST, else digits
    >>> seen, unseen = split_classes(train, holdout=[5, 6, 7, 8, 9])
    >>> augment = make_augmentation(max_shift=0.0)          # flips only
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import keras
import numpy as np

from zoo.data.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ClassificationData",
    "load_classification_data",
    "load_digits_data",
    "load_fashion_mnist_data",
    "load_shapes_data",
    "make_augmentation",
    "read_image_folder",
    "resize_images",
    "split_classes",
    "stratified_split",
    "subsample",
]

_log = logging.getLogger("zoo.data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


# === Data container ===


@dataclasses.dataclass
class ClassificationData:
    """Images with one class label each.

    Attributes:
        images: uint8 ``(N, H, W, C)``.
        labels: int32 ``(N,)`` in ``[0, len(class_names))``.
        class_names: tuple of names, index = label.
        source: where the data came from (for messages).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    source: str = ""

    def __post_init__(self):
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels).astype(np.int32).reshape(-1)
        self.class_names = tuple(self.class_names)
        if self.images.ndim == 3:
            self.images = self.images[..., None]
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise DataError(
                f"images must be (N, H, W, C) with one label each; got images "
                f"{self.images.shape} and {len(self.labels)} labels",
                file=self.source or None,
            )
        if len(self.labels) and (
            self.labels.min() < 0 or self.labels.max() >= len(self.class_names)
        ):
            bad = self.labels[(self.labels < 0) | (self.labels >= len(self.class_names))][0]
            raise DataError(
                f"labels must lie in [0, {len(self.class_names)})",
                file=self.source or None,
                field="label",
                value=int(bad),
            )

    def __len__(self):
        return len(self.labels)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    def take(self, indices):
        """A new ``ClassificationData`` with the rows ``indices`` (same class names)."""
        indices = np.asarray(indices)
        return ClassificationData(
            self.images[indices], self.labels[indices], self.class_names, self.source
        )


# === Readers ===


def load_digits_data(test_fraction=0.25, seed=0):
    """scikit-learn's digits (8×8 grayscale, 10 classes), scaled to uint8 0–255, split by class.

    Args:
        test_fraction: fraction of each class kept for the test split.
        seed: split seed.

    Returns:
        ``(train, test)`` ``ClassificationData``, images ``(N, 8, 8, 1)``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    data = ClassificationData(
        images, digits.target, tuple(str(i) for i in range(10)), "sklearn digits"
    )
    return stratified_split(data, test_fraction, seed)


SHAPES_SOURCES = {"shapes": "random", "shapes_by_class": "by_class"}
"""``load_classification_data`` source name → ``load_shapes_data(colors=...)``."""


def load_shapes_data(num_train=6000, num_test=1000, image_size=(32, 32), seed=0, colors="random"):
    """An RGB set generated in code: one synthetic shape per image, labelled by its kind.

    Images come from ``zoo.data.synthetic.render_shapes`` (textured background, random colour,
    size and position; one object, never empty); the label is the shape's index in
    ``zoo.data.synthetic.SHAPES``. The RGB default of the self-supervised recipes (colorization
    needs colour) and a small always-available classification set.

    Args:
        num_train, num_test: split sizes (the test images use other indices of the same seed).
        image_size: ``(height, width)``.
        seed: set seed.
        colors: ``"random"`` (colour says nothing about the class) or ``"by_class"`` (the hue
            follows the shape, the lightness does not: the set for colorization, where colour
            must be predictable from the grayscale image; see ``render_shapes``).

    Returns:
        ``(train, test)`` ``ClassificationData``, images ``(N, H, W, 3)`` uint8.
    """
    from zoo.data.synthetic import SHAPES, render_shapes

    def make(start, count, source):
        images, labels = [], []
        for index in range(start, start + count):
            image, _, label = render_shapes(
                index,
                seed=seed,
                image_size=image_size,
                class_names=SHAPES,
                max_objects=1,
                empty_fraction=0.0,
                size_range=(0.45, 0.9),
                colors=colors,
            )
            images.append(image)
            labels.append(int(label[0]))
        return ClassificationData(np.stack(images), np.asarray(labels), SHAPES, source)

    name = {v: k for k, v in SHAPES_SOURCES.items()}.get(colors, "shapes")  # bad: render raises
    return make(0, num_train, f"{name}/train"), make(num_train, num_test, f"{name}/test")


def load_fashion_mnist_data(path=None):
    """Fashion-MNIST as ``(train, test)`` ``ClassificationData`` (images ``(N, 28, 28, 1)``).

    Args:
        path: folder of the IDX files; ``None`` searches the usual places (see
            ``zoo.data.fashion_mnist.load_fashion_mnist``).

    Raises:
        DataError: the files are missing (listing where it looked) or malformed.
    """
    from zoo.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(path)
    return (
        ClassificationData(x_train, y_train, FASHION_MNIST_CLASSES, "fashion_mnist/train"),
        ClassificationData(x_test, y_test, FASHION_MNIST_CLASSES, "fashion_mnist/test"),
    )


_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # more than 8 bits per pixel


def _class_folders(root):
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    top = root.resolve()
    for folder in folders:
        if folder.is_symlink() and folder.resolve() in (top, *top.parents):
            raise DataError(
                "class folder is a symlink to the image folder or above it (a loop)",
                file=str(folder),
                field="symlink",
                value=os.readlink(folder),
            )
    return folders


def _read_image(file):
    """The decoded PIL image; DataError naming the file for anything PIL cannot read."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            image.load()
            image = image.copy()
    except Exception as error:  # PIL raises many kinds (OSError, SyntaxError, DecompressionBomb)
        raise DataError(f"cannot decode image ({error})", file=str(file)) from None
    if image.mode in _WIDE_MODES and image.getextrema()[1] > 255:
        raise DataError(
            f"{image.mode} image with values above 255 (16-bit or float); save it as 8-bit",
            file=str(file),
            field="max value",
            value=image.getextrema()[1],
        )
    return image


def read_image_folder(root, image_size=None, channels=None, class_names=None):
    """Read ``root/<class name>/<image>`` into memory (one sub-folder per class, sorted by name).

    Args:
        root: the folder.
        image_size: ``(height, width)`` to resize every image to (bilinear); ``None`` needs all
            images to share one size.
        channels: 1 (grayscale) or 3 (RGB); ``None`` takes 1 when every image is grayscale, else 3.
        class_names: the class order to use (e.g. the train split's for a test split); folders
            not in it raise.

    Returns:
        ``ClassificationData``.

    Raises:
        DataError: missing or empty folder, a class folder linking back to ``root``, an image
            that cannot be decoded or holds values above 255 (16-bit), mixed sizes without
            ``image_size``; the message names the file.
    """
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise DataError("image folder not found", file=str(root))
    folders = _class_folders(root)
    if not folders:
        raise DataError("no class sub-folders (expected root/<class>/<image>)", file=str(root))
    names = tuple(class_names) if class_names is not None else tuple(f.name for f in folders)
    index = {name: i for i, name in enumerate(names)}
    images, labels, modes = [], [], []
    for folder in folders:
        if folder.name not in index:
            raise DataError(
                f"class folder not in class_names {list(names)}", file=str(folder), field="class"
            )
        files = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:
            raise DataError(
                f"class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})", file=str(folder)
            )
        for file in files:
            image = _read_image(file)
            modes.append(image.mode)
            images.append(image)
            labels.append(index[folder.name])
    if channels is None:
        channels = 1 if all(m in ("L", "1", *_WIDE_MODES) for m in modes) else 3
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1, 3 or None. Received: channels={channels!r}")
    arrays = []
    for image in images:
        image = image.convert("L" if channels == 1 else "RGB")
        if image_size is not None:
            height, width = image_size
            image = image.resize((int(width), int(height)), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[..., None] if channels == 1 else array)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(
            f"images have different sizes {sorted(shapes)[:4]}; pass image_size=(H, W) to "
            "read_image_folder or load_classification_data (recipes read a --data folder at "
            "the images' own size: resize the files to one size first)",
            file=str(root),
        )
    return ClassificationData(np.stack(arrays), np.asarray(labels), names, str(root))


def stratified_split(data, test_fraction=0.2, seed=0):
    """Split every class into train / test parts (at least one example each side when possible).

    Returns:
        ``(train, test)`` ``ClassificationData``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1). Received: {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(data.labels):
        idx = rng.permutation(np.flatnonzero(data.labels == c))
        n_test = int(round(len(idx) * test_fraction))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) > 1 else 0
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return data.take(np.sort(np.concatenate(train_idx))), data.take(
        np.sort(np.concatenate(test_idx))
    )


def load_classification_data(source=None, *, image_size=None, test_fraction=0.2, seed=0):
    """Train and test splits by name or path.

    Args:
        source: ``None`` (Fashion-MNIST when its files are found, else scikit-learn digits),
            ``"fashion_mnist"`` (a missing file is an error), ``"digits"``, ``"shapes"`` (RGB,
            generated in code, see ``load_shapes_data``), ``"shapes_by_class"`` (the same with
            the colour following the shape: colorization's default), or an image folder:
            with ``train/`` and ``test/`` sub-folders they are the splits, else every class is
            split by ``test_fraction``.
        image_size: resize images of a folder to ``(height, width)``.
        test_fraction, seed: split of a folder without ``train/`` / ``test/``.

    Returns:
        ``(train, test)`` ``ClassificationData``.
    """
    if source is None:
        try:
            return load_fashion_mnist_data()
        except DataError as error:
            _log.warning("Fashion-MNIST not found, using scikit-learn digits (%s)", error)
            return load_digits_data(seed=seed)
    if source in ("fashion_mnist", "fashion-mnist"):
        return load_fashion_mnist_data()
    if source == "digits":
        return load_digits_data(seed=seed)
    if source in SHAPES_SOURCES:
        colors = SHAPES_SOURCES[source]
        return load_shapes_data(image_size=image_size or (32, 32), seed=seed, colors=colors)
    root = Path(source)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train = read_image_folder(root / "train", image_size)
        channels = train.images.shape[-1]
        test = read_image_folder(root / "test", image_size, channels, class_names=train.class_names)
        return train, test
    return stratified_split(read_image_folder(root, image_size), test_fraction, seed)


def subsample(data, max_count, seed=0):
    """About ``max_count`` examples, the same fraction of every class (at least 2 per class).

    Returns ``data`` itself when it holds ``max_count`` or fewer examples.
    """
    if max_count is None or len(data) <= max_count:
        return data
    fraction = max_count / len(data)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == c)
        n = max(2, int(round(len(idx) * fraction))) if len(idx) >= 2 else len(idx)
        keep.append(rng.choice(idx, min(n, len(idx)), replace=False))
    return data.take(np.sort(np.concatenate(keep)))


def resize_images(data, image_size):
    """Bilinear resize of every image to ``(height, width)`` (no-op when it already matches)."""
    if image_size is None or tuple(data.image_shape[:2]) == tuple(image_size):
        return data
    import tensorflow as tf

    resized = tf.image.resize(data.images.astype(np.float32), tuple(image_size), "bilinear")
    images = np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
    return ClassificationData(images, data.labels, data.class_names, data.source)


def split_classes(data, holdout):
    """Split by class: ``(seen, unseen)``, the second holding the classes in ``holdout``.

    Labels keep their original values (so metrics and plots name the right classes).

    Args:
        data: ``ClassificationData``.
        holdout: iterable of class labels.
    """
    holdout = np.asarray(sorted(set(int(c) for c in holdout)), dtype=np.int32)
    bad = [int(c) for c in holdout if not 0 <= c < data.num_classes]
    if bad:
        raise ValueError(f"holdout classes must lie in [0, {data.num_classes}). Received: {bad}")
    unseen = np.isin(data.labels, holdout)
    return data.take(np.flatnonzero(~unseen)), data.take(np.flatnonzero(unseen))


# === Augmentation ===


def make_augmentation(flip=True, max_shift=0.1, seed=0):
    """A batch augmentation for tf.data: random horizontal flip and translation (zero fill).

    Args:
        flip: random left-right flip.
        max_shift: largest shift as a fraction of height / width (0 disables).
        seed: layer seed.

    Returns:
        ``fn(images float32 (B, H, W, C)) -> images`` or ``None`` when nothing is enabled.
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if max_shift:
        layers.append(
            keras.layers.RandomTranslation(
                max_shift, max_shift, fill_mode="constant", fill_value=0.0, seed=seed + 1
            )
        )
    if not layers:
        return None

    def augment(images):
        for layer in layers:
            images = layer(images, training=True)
        return images

    return augment
