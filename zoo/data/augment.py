"""Box-aware augmentation and resizing in tf ops (safe inside ``tf.data.Dataset.map``).

One random draw (``Augmentation.get_random_transformation``) decides flip, scale, translation
and colour jitter; ``Augmentation.apply`` moves the image and its boxes with that same draw, so
they cannot disagree. Draws are stateless: the same seed gives the same output, in any order and
with any parallelism.

Why not Keras preprocessing layers (Keras 3.15) here: inside ``tf.data.map`` on an unbatched
element with a variable number of boxes, ``RandomZoom`` fails (int32/float32 ``Mul`` on the
boxes) and ``RandomCrop`` fails (Python ``bool`` of a tensor in graph mode); ``RandomFlip`` and
``RandomTranslation`` work but return float32 images and float32 labels and draw from a stateful
seed generator (not reproducible per element under parallel map). The geometry below is one
affine map (flip, scale about the centre, translate) applied to the image with
``ImageProjectiveTransformV3`` and to the boxes in closed form; boxes are clipped with
``keras.utils.bounding_boxes.clip_to_image_size``.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf
from keras.utils import bounding_boxes

from zoo.data.detection import make_element

FILL_VALUE = 114  # grey used for padding (letterbox, shrink, translate)


def draw_color_jitter(seeds, brightness, contrast, saturation, hue):
    """One stateless draw of the colour-jitter parameters from four seeds (shape (4, 2))."""
    uniform = tf.random.stateless_uniform
    return {
        "brightness": uniform((), seeds[0], -brightness, brightness),
        "contrast": uniform((), seeds[1], 1 - contrast, 1 + contrast),
        "saturation": uniform((), seeds[2], 1 - saturation, 1 + saturation),
        "hue": uniform((), seeds[3], -hue, hue),
    }


def apply_color_jitter(image, t):
    """Brightness, contrast, saturation and hue of a uint8 RGB image, by a drawn ``t``."""
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.adjust_brightness(image, t["brightness"])
    image = tf.image.adjust_contrast(image, t["contrast"])
    image = tf.image.adjust_saturation(image, t["saturation"])
    image = tf.image.adjust_hue(image, t["hue"])
    return tf.image.convert_image_dtype(tf.clip_by_value(image, 0.0, 1.0), tf.uint8, saturate=True)


def _boxes_labels(element):
    return element["bounding_boxes"]["boxes"], element["bounding_boxes"]["labels"]


def horizontal_flip(element):
    """Mirrors the image left-right and maps each box ``x1, x2 -> W - x2, W - x1``."""
    image = element["images"]
    boxes, labels = _boxes_labels(element)
    width = tf.cast(tf.shape(image)[1], boxes.dtype)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    flipped = tf.stack([width - x2, y1, width - x1, y2], axis=-1)
    return make_element(tf.reverse(image, axis=[1]), flipped, labels)


def filter_boxes(boxes, labels, original_areas, height, width, min_size, min_visibility):
    """Clips moved ``xyxy`` boxes to the image; drops those thinner than ``min_size`` pixels or
    keeping less than ``min_visibility`` of ``original_areas``, with their labels."""
    clipped = bounding_boxes.clip_to_image_size(
        {"boxes": boxes, "labels": labels}, height=height, width=width, bounding_box_format="xyxy"
    )
    boxes = clipped["boxes"]
    box_w, box_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (box_w >= min_size) & (box_h >= min_size)
    keep &= box_w * box_h >= min_visibility * original_areas
    return tf.boolean_mask(boxes, keep), tf.boolean_mask(labels, keep)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random flip, scale, translation (a zoom in = a random crop) and colour jitter.

    Args:
        flip_probability: Chance of a horizontal flip.
        scale_range: Zoom factor range (``< 1`` shrinks and pads with grey, ``> 1`` crops).
        translate: Largest shift as a fraction of the image size (each axis).
        brightness: Largest brightness delta (fraction of 255).
        contrast: Contrast factor drawn in ``[1 - contrast, 1 + contrast]``.
        saturation: Saturation factor drawn in ``[1 - saturation, 1 + saturation]``.
        hue: Largest hue shift (fraction of the colour wheel, at most 0.5).
        min_box_size: Boxes narrower or lower than this (pixels, after clipping) are dropped.
        min_visibility: Boxes keeping less than this fraction of their area (after clipping) are
            dropped, with their labels.
        fill_value: Grey level of uncovered pixels.

    Example:
    ```python
    augment = Augmentation(scale_range=(0.75, 1.25))
    out = augment(element, seed=tf.constant([1, 2]))
    # or for a whole dataset, one independent draw per element:
    dataset = augment_dataset(dataset, augment, seed=0)
    ```
    """

    flip_probability: float = 0.5
    scale_range: tuple = (0.75, 1.25)
    translate: float = 0.1
    brightness: float = 0.15
    contrast: float = 0.2
    saturation: float = 0.3
    hue: float = 0.02
    min_box_size: float = 2.0
    min_visibility: float = 0.25
    fill_value: int = FILL_VALUE

    def __post_init__(self):
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(
                f"scale_range must satisfy 0 < low <= high. Received: scale_range={self.scale_range}"
            )
        if not 0 <= self.flip_probability <= 1:
            raise ValueError(
                f"flip_probability must be in [0, 1]. Received: {self.flip_probability}"
            )
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5]. Received: hue={self.hue}")
        for name in ("translate", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={getattr(self, name)}")

    def get_random_transformation(self, seed):
        """One draw of every random parameter from a stateless ``seed`` (shape (2,) ints)."""
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
        uniform = tf.random.stateless_uniform
        low, high = self.scale_range
        return {
            "flip": uniform((), seeds[0]) < self.flip_probability,
            "scale": tf.exp(
                uniform((), seeds[1], tf.math.log(float(low)), tf.math.log(float(high)))
            ),
            "translate": uniform((2,), seeds[2], -self.translate, self.translate),
            **draw_color_jitter(
                seeds[3:7], self.brightness, self.contrast, self.saturation, self.hue
            ),
        }

    def apply(self, element, transformation):
        """Applies one drawn ``transformation`` to the image and its boxes (labels follow)."""
        image = element["images"]
        boxes, labels = _boxes_labels(element)
        shape = tf.shape(image)
        height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        scale = transformation["scale"]
        shift_x = transformation["translate"][0] * width
        shift_y = transformation["translate"][1] * height
        sign = tf.where(transformation["flip"], -1.0, 1.0)
        # Forward map on continuous coordinates (pixel i spans [i, i + 1]):
        #   x' = s * (g(x) - W/2) + W/2 + tx, g(x) = W - x when flipped;   y' likewise, no flip.
        offset_x = (
            width / 2
            + shift_x
            - scale * width / 2
            + tf.where(transformation["flip"], scale * width, 0.0)
        )
        offset_y = height / 2 + shift_y - scale * height / 2
        a_x, a_y = sign * scale, scale
        # Inverse on pixel indices for the image transform: x_in = (x_out + .5 - b) / a - .5.
        inverse = tf.stack([
            1 / a_x, 0.0, (0.5 - offset_x) / a_x - 0.5,
            0.0, 1 / a_y, (0.5 - offset_y) / a_y - 0.5,
            0.0, 0.0,
        ])  # fmt: skip
        moved = tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None],
            transforms=inverse[None],
            output_shape=shape[:2],
            fill_value=float(self.fill_value),
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )[0]
        image = self._jitter(moved, transformation)

        x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
        new_x1 = tf.where(transformation["flip"], a_x * x2, a_x * x1) + offset_x
        new_x2 = tf.where(transformation["flip"], a_x * x1, a_x * x2) + offset_x
        moved_boxes = tf.stack([new_x1, a_y * y1 + offset_y, new_x2, a_y * y2 + offset_y], -1)
        areas = (x2 - x1) * (y2 - y1) * scale * scale
        boxes, labels = filter_boxes(
            moved_boxes, labels, areas, height, width, self.min_box_size, self.min_visibility
        )
        return make_element(image, boxes, labels)

    def _jitter(self, image, t):
        return apply_color_jitter(image, t)

    def __call__(self, element, seed):
        """``apply(element, get_random_transformation(seed))``."""
        return self.apply(element, self.get_random_transformation(seed))


def augment_dataset(dataset, augmentation=None, seed=0, num_parallel_calls=tf.data.AUTOTUNE):
    """Augments every element of an unbatched dataset with its own stateless draw.

    Element seeds come from ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``:
    reproducible for a given ``seed`` and dataset order, and different in every epoch.

    Args:
        dataset: Unbatched dataset in the common layout.
        augmentation: An ``Augmentation`` (default settings when ``None``).
        seed: Integer seed.
        num_parallel_calls: Passed to ``map`` (output order is kept).

    Returns:
        The augmented dataset.
    """
    augmentation = augmentation or Augmentation()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        augmentation, num_parallel_calls=num_parallel_calls, deterministic=True
    )


def resize(element, size, letterbox=False, fill_value=FILL_VALUE):
    """Resizes the image to ``size`` and scales the boxes with it.

    Args:
        element: One element in the common layout.
        size: ``(height, width)``.
        letterbox: Keep the aspect ratio: scale to fit, centre, pad with ``fill_value``.
        fill_value: Grey level of the letterbox padding.

    Returns:
        The element with a uint8 ``(height, width, 3)`` image (static shape) and boxes in its
        pixels.

    Example:
    ```python
    dataset = data.dataset.map(lambda e: resize(e, (320, 320), letterbox=True))
    ```
    """
    out_h, out_w = int(size[0]), int(size[1])
    image = element["images"]
    boxes, labels = _boxes_labels(element)
    shape = tf.shape(image)
    in_h, in_w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    if letterbox:
        scale = tf.minimum(out_h / in_h, out_w / in_w)
        new_h = tf.clip_by_value(tf.cast(tf.round(in_h * scale), tf.int32), 1, out_h)
        new_w = tf.clip_by_value(tf.cast(tf.round(in_w * scale), tf.int32), 1, out_w)
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
        resized = tf.image.resize(image, tf.stack([new_h, new_w]))
        resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        resized = tf.pad(
            resized,
            [[top, out_h - new_h - top], [left, out_w - new_w - left], [0, 0]],
            constant_values=fill_value,
        )
        scale_x = tf.cast(new_w, tf.float32) / in_w
        scale_y = tf.cast(new_h, tf.float32) / in_h
        shift = tf.cast(tf.stack([left, top, left, top]), tf.float32)
    else:
        resized = tf.image.resize(image, (out_h, out_w))
        resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        scale_x, scale_y = out_w / in_w, out_h / in_h
        shift = tf.zeros((4,), tf.float32)
    resized = tf.ensure_shape(resized, (out_h, out_w, 3))
    boxes = boxes * tf.stack([scale_x, scale_y, scale_x, scale_y]) + shift
    return make_element(resized, boxes, labels)
