"""Landmark-aware augmentation in tf ops (safe inside ``tf.data.Dataset.map``).

One random draw (``LandmarkAugmentation.get_random_transformation``) decides flip, rotation,
scale, translation and colour jitter; ``apply`` moves the image and its points with that same
draw. The geometry is one affine map about the image centre, on continuous coordinates (pixel
column i spans [i, i + 1])::

    p' = s R(theta) (F(p) - c) + c + t,   F(x, y) = (W - x, y) when flipped, else (x, y)

applied to the image with ``ImageProjectiveTransformV3`` (its inverse, bilinear, constant fill)
and to the points in closed form. A flip also renames the points: the left eye becomes the right
eye. The permutation that does this is data (``flip_permutation``: ``perm[i]`` is the index point
``i`` takes), passed in by the caller, e.g. ``zoo.landmarks.data.CELEB_A_FLIP``. Points that leave
the image get visibility 0 (their coordinates are kept, never clipped). Draws are stateless: the
same seed gives the same output, in any order and with any parallelism.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from zoo.data.augment import apply_color_jitter, draw_color_jitter
from zoo.landmarks.element import check_flip_permutation, inside_image

FILL_VALUE = 114


@dataclasses.dataclass(frozen=True)
class LandmarkAugmentation:
    """Random flip (with left/right renaming), rotation, scale, translation and colour jitter.

    Args:
        flip_permutation: index each landmark takes after a horizontal flip (required when
            ``flip_probability > 0``).
        flip_probability: chance of a horizontal flip.
        rotation: largest rotation in degrees (drawn in ``[-rotation, rotation]``).
        scale_range: zoom factor range about the image centre.
        translate: largest shift as a fraction of the image size (each axis).
        brightness: largest brightness delta (fraction of 255).
        contrast: contrast factor in ``[1 - contrast, 1 + contrast]``.
        saturation: saturation factor in ``[1 - saturation, 1 + saturation]``.
        hue: largest hue shift (fraction of the colour wheel, at most 0.5).
        fill_value: grey level of uncovered pixels.

    Example:
    ```python
    augment = LandmarkAugmentation(flip_permutation=CELEB_A_FLIP, rotation=20)
    out = augment(element, seed=tf.constant([1, 2]))
    dataset = augment_landmarks(dataset, augment, seed=0)   # one draw per element
    ```
    """

    flip_permutation: tuple | None = None
    flip_probability: float = 0.5
    rotation: float = 15.0
    scale_range: tuple = (0.9, 1.1)
    translate: float = 0.08
    brightness: float = 0.15
    contrast: float = 0.2
    saturation: float = 0.3
    hue: float = 0.02
    fill_value: int = FILL_VALUE

    def __post_init__(self):
        if not 0 <= self.flip_probability <= 1:
            raise ValueError(
                f"flip_probability must be in [0, 1]. Received: {self.flip_probability}"
            )
        if self.flip_probability > 0 and self.flip_permutation is None:
            raise ValueError(
                "flip_probability > 0 needs flip_permutation (which point becomes which after a "
                "mirror, e.g. CELEB_A_FLIP); pass flip_probability=0 to never flip."
            )
        if self.flip_permutation is not None:
            perm = check_flip_permutation(self.flip_permutation, len(self.flip_permutation))
            object.__setattr__(self, "flip_permutation", perm)
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(
                f"scale_range must satisfy 0 < low <= high. Received: scale_range={self.scale_range}"
            )
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5]. Received: hue={self.hue}")
        for name in ("rotation", "translate", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={getattr(self, name)}")

    def get_random_transformation(self, seed):
        """One draw of every random parameter from a stateless ``seed`` (shape (2,) ints)."""
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
        uniform = tf.random.stateless_uniform
        low, high = self.scale_range
        angle = math.radians(self.rotation)
        return {
            "flip": uniform((), seeds[0]) < self.flip_probability,
            "angle": uniform((), seeds[1], -angle, angle),
            "scale": tf.exp(
                uniform((), seeds[2], tf.math.log(float(low)), tf.math.log(float(high)))
            ),
            "translate": uniform((2,), seeds[3], -self.translate, self.translate),
            **draw_color_jitter(
                seeds[4:8], self.brightness, self.contrast, self.saturation, self.hue
            ),
        }

    def apply(self, element, transformation):
        """Applies one drawn ``transformation`` to the image and its points."""
        image = element["images"]
        shape = tf.shape(image)
        height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        flip = transformation["flip"]
        linear, offset = affine_matrix(
            height,
            width,
            flip=flip,
            angle=transformation["angle"],
            scale=transformation["scale"],
            shift=transformation["translate"] * tf.stack([width, height]),
        )
        image = warp_image(image, linear, offset, self.fill_value)
        image = self._jitter(image, transformation)

        landmarks = element["landmarks"]
        moved = tf.linalg.matvec(linear, landmarks) + offset
        visibility = element["visibility"]
        if self.flip_permutation is not None:
            perm = tf.constant(self.flip_permutation, tf.int32)
            moved = tf.where(flip, tf.gather(moved, perm), moved)
            visibility = tf.where(flip, tf.gather(visibility, perm), visibility)
        presence = element["presence"]
        inside = inside_image(moved, shape[0], shape[1])
        visibility = tf.where(inside, visibility, 0.0)
        return {
            **element,
            "images": image,
            "landmarks": moved * presence,
            "visibility": visibility,
        }

    def _jitter(self, image, t):
        return apply_color_jitter(image, t)

    def __call__(self, element, seed):
        """``apply(element, get_random_transformation(seed))``."""
        return self.apply(element, self.get_random_transformation(seed))


def affine_matrix(height, width, flip=False, angle=0.0, scale=1.0, shift=(0.0, 0.0)):
    """The forward map ``p' = linear @ p + offset`` of the module docstring (tf ops).

    Args:
        height, width: image size (scalars).
        flip: mirror left-right first.
        angle: rotation in radians (positive turns +x towards +y, i.e. clockwise on screen).
        scale: zoom about the centre.
        shift: ``(tx, ty)`` in pixels.

    Returns:
        ``(linear (2, 2), offset (2,))`` float32.
    """
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    angle = tf.cast(angle, tf.float32)
    scale = tf.cast(scale, tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotate = scale * tf.reshape(tf.stack([cos, -sin, sin, cos]), (2, 2))
    sign = tf.where(flip, -1.0, 1.0)
    mirror = tf.reshape(tf.stack([sign, 0.0, 0.0, 1.0]), (2, 2))
    mirror_offset = tf.stack([tf.where(flip, width, 0.0), 0.0])
    centre = tf.stack([width / 2, height / 2])
    linear = tf.matmul(rotate, mirror)
    offset = tf.linalg.matvec(rotate, mirror_offset - centre) + centre
    offset += tf.cast(shift, tf.float32)
    return linear, offset


def warp_image(image, linear, offset, fill_value=FILL_VALUE):
    """Moves a uint8 ``(H, W, C)`` image by the forward map ``p' = linear @ p + offset``."""
    inverse = tf.linalg.inv(linear)
    half = tf.constant([0.5, 0.5])
    # Pixel indices: index_in = inverse @ (index_out + 0.5 - offset) - 0.5.
    bias = tf.linalg.matvec(inverse, half - offset) - half
    transform = tf.stack(
        [inverse[0, 0], inverse[0, 1], bias[0], inverse[1, 0], inverse[1, 1], bias[1], 0.0, 0.0]
    )
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=float(fill_value),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    return moved


def augment_landmarks(dataset, augmentation, seed=0, num_parallel_calls=tf.data.AUTOTUNE):
    """Augments every element of an unbatched landmark dataset with its own stateless draw.

    Args:
        dataset: unbatched dataset in the landmark layout.
        augmentation: a ``LandmarkAugmentation``.
        seed: integer seed (element seeds are reproducible and differ every epoch).
        num_parallel_calls: passed to ``map`` (order kept).

    Returns:
        The augmented dataset.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        augmentation, num_parallel_calls=num_parallel_calls, deterministic=True
    )
