"""An embedded detection set of coloured shapes on textured backgrounds.

Every image is a pure function of ``(seed, index)``: rendering uses
``numpy.random.default_rng([seed, index])``, so the same seed gives the same images and boxes in
any order, with any parallelism. Images are drawn on demand inside ``tf.data`` (nothing is held in
memory). Boxes are tight: computed from the drawn pixel mask of each shape (pixel-edge "xyxy").
Shapes may overlap, but a new shape never hides more than ``max_occlusion`` of an earlier one.
"""

from __future__ import annotations

import functools

import numpy as np

from zoo.data.detection import rendered_data

SHAPES = ("circle", "rectangle", "triangle", "ellipse", "star", "cross")
DEFAULT_CLASSES = SHAPES[:5]


def _polygon_mask(u, v, vertices):
    """Even-odd point-in-polygon test for pixel centres (u, v) against (K, 2) vertices."""
    inside = np.zeros(u.shape, bool)
    x0, y0 = vertices[-1]
    for x1, y1 in vertices:
        crosses = (y1 > v) != (y0 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
        x0, y0 = x1, y1
    return inside


def _shape_mask(kind, u, v, size, rng):
    """Mask of one shape of extent ``size`` (pixels) centred at 0 in local coordinates."""
    r = size / 2
    if kind == "circle":
        return u * u + v * v <= r * r
    if kind == "rectangle":  # squares included (aspect 1)
        aspect = rng.uniform(0.5, 2.0)
        half_w, half_h = r * min(1.0, aspect), r * min(1.0, 1 / aspect)
        return (np.abs(u) <= half_w) & (np.abs(v) <= half_h)
    angle = rng.uniform(0, 2 * np.pi)
    cos, sin = np.cos(angle), np.sin(angle)
    ru, rv = cos * u + sin * v, -sin * u + cos * v
    if kind == "ellipse":
        b = r * rng.uniform(0.35, 0.65)
        return (ru / r) ** 2 + (rv / b) ** 2 <= 1.0
    if kind == "cross":
        t = r * rng.uniform(0.22, 0.35)
        return ((np.abs(ru) <= t) & (np.abs(rv) <= r)) | ((np.abs(ru) <= r) & (np.abs(rv) <= t))
    if kind == "triangle":
        angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
    else:  # star: 5 outer and 5 inner points
        angles = np.arange(10) * np.pi / 5
    radii = np.where(np.arange(len(angles)) % 2 == 1, 0.45 * r, r) if kind == "star" else r
    vertices = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return _polygon_mask(ru, rv, vertices)


@functools.lru_cache(maxsize=16)
def _interpolation_matrix(length, cells):
    """(length, cells + 1) linear interpolation weights from a coarse grid to ``length`` pixels."""
    positions = np.linspace(0, cells, length)
    lower = np.minimum(positions.astype(int), cells - 1)
    frac = positions - lower
    weights = np.zeros((length, cells + 1), np.float32)
    weights[np.arange(length), lower] = 1 - frac
    weights[np.arange(length), lower + 1] = frac
    return weights


def _background(rng, height, width, cells=4):
    """Textured background: colour + gradient + smooth noise (+ stripes) + pixel noise.

    Colour, gradient and low-frequency noise live on a coarse (cells + 1)^2 grid that is
    bilinearly upsampled with two small matmuls (a linear gradient upsamples exactly). The work is
    done in (H, 3, W) layout and transposed once at the end.
    """
    base = (rng.uniform(40, 200) + rng.uniform(-25, 25, 3)).astype(np.float32)
    grid = rng.standard_normal((cells + 1, cells + 1, 3), dtype=np.float32) * np.float32(18.0)
    ramp = np.linspace(-1, 1, cells + 1, dtype=np.float32)
    grid += base + rng.uniform(-30, 30, 3).astype(np.float32) * ramp[None, :, None]
    grid += rng.uniform(-30, 30, 3).astype(np.float32) * ramp[:, None, None]
    rows = np.tensordot(_interpolation_matrix(height, cells), grid, axes=1)  # (H, c+1, 3)
    image = np.matmul(rows.transpose(0, 2, 1), _interpolation_matrix(width, cells).T)  # (H, 3, W)
    if rng.uniform() < 0.5:  # stripes
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
        k = np.float32(2 * np.pi / period)
        ys = np.arange(height, dtype=np.float32)[:, None, None] * np.float32(np.sin(angle)) * k
        xs = np.arange(width, dtype=np.float32)[None, None, :] * np.float32(np.cos(angle)) * k
        image += np.float32(rng.uniform(5, 20)) * np.sin(ys + xs)
    amplitude = np.float32(rng.uniform(2, 14))
    image += rng.standard_normal((height, 1, width), dtype=np.float32) * amplitude
    np.clip(image, 0, 255, out=image)
    return np.ascontiguousarray(image.transpose(0, 2, 1), dtype=np.uint8), base


def _shape_color(rng, background_mean):
    for _ in range(10):
        color = rng.integers(0, 256, 3)
        if np.abs(color - background_mean).sum() > 120:
            break
    return color.astype(np.uint8)


CLASS_CHROMA = (35.0, 50.0)  # C*ab range of "by_class" colours
CLASS_HUE_JITTER = 0.15  # radians (about 9 degrees), the std of a class colour's hue
CLASS_LIGHTNESS = (30.0, 80.0)  # L* range, independent of the class


def _class_color(rng, label, num_classes, background_mean):
    """A colour whose hue tells the class and whose lightness does not (see ``render_shapes``)."""
    from zoo.ops.color import lab_to_rgb_numpy

    background_l = 116.0 * np.cbrt(np.clip(float(np.mean(background_mean)) / 255.0, 0, 1)) - 16.0
    for _ in range(10):  # lightness apart from the background's, so the shape stays visible
        lightness = rng.uniform(*CLASS_LIGHTNESS)
        if abs(lightness - background_l) > 15.0:
            break
    hue = 2.0 * np.pi * label / num_classes + rng.normal(0.0, CLASS_HUE_JITTER)
    chroma = rng.uniform(*CLASS_CHROMA)
    lab = [lightness, chroma * np.cos(hue), chroma * np.sin(hue)]
    return np.round(lab_to_rgb_numpy(lab)).astype(np.uint8)


def render_shapes(
    index,
    seed=0,
    image_size=(128, 128),
    class_names=DEFAULT_CLASSES,
    max_objects=6,
    empty_fraction=0.1,
    size_range=(0.12, 0.5),
    max_occlusion=0.35,
    return_masks=False,
    colors="random",
):
    """Draws example ``index`` of a synthetic shapes set (NumPy; see ``synthetic_shapes``).

    Args:
        index: Example index.
        seed: Set seed; the image is a function of ``(seed, index)`` only.
        image_size: ``(height, width)``.
        class_names: Shapes to draw, each in ``SHAPES``; label ``i`` is ``class_names[i]``.
        max_objects: At most this many shapes per image (at least one unless empty).
        empty_fraction: Probability that an image has no object.
        size_range: Shape extent as a fraction of ``min(height, width)``.
        max_occlusion: Largest fraction of an earlier shape that a later one may cover.
        return_masks: Also return ``(N, H, W)`` bool masks (full shapes) and the ``(H, W)`` int
            map of the shape on top at each pixel (-1 for background).
        colors: ``"random"`` (any colour that stands out from the background) or
            ``"by_class"``: colour predictable from the shape, as in natural images, for
            colorization. Class ``i`` gets the CIE L*a*b* hue angle ``2 pi i / len(class_names)``
            (jitter ``CLASS_HUE_JITTER``), chroma in ``CLASS_CHROMA`` and a lightness L* drawn
            in ``CLASS_LIGHTNESS`` whatever the class, so a grayscale (L*) image shows the
            shape but not its colour.

    Returns:
        ``(image uint8 (H, W, 3), boxes float32 (N, 4) xyxy, labels int32 (N,))`` and, with
        ``return_masks``, ``masks`` and ``top``.
    """
    if colors not in ("random", "by_class"):
        raise ValueError(f"colors must be 'random' or 'by_class'. Received: colors={colors!r}")
    height, width = int(image_size[0]), int(image_size[1])
    rng = np.random.default_rng([int(seed), int(index)])
    image, background_mean = _background(rng, height, width)
    top = np.full((height, width), -1, np.int32)
    boxes, labels, masks, areas, visible = [], [], [], [], []
    num_objects = 0 if rng.uniform() < empty_fraction else int(rng.integers(1, max_objects + 1))
    short = min(height, width)
    for _ in range(num_objects):
        label = int(rng.integers(len(class_names)))
        kind = class_names[label]
        if colors == "by_class":
            color = _class_color(rng, label, len(class_names), background_mean)
        else:
            color = _shape_color(rng, background_mean)
        for _attempt in range(8):
            size = max(4.0, rng.uniform(*size_range) * short)
            half = int(np.ceil(size / 2)) + 1
            if 2 * half >= min(height, width):
                half = min(height, width) // 2 - 1
            cy = rng.uniform(half, height - half)
            cx = rng.uniform(half, width - half)
            y0, y1 = int(cy) - half, int(cy) + half + 1
            x0, x1 = int(cx) - half, int(cx) + half + 1
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
            v = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
            u = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
            local = _shape_mask(kind, u, v, size, rng)
            if local.sum() < 4:
                continue
            covered = top[y0:y1, x0:x1][local]
            lost = np.bincount(covered[covered >= 0], minlength=len(areas))
            if all(
                visible[j] - lost[j] >= (1 - max_occlusion) * areas[j] for j in range(len(areas))
            ):
                break
        else:
            continue  # no placement leaves earlier shapes visible enough: skip this shape
        for j in np.flatnonzero(lost):
            visible[j] -= lost[j]
        k = len(areas)
        top[y0:y1, x0:x1][local] = k
        image[y0:y1, x0:x1][local] = color
        rows, cols = np.flatnonzero(local.any(axis=1)), np.flatnonzero(local.any(axis=0))
        boxes.append([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1])
        labels.append(label)
        area = int(local.sum())
        areas.append(area)
        visible.append(area)
        if return_masks:
            full = np.zeros((height, width), bool)
            full[y0:y1, x0:x1] = local
            masks.append(full)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int32)
    if return_masks:
        return image, boxes, labels, np.asarray(masks, bool).reshape(-1, height, width), top
    return image, boxes, labels


def synthetic_shapes(
    num_images,
    image_size=(128, 128),
    seed=0,
    num_classes=None,
    class_names=None,
    max_objects=6,
    empty_fraction=0.1,
    size_range=(0.12, 0.5),
    max_occlusion=0.35,
):
    """A streamed detection set of coloured shapes (circle, rectangle, triangle, ellipse, star...).

    Args:
        num_images: Number of images.
        image_size: ``(height, width)``; any size (non-square too), at least 16 pixels.
        seed: Seed; example ``i`` depends only on ``(seed, i)``.
        num_classes: Use the first ``num_classes`` of ``SHAPES`` (default 5).
        class_names: Or name the shapes (a subset of ``SHAPES``, in label order).
        max_objects: At most this many shapes per image.
        empty_fraction: Fraction of images (in expectation) with no object.
        size_range: Shape extent as a fraction of ``min(height, width)``.
        max_occlusion: Largest fraction of a shape that later shapes may cover.

    Returns:
        ``DetectionData`` whose records are indices and whose images have a static shape.

    Example:
    ```python
    data = synthetic_shapes(256, image_size=(96, 128), seed=1)
    element = next(iter(data.dataset))
    ```
    """
    if class_names is None:
        count = len(DEFAULT_CLASSES) if num_classes is None else num_classes
        if not 1 <= count <= len(SHAPES):
            raise ValueError(
                f"num_classes must be in 1..{len(SHAPES)}. Received: num_classes={num_classes}"
            )
        class_names = SHAPES[:count]
    class_names = tuple(class_names)
    unknown = [name for name in class_names if name not in SHAPES]
    if unknown or len(set(class_names)) != len(class_names) or not class_names:
        raise ValueError(
            f"class_names must be distinct names from {SHAPES}. Received: class_names={class_names}"
        )
    if num_classes is not None and num_classes != len(class_names):
        raise ValueError(f"num_classes={num_classes} disagrees with class_names={class_names}")
    height, width = int(image_size[0]), int(image_size[1])
    if min(height, width) < 16:
        raise ValueError(f"image_size must be at least 16x16. Received: image_size={image_size}")
    if max_objects < 0 or not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(
            f"need max_objects >= 0 and 0 <= empty_fraction <= 1. Received: "
            f"max_objects={max_objects}, empty_fraction={empty_fraction}"
        )
    options = dict(
        seed=seed,
        image_size=(height, width),
        class_names=class_names,
        max_objects=max_objects,
        empty_fraction=empty_fraction,
        size_range=tuple(size_range),
        max_occlusion=max_occlusion,
    )

    return rendered_data(
        functools.partial(render_shapes, **options),
        num_images,
        (height, width),
        class_names,
        f"synthetic:shapes(seed={seed}, size={height}x{width})",
    )
