"""The landmark data element and its container, shared by every reader, the synthetic faces and
the augmentation (the layout is described in ``zoo.landmarks.data``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from zoo.data.errors import DataReport

AUTOTUNE = tf.data.AUTOTUNE


def element_spec(num_landmarks=None, height=None, width=None):
    """The ``tf.data`` element spec of the landmark layout (unbatched)."""
    return {
        "images": tf.TensorSpec((height, width, 3), tf.uint8),
        "presence": tf.TensorSpec((), tf.float32),
        "landmarks": tf.TensorSpec((num_landmarks, 2), tf.float32),
        "visibility": tf.TensorSpec((num_landmarks,), tf.float32),
    }


def inside_image(landmarks, height, width):
    """``(K,)`` bool: the point lies in ``[0, width] x [0, height]`` (tf ops)."""
    width = tf.cast(width, landmarks.dtype)
    height = tf.cast(height, landmarks.dtype)
    x, y = landmarks[..., 0], landmarks[..., 1]
    return (x >= 0) & (x <= width) & (y >= 0) & (y <= height)


def make_landmark_element(image, presence, landmarks, visibility=None):
    """Packs one example into the landmark layout; points outside the image become invisible.

    Args:
        image: uint8 ``(H, W, 3)``.
        presence: scalar, 1 or 0.
        landmarks: ``(K, 2)`` pixels.
        visibility: ``(K,)`` weights (default: ones where ``presence`` is 1).

    Returns:
        The element dict (tf tensors).
    """
    landmarks = tf.reshape(tf.cast(landmarks, tf.float32), (-1, 2))
    presence = tf.reshape(tf.cast(presence, tf.float32), ())
    if visibility is None:
        visibility = tf.ones(tf.shape(landmarks)[:1], tf.float32)
    visibility = tf.reshape(tf.cast(visibility, tf.float32), (-1,)) * presence
    shape = tf.shape(image)
    inside = inside_image(landmarks, shape[0], shape[1])
    visibility = tf.where(inside, visibility, 0.0)
    return {
        "images": image,
        "presence": presence,
        "landmarks": landmarks * presence,
        "visibility": visibility,
    }


def check_flip_permutation(permutation, num_landmarks, source="flip_permutation"):
    """Checks that ``permutation`` maps each landmark to its mirror image (an involution).

    Args:
        permutation: sequence of ``K`` ints, ``permutation[i]`` = index of the point that ``i``
            becomes after a horizontal flip (``(1, 0, 2, 4, 3)`` for CelebA's 5 points).
        num_landmarks: ``K``.
        source: name used in errors.

    Returns:
        The permutation as a tuple of ints.
    """
    perm = tuple(int(i) for i in permutation)
    if len(perm) != num_landmarks or sorted(perm) != list(range(num_landmarks)):
        raise ValueError(
            f"{source} must be a permutation of 0..{num_landmarks - 1}. Received: {permutation!r}"
        )
    if any(perm[perm[i]] != i for i in range(num_landmarks)):
        raise ValueError(
            f"{source} must swap left/right pairs (perm[perm[i]] == i). Received: {permutation!r}"
        )
    return perm


@dataclasses.dataclass
class LandmarkData:
    """A landmark set from any source, in the landmark layout (module docstring).

    Attributes:
        records: unbatched ``tf.data.Dataset`` of undecoded records.
        decode_fn: ``record -> element`` (tf function, safe in ``map``).
        landmark_names: names of the ``K`` points.
        flip_permutation: index each point takes after a horizontal flip (``None``: unknown,
            flipping disabled).
        eye_indices: the two eyes for inter-ocular normalization: two indices, or two groups of
            indices whose means are the pupils (``None``: no eyes, use the box diagonal).
        num_examples: number of images (``None`` if unknown).
        report: what the reader skipped.
        source: where the data came from.
        files: image paths in dataset order, where there are files.
    """

    records: tf.data.Dataset
    decode_fn: Callable
    landmark_names: tuple
    flip_permutation: tuple | None
    eye_indices: tuple | None
    num_examples: int | None
    report: DataReport
    source: str
    files: list | None = None

    @property
    def num_landmarks(self):
        return len(self.landmark_names)

    @property
    def dataset(self):
        """Unbatched decoded elements."""
        return self.as_dataset()

    def as_dataset(self, shuffle=False, seed=None):
        """Decoded elements; ``shuffle`` shuffles the (cheap) records before decoding."""
        records = self.records
        if shuffle:
            size = min(self.num_examples or 10_000, 100_000)
            records = records.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)
        return records.map(self.decode_fn, num_parallel_calls=AUTOTUNE, deterministic=True)
