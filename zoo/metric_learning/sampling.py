"""P×K batches and pair / triplet streams for metric learning, with offline hard mining.

- ``pk_batches``: class-balanced P×K batches (P classes × K examples each), infinite, in tf.data;
  what online triplet mining (``TripletLoss``) needs.
- ``PairGenerator`` / ``TripletGenerator``: explicit pairs (``y = 0`` similar, the
  convention) or triplets for ``build_siamese`` / ``build_triplet``, random or with hard mining
  from the current model's distances, refreshed each epoch by ``HardMiningCallback``.

The labelled images themselves (``ClassificationData``, the readers, class splits and
``make_augmentation``) come from ``zoo.data.classification``.

Example:
    >>> from zoo.data.classification import load_classification_data, make_augmentation
    >>> train, test = load_classification_data()            # Fashion-MNIST, else digits
    >>> ds = pk_batches(train.images, train.labels, p=8, k=4, augment=make_augmentation())
"""

from __future__ import annotations

import keras
import numpy as np

from zoo.ops.distances import pairwise_squared_l2

__all__ = [
    "OFFLINE_MINING",
    "HardMiningCallback",
    "PairGenerator",
    "TripletGenerator",
    "pk_batches",
]


OFFLINE_MINING = ("hard", "semi-hard")
"""``refresh``'s choices: hardest positive and negative, or a random positive and a semi-hard
negative."""

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
        augment: optional ``fn(float32 images batch) -> images`` (see
            ``zoo.data.classification.make_augmentation``).
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


class _Generator:
    """Shared machinery of ``PairGenerator`` and ``TripletGenerator``."""

    _names: tuple = ()

    def __init__(
        self,
        images,
        labels,
        batch_size=32,
        hard_fraction=0.0,
        pool_size=2000,
        seed=0,
        mining="hard",
    ):
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
        if mining not in OFFLINE_MINING:
            raise ValueError(f"mining must be one of {OFFLINE_MINING}. Received: {mining!r}")
        self.mining = mining
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

        For every anchor of a random pool of ``pool_size`` examples, with ``mining="hard"``: the
        hardest positive (farthest same-class example in the pool) and the hardest negative
        (closest other-class one); with ``mining="semi-hard"``: a random positive and the
        closest negative farther from the anchor than that positive (FaceNet's semi-hard; the
        closest negative when none is farther). The next batches take ``hard_fraction`` of
        their pairs / triplets from these.

        Returns:
            The number of anchors mined.
        """
        pool = self.mining_rng.choice(
            len(self.labels), min(self.pool_size, len(self.labels)), False
        )
        emb = _embed(encoder, self.images[pool])
        d = np.asarray(pairwise_squared_l2(emb))
        lab = self.labels[pool]
        same = lab[:, None] == lab[None, :]
        np.fill_diagonal(same, False)
        different = lab[:, None] != lab[None, :]
        has_pos = same.any(axis=1)
        has_neg = different.any(axis=1)
        keep = has_pos & has_neg
        if self.mining == "hard":
            positive = np.argmax(np.where(same, d, -np.inf), axis=1)
            negative = np.argmin(np.where(different, d, np.inf), axis=1)
        else:
            scores = np.where(same, self.mining_rng.random(d.shape), -1.0)
            positive = np.argmax(scores, axis=1)  # a random same-class example
            d_ap = d[np.arange(len(pool)), positive][:, None]
            farther = different & (d > d_ap)
            semi_hard = np.argmin(np.where(farther, d, np.inf), axis=1)
            closest = np.argmin(np.where(different, d, np.inf), axis=1)
            negative = np.where(farther.any(axis=1), semi_hard, closest)
        self.hard = (pool[keep], pool[positive[keep]], pool[negative[keep]])
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
        mining: ``"hard"`` (hardest positive and negative) or ``"semi-hard"`` (see ``refresh``).

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
        mining="hard",
    ):
        super().__init__(images, labels, batch_size, hard_fraction, pool_size, seed, mining)
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
