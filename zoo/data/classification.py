"""Labelled images for metric learning: readers, class splits, P×K batches, pair/triplet streams.

Every source gives a ``ClassificationData`` (uint8 images ``(N, H, W, C)``, int32 labels
``(N,)``, class names):

- ``load_digits_data``: scikit-learn's 8×8 digits (1797 images, always available offline),
- ``load_fashion_mnist_data``: Fashion-MNIST from local IDX files (``zoo.data.fashion_mnist``),
- ``read_image_folder``: one sub-folder per class (``root/<class>/<image>``),
- ``load_classification_data``: by name or path, Fashion-MNIST first and digits when it is absent.

Batches for training:

- ``pk_batches``: class-balanced P×K batches (P classes × K examples each), infinite, in tf.data;
  what online triplet mining (``zoo.metric_learning.TripletLoss``) needs.
- ``PairGenerator`` / ``TripletGenerator``: explicit pairs (``y = 0`` similar, the
  convention) or triplets for ``build_siamese`` / ``build_triplet``, random or with hard mining
  from the current model's distances, refreshed each epoch by ``HardMiningCallback``.

Example:
    >>> train, test = load_classification_data()            # Fashion-MNIST, else digits
    >>> seen, unseen = split_classes(train, holdout=[5, 6, 7, 8, 9])
    >>> ds = pk_batches(seen.images, seen.labels, p=8, k=4, augment=make_augmentation())
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import numpy as np

from zoo.data.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ClassificationData",
    "HardMiningCallback",
    "PairGenerator",
    "TripletGenerator",
    "load_classification_data",
    "load_digits_data",
    "load_fashion_mnist_data",
    "load_shapes_data",
    "make_augmentation",
    "pk_batches",
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


def _class_folders(root):
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    return folders


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
        DataError: missing or empty folder, an image that cannot be decoded, mixed sizes without
            ``image_size``; the message names the file.
    """
    from PIL import Image, UnidentifiedImageError

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
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(
                f"class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})", file=str(folder)
            )
        for file in files:
            try:
                with Image.open(file) as image:
                    image.load()
                    modes.append(image.mode)
                    images.append(image.copy())
            except (UnidentifiedImageError, OSError) as error:
                raise DataError(f"cannot decode image ({error})", file=str(file)) from None
            labels.append(index[folder.name])
    if channels is None:
        channels = 1 if all(m in ("L", "1", "I", "I;16") for m in modes) else 3
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
            f"images have different sizes {sorted(shapes)[:4]}; pass image_size=(H, W)",
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


# === P×K batches ===


def pk_batches(images, labels, p, k, seed=0, augment=None, classes=None):
    """Infinite class-balanced batches: ``p`` distinct classes × ``k`` examples each.

    Each class streams its examples in a reshuffled order (without replacement until it has used
    them all); each batch draws ``p`` classes uniformly without replacement. Classes with fewer
    than ``k`` examples repeat examples within a batch.

    Args:
        images: ``(N, H, W, C)`` array (uint8 or float).
        labels: ``(N,)`` integer labels.
        p: classes per batch (<= number of classes present).
        k: examples per class (>= 2, or there are no positives).
        seed: sampling seed (deterministic).
        augment: optional ``fn(float32 images batch) -> images`` (see ``make_augmentation``).
        classes: the classes to sample from (default: every label present).

    Returns:
        ``tf.data.Dataset`` of ``(float32 images (p*k, H, W, C), int32 labels (p*k,))``.

    Example:
        >>> ds = pk_batches(train.images, train.labels, p=16, k=4)
        >>> model.fit(ds, steps_per_epoch=200)
    """
    import tensorflow as tf

    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    present = np.unique(labels) if classes is None else np.asarray(sorted(set(classes)))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (K examples per class). Received: k={k!r}")
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= len(present):
        raise ValueError(
            f"p must be an integer in [1, {len(present)}] (number of classes present). "
            f"Received: p={p!r}"
        )
    per_class = []
    for i, c in enumerate(present):
        idx = np.flatnonzero(labels == c).astype(np.int64)
        if len(idx) == 0:
            raise ValueError(f"class {int(c)} has no examples")
        per_class.append(
            tf.data.Dataset.from_tensor_slices(idx)
            .shuffle(len(idx), seed=seed * 7919 + i, reshuffle_each_iteration=True)
            .repeat()
        )
    num_classes = len(present)

    def choose(seeds):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_classes, dtype=tf.int64), seed=seeds
        )
        return tf.repeat(order[:p], k)

    selector = tf.data.Dataset.random(seed=seed).batch(2).map(choose).unbatch()
    indices = tf.data.Dataset.choose_from_datasets(per_class, selector).batch(p * k)
    images_t = tf.constant(np.asarray(images))
    labels_t = tf.constant(labels)

    def gather(idx):
        x = tf.cast(tf.gather(images_t, idx), tf.float32)
        if augment is not None:
            x = augment(x)
        return x, tf.gather(labels_t, idx)

    return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


# === Explicit pairs and triplets ===


def _embed(encoder, images, batch_size=512):
    return np.asarray(encoder.predict(images.astype(np.float32), batch_size=batch_size, verbose=0))


def _squared_distances(a):
    sq = np.sum(a * a, axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * a @ a.T, 0.0)


class _Generator:
    """Shared machinery of ``PairGenerator`` and ``TripletGenerator``."""

    _names: tuple = ()

    def __init__(self, images, labels, batch_size=32, hard_fraction=0.0, pool_size=2000, seed=0):
        self.images = np.asarray(images)
        if self.images.ndim == 3:
            self.images = self.images[..., None]
        self.labels = np.asarray(labels).astype(np.int32).reshape(-1)
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"images and labels differ in length: {len(self.images)} vs {len(self.labels)}"
            )
        if not 0.0 <= hard_fraction <= 1.0:
            raise ValueError(f"hard_fraction must be in [0, 1]. Received: {hard_fraction!r}")
        self.batch_size = int(batch_size)
        self.hard_fraction = float(hard_fraction)
        self.pool_size = int(pool_size)
        self.rng = np.random.default_rng(seed)  # batches (the tf.data thread)
        self.mining_rng = np.random.default_rng(seed + 1)  # refresh() (the training thread)
        self.classes = np.unique(self.labels)
        if len(self.classes) < 2:
            raise ValueError("pairs and triplets need at least two classes")
        self.by_class = {int(c): np.flatnonzero(self.labels == c) for c in self.classes}
        self.hard = None  # filled by refresh(): arrays of hard examples (see subclasses)
        self.refreshes = 0

    # random draws ---------------------------------------------------------------------------

    def _random_same(self, anchors):
        out = np.empty_like(anchors)
        for i, a in enumerate(anchors):
            members = self.by_class[int(self.labels[a])]
            choice = self.rng.choice(members)
            if len(members) > 1:
                while choice == a:
                    choice = self.rng.choice(members)
            out[i] = choice
        return out

    def _random_other(self, anchors):
        out = np.empty_like(anchors)
        for i, a in enumerate(anchors):
            own = self.labels[a]
            other = self.rng.choice(self.classes[self.classes != own])
            out[i] = self.rng.choice(self.by_class[int(other)])
        return out

    # hard mining ----------------------------------------------------------------------------

    def refresh(self, encoder):
        """Mine hard examples with ``encoder``'s current embeddings (on a random pool).

        For every anchor of a random pool of ``pool_size`` examples: the hardest positive
        (farthest same-class example in the pool) and the hardest negative (closest other-class
        one). The next batches take ``hard_fraction`` of their pairs / triplets from these.

        Returns:
            The number of anchors mined.
        """
        pool = self.mining_rng.choice(
            len(self.labels), min(self.pool_size, len(self.labels)), False
        )
        emb = _embed(encoder, self.images[pool])
        d = _squared_distances(emb)
        lab = self.labels[pool]
        same = lab[:, None] == lab[None, :]
        np.fill_diagonal(same, False)
        different = lab[:, None] != lab[None, :]
        has_pos = same.any(axis=1)
        has_neg = different.any(axis=1)
        keep = has_pos & has_neg
        hardest_pos = np.argmax(np.where(same, d, -np.inf), axis=1)
        hardest_neg = np.argmin(np.where(different, d, np.inf), axis=1)
        self.hard = (pool[keep], pool[hardest_pos[keep]], pool[hardest_neg[keep]])
        self.refreshes += 1
        return int(keep.sum())

    def _hard_count(self):
        if self.hard is None or self.hard_fraction == 0.0 or len(self.hard[0]) == 0:
            return 0
        return int(round(self.batch_size * self.hard_fraction))

    # tf.data --------------------------------------------------------------------------------

    def next_indices(self):
        """Index arrays of the next batch (one per input, plus the targets)."""
        raise NotImplementedError

    def __iter__(self):
        while True:
            yield self.next_batch()

    def next_batch(self):
        """``(inputs dict of uint8 image batches, targets)`` for the next batch."""
        *groups, targets = self.next_indices()
        inputs = {name: self.images[idx] for name, idx in zip(self._names, groups, strict=True)}
        return inputs, targets

    def dataset(self, augment=None, target_key=None):
        """An infinite ``tf.data.Dataset`` of ``(inputs dict, targets)`` batches (float32 images).

        Args:
            augment: optional ``fn(float32 images batch) -> images`` applied to every input.
            target_key: wrap the targets as ``{target_key: targets}`` (for dict-output models,
                e.g. ``"distance"`` for ``build_siamese``).
        """
        import tensorflow as tf

        shape = self.images.shape[1:]
        spec_images = tf.TensorSpec((None, *shape), tf.as_dtype(self.images.dtype))
        signature = (
            {name: spec_images for name in self._names},
            tf.TensorSpec((None,), tf.float32),
        )
        ds = tf.data.Dataset.from_generator(self.__iter__, output_signature=signature)

        def prepare(inputs, targets):
            out = {}
            for name, value in inputs.items():
                value = tf.cast(value, tf.float32)
                out[name] = augment(value) if augment is not None else value
            return out, ({target_key: targets} if target_key else targets)

        return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


class PairGenerator(_Generator):
    """Balanced pairs for a Siamese model. LABELS: ``y = 0`` SIMILAR, ``y = 1`` dissimilar.

    Args:
        images, labels: the training set.
        batch_size: pairs per batch.
        positive_fraction: fraction of similar pairs per batch (0.5 = balanced).
        hard_fraction: fraction of each batch drawn from the mined hard pairs (0 = random only;
            needs ``refresh(encoder)``, done each epoch by ``HardMiningCallback``). Hard pairs
            are (anchor, hardest positive) and (anchor, hardest negative) in equal numbers.
        pool_size: examples embedded at each refresh.
        seed: sampling seed.

    Example:
        >>> gen = PairGenerator(x, y, batch_size=64, hard_fraction=0.5)
        >>> siamese.fit(gen.dataset(target_key="distance"), steps_per_epoch=100,
        ...             callbacks=[HardMiningCallback(gen, encoder)])
    """

    _names = ("input_a", "input_b")

    def __init__(
        self,
        images,
        labels,
        batch_size=32,
        positive_fraction=0.5,
        hard_fraction=0.0,
        pool_size=2000,
        seed=0,
    ):
        super().__init__(images, labels, batch_size, hard_fraction, pool_size, seed)
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(
                f"positive_fraction must be in [0, 1]. Received: {positive_fraction!r}"
            )
        self.positive_fraction = float(positive_fraction)

    def next_indices(self):
        n = self.batch_size
        n_hard = self._hard_count()
        n_pos = int(round(n * self.positive_fraction))
        hard_pos = min(n_hard // 2, n_pos)
        hard_neg = min(n_hard - hard_pos, n - n_pos)
        rand_pos, rand_neg = n_pos - hard_pos, n - n_pos - hard_neg
        a_parts, b_parts, y_parts = [], [], []
        if hard_pos + hard_neg:
            anchors, positives, negatives = self.hard
            pick = self.rng.integers(0, len(anchors), hard_pos)
            a_parts += [anchors[pick]]
            b_parts += [positives[pick]]
            pick = self.rng.integers(0, len(anchors), hard_neg)
            a_parts += [anchors[pick]]
            b_parts += [negatives[pick]]
            y_parts += [np.zeros(hard_pos), np.ones(hard_neg)]
        anchors = self.rng.integers(0, len(self.labels), rand_pos + rand_neg)
        a_parts += [anchors]
        b_parts += [
            np.concatenate(
                [self._random_same(anchors[:rand_pos]), self._random_other(anchors[rand_pos:])]
            )
        ]
        y_parts += [np.zeros(rand_pos), np.ones(rand_neg)]
        a, b = np.concatenate(a_parts), np.concatenate(b_parts)
        y = np.concatenate(y_parts).astype(np.float32)
        order = self.rng.permutation(n)
        return a[order], b[order], y[order]


class TripletGenerator(_Generator):
    """(anchor, positive, negative) triplets for ``build_triplet``; targets are zeros.

    Args:
        images, labels, batch_size, pool_size, seed: as ``PairGenerator``.
        hard_fraction: fraction of each batch made of mined (anchor, hardest positive, hardest
            negative) triplets (needs ``refresh``; see ``HardMiningCallback``).
    """

    _names = ("anchor", "positive", "negative")

    def next_indices(self):
        n = self.batch_size
        n_hard = self._hard_count()
        parts = [[], [], []]
        if n_hard:
            pick = self.rng.integers(0, len(self.hard[0]), n_hard)
            for part, source in zip(parts, self.hard, strict=True):
                part.append(source[pick])
        anchors = self.rng.integers(0, len(self.labels), n - n_hard)
        parts[0].append(anchors)
        parts[1].append(self._random_same(anchors))
        parts[2].append(self._random_other(anchors))
        a, p, q = (np.concatenate(part) for part in parts)
        return a, p, q, np.zeros(n, np.float32)


class HardMiningCallback(keras.callbacks.Callback):
    """Refresh a generator's hard examples from the encoder at the start of every ``every``-th
    epoch (FaceNet's offline strategy: mine with the current model, train, repeat).

    Args:
        generator: a ``PairGenerator`` or ``TripletGenerator`` with ``hard_fraction > 0``.
        encoder: the tower whose embeddings define "hard" (the model being trained shares it).
        every: refresh period in epochs.
        first_epoch: first epoch that mines (earlier ones train on random pairs only; an untrained
            network's "hard" examples are noise).
    """

    def __init__(self, generator, encoder, every=1, first_epoch=1):
        super().__init__()
        self.generator = generator
        self.encoder = encoder
        self.every = int(every)
        self.first_epoch = int(first_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.first_epoch and (epoch - self.first_epoch) % self.every == 0:
            self.generator.refresh(self.encoder)
