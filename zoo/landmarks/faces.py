"""An embedded landmark set: procedurally drawn faces (and images without one).

Each face is drawn in a canonical frame (face half-width 1, y down): head ellipse (with ears
and hair sometimes), eyes (sclera, iris, pupil), brows, a nose triangle and a mouth; then it is
placed in the image by a random similarity (rotation in ``[-max_rotation, max_rotation]``
degrees, scale, translation). Skin tone, a lighting gradient across the face, the overall
brightness and pixel noise vary; the background has a colour gradient and clutter (discs, bars,
lines, and sometimes a featureless skin-coloured blob, so that "skin" alone does not mean
"face"). A partial occluder (a bar or a disc) sometimes covers part of the face: the landmarks
under it get visibility 0, like points that fall outside the image. ``no_face_fraction`` of the
images hold no face (presence 0, landmarks and visibility all zero).

Landmarks (``"left"`` is the image-left side of the upright face):

- 5 (default, CelebA's order): ``left_eye``, ``right_eye`` (iris centres), ``nose_tip``,
  ``mouth_left``, ``mouth_right`` (mouth corners);
- 9: those plus ``left_brow``, ``right_brow`` (brow centres), ``upper_lip``, ``chin``.

Every image is a pure function of ``(seed, index)`` (``numpy.random.default_rng([seed,
index])``), drawn on demand inside ``tf.data``.

Example:
```python
data = synthetic_faces(1000, image_size=(96, 96), seed=0)
batches = zoo.landmarks.data.landmark_pipeline(data, (96, 96), 32, augment=True)
```
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataReport
from zoo.landmarks.element import LandmarkData, make_landmark_element

FACE_LANDMARKS_5 = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
FACE_LANDMARKS_9 = FACE_LANDMARKS_5 + ("left_brow", "right_brow", "upper_lip", "chin")
FACE_FLIP_5 = (1, 0, 2, 4, 3)
FACE_FLIP_9 = (1, 0, 2, 4, 3, 6, 5, 7, 8)
FACE_LANDMARKS = {5: FACE_LANDMARKS_5, 9: FACE_LANDMARKS_9}
FACE_FLIPS = {5: FACE_FLIP_5, 9: FACE_FLIP_9}

_SKIN_TONES = np.array(
    [
        [255, 224, 196],
        [241, 194, 160],
        [224, 172, 125],
        [198, 134, 90],
        [160, 105, 70],
        [115, 72, 45],
        [80, 50, 35],
    ],
    np.float32,
)


def _ellipse(qx, qy, cx, cy, ax, ay):
    return ((qx - cx) / ax) ** 2 + ((qy - cy) / ay) ** 2 <= 1.0


def _triangle(qx, qy, a, b, c):
    def side(p, q):
        return (qx - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (qy - q[1])

    d1, d2, d3 = side(a, b), side(b, c), side(c, a)
    negative = (d1 < 0) | (d2 < 0) | (d3 < 0)
    positive = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(negative & positive)


def _rotated_box(qx, qy, cx, cy, half_w, half_h, angle):
    cos, sin = np.cos(angle), np.sin(angle)
    u = (qx - cx) * cos + (qy - cy) * sin
    v = -(qx - cx) * sin + (qy - cy) * cos
    return (np.abs(u) <= half_w) & (np.abs(v) <= half_h)


def _background(rng, height, width):
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None, None]
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :, None]
    base = rng.uniform(30, 220, 3).astype(np.float32)
    image = base + rng.uniform(-40, 40, 3).astype(np.float32) * x
    image = image + rng.uniform(-40, 40, 3).astype(np.float32) * y
    return np.broadcast_to(image, (height, width, 3)).copy()


def _clutter(rng, image, u, v, short, count):
    for _ in range(count):
        color = rng.uniform(0, 255, 3).astype(np.float32)
        kind = rng.integers(3)
        cx, cy = rng.uniform(0, image.shape[1]), rng.uniform(0, image.shape[0])
        if kind == 0:  # disc
            r = rng.uniform(0.04, 0.2) * short
            mask = (u - cx) ** 2 + (v - cy) ** 2 <= r * r
        elif kind == 1:  # bar
            mask = _rotated_box(
                u,
                v,
                cx,
                cy,
                rng.uniform(0.05, 0.3) * short,
                rng.uniform(0.02, 0.12) * short,
                rng.uniform(0, np.pi),
            )
        else:  # thin line
            mask = _rotated_box(
                u,
                v,
                cx,
                cy,
                rng.uniform(0.2, 0.6) * short,
                0.01 * short + 0.6,
                rng.uniform(0, np.pi),
            )
        image[mask] = color


def _face_geometry(rng):
    """Canonical-frame geometry of one face and its 9 landmarks (face half-width = 1)."""
    g = {
        "head_cy": 0.05,
        "head_ry": rng.uniform(1.15, 1.4),
        "eye_x": rng.uniform(0.33, 0.45),
        "eye_y": rng.uniform(-0.32, -0.15),
        "eye_rx": rng.uniform(0.16, 0.22),
        "eye_ry": rng.uniform(0.08, 0.12),
        "gaze": rng.uniform(-0.04, 0.04),
        "brow_dy": rng.uniform(0.16, 0.24),
        "brow_tilt": rng.uniform(-0.25, 0.25),
        "nose_y": rng.uniform(0.18, 0.32),
        "nose_w": rng.uniform(0.1, 0.16),
        "mouth_y": rng.uniform(0.5, 0.68),
        "mouth_w": rng.uniform(0.26, 0.4),
        "mouth_h": rng.uniform(0.05, 0.12),
    }
    g["iris_r"] = min(g["eye_ry"] * 0.95, rng.uniform(0.07, 0.1))
    ex, ey, gaze = g["eye_x"], g["eye_y"], g["gaze"]
    points = np.array(
        [
            [-ex + gaze, ey],  # left eye (iris centre)
            [ex + gaze, ey],  # right eye
            [0.0, g["nose_y"]],  # nose tip
            [-g["mouth_w"], g["mouth_y"]],  # mouth corners
            [g["mouth_w"], g["mouth_y"]],
            [-ex, ey - g["brow_dy"]],  # brow centres
            [ex, ey - g["brow_dy"]],
            [0.0, g["mouth_y"] - g["mouth_h"]],  # upper lip
            [0.0, g["head_cy"] + g["head_ry"]],  # chin
        ],
        np.float64,
    )
    return g, points


def _draw_face(rng, image, qx, qy, g, skin, shade):
    """Draws the face in canonical coordinates ``qx, qy`` (per pixel) into ``image``."""

    def paint(mask, color):
        image[mask] = np.clip(np.asarray(color, np.float32) * shade[mask, None], 0, 255)

    hair = rng.uniform(10, 120, 3) * rng.uniform(0.3, 1.0)
    if rng.uniform() < 0.6:  # hair behind the head
        paint(_ellipse(qx, qy, 0, g["head_cy"] - 0.1, 1.12, g["head_ry"] + 0.05) & (qy < 0.3), hair)
    if rng.uniform() < 0.7:  # ears
        for side in (-1, 1):
            paint(_ellipse(qx, qy, side * 0.98, g["eye_y"] + 0.2, 0.13, 0.25), skin * 0.92)
    head = _ellipse(qx, qy, 0, g["head_cy"], 1.0, g["head_ry"])
    paint(head, skin)
    if rng.uniform() < 0.5:  # fringe
        paint(head & (qy < g["eye_y"] - g["brow_dy"] - 0.18 + 0.1 * np.sin(qx * 6)), hair)
    ex, ey = g["eye_x"], g["eye_y"]
    iris = rng.uniform(20, 140, 3)
    for side in (-1, 1):
        cx = side * ex
        paint(_ellipse(qx, qy, cx, ey, g["eye_rx"], g["eye_ry"]), (235, 235, 230))
        paint(_ellipse(qx, qy, cx + g["gaze"], ey, g["iris_r"], g["iris_r"]), iris)
        pupil = g["iris_r"] * 0.45
        paint(_ellipse(qx, qy, cx + g["gaze"], ey, pupil, pupil), (15, 15, 15))
        paint(
            _rotated_box(
                qx, qy, cx, ey - g["brow_dy"], g["eye_rx"] * 1.1, 0.035, side * g["brow_tilt"]
            ),
            hair * 0.8,
        )
    nose = _triangle(
        qx,
        qy,
        (0.0, ey + 0.05),
        (-g["nose_w"], g["nose_y"]),
        (g["nose_w"], g["nose_y"]),
    )
    paint(nose, skin * 0.78)
    for side in (-1, 1):  # nostrils
        paint(
            _ellipse(qx, qy, side * g["nose_w"] * 0.45, g["nose_y"] - 0.02, 0.035, 0.025),
            skin * 0.4,
        )
    lips = np.array([rng.uniform(140, 210), rng.uniform(40, 90), rng.uniform(50, 100)])
    paint(_ellipse(qx, qy, 0, g["mouth_y"], g["mouth_w"], g["mouth_h"]), lips)
    paint(_ellipse(qx, qy, 0, g["mouth_y"], g["mouth_w"] * 0.85, 0.018), lips * 0.35)


def render_face(
    index,
    seed=0,
    image_size=(96, 96),
    num_landmarks=5,
    no_face_fraction=0.2,
    max_rotation=30.0,
    scale_range=(0.22, 0.36),
    occlusion_probability=0.2,
    clutter=(2, 8),
):
    """Draws example ``index`` of the synthetic face set (NumPy; see ``synthetic_faces``).

    Args:
        index: example index.
        seed: set seed; the example depends only on ``(seed, index)``.
        image_size: ``(height, width)``.
        num_landmarks: 5 or 9 (see the module docstring).
        no_face_fraction: probability that the image holds no face.
        max_rotation: largest in-plane rotation in degrees.
        scale_range: face half-width as a fraction of ``min(height, width)``.
        occlusion_probability: chance of a partial occluder over the face.
        clutter: ``(min, max)`` number of background clutter shapes.

    Returns:
        ``(image uint8 (H, W, 3), presence float32 (), landmarks float32 (K, 2) pixels,
        visibility float32 (K,))``.
    """
    if num_landmarks not in FACE_LANDMARKS:
        raise ValueError(f"num_landmarks must be 5 or 9. Received: num_landmarks={num_landmarks!r}")
    height, width = int(image_size[0]), int(image_size[1])
    short = min(height, width)
    rng = np.random.default_rng([int(seed), int(index)])
    v, u = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    image = _background(rng, height, width)
    _clutter(rng, image, u, v, short, int(rng.integers(clutter[0], clutter[1] + 1)))
    has_face = rng.uniform() >= no_face_fraction
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.85, 1.1, 3)
    if rng.uniform() < (0.3 if has_face else 0.6):  # a featureless skin-coloured blob
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        r = rng.uniform(0.1, 0.25) * short
        blob = _ellipse(u, v, cx, cy, r, r * rng.uniform(1.0, 1.4))
        image[blob] = np.clip(skin * rng.uniform(0.8, 1.1), 0, 255)

    landmarks = np.zeros((num_landmarks, 2), np.float32)
    visibility = np.zeros((num_landmarks,), np.float32)
    if has_face:
        g, points = _face_geometry(rng)
        scale = rng.uniform(*scale_range) * short
        angle = np.radians(rng.uniform(-max_rotation, max_rotation))
        cx = rng.uniform(0.3, 0.7) * width
        cy = rng.uniform(0.3, 0.7) * height
        cos, sin = np.cos(angle), np.sin(angle)
        # canonical q -> image p = c + scale * R q;  inverse for each pixel centre
        du, dv = u - cx, v - cy
        qx = (cos * du + sin * dv) / scale
        qy = (-sin * du + cos * dv) / scale
        light = rng.uniform(0, 2 * np.pi)
        shade = rng.uniform(0.75, 1.15) * (
            1 + rng.uniform(0, 0.35) * (np.cos(light) * qx + np.sin(light) * qy) / 1.3
        )
        shade = np.maximum(shade, 0.2).astype(np.float32)
        _draw_face(rng, image, qx, qy, g, skin, shade)
        pts = points[:num_landmarks]
        px = cx + scale * (cos * pts[:, 0] - sin * pts[:, 1])
        py = cy + scale * (sin * pts[:, 0] + cos * pts[:, 1])
        landmarks = np.stack([px, py], axis=-1).astype(np.float32)
        visibility = (
            (landmarks[:, 0] >= 0)
            & (landmarks[:, 0] <= width)
            & (landmarks[:, 1] >= 0)
            & (landmarks[:, 1] <= height)
        ).astype(np.float32)
        if rng.uniform() < occlusion_probability:
            color = rng.uniform(0, 255, 3).astype(np.float32)
            for _attempt in range(5):
                anchor = landmarks[rng.integers(num_landmarks)]
                ox, oy = anchor + rng.normal(0, 0.3 * scale, 2)
                if rng.uniform() < 0.5:
                    mask = _rotated_box(
                        u,
                        v,
                        ox,
                        oy,
                        rng.uniform(0.3, 0.9) * scale,
                        rng.uniform(0.15, 0.4) * scale,
                        rng.uniform(0, np.pi),
                    )
                else:
                    r = rng.uniform(0.2, 0.5) * scale
                    mask = (u - ox) ** 2 + (v - oy) ** 2 <= r * r
                hidden = _hidden_points(mask, landmarks)
                if hidden.sum() <= num_landmarks // 2:
                    image[mask] = color
                    visibility[hidden] = 0.0
                    break
    image *= rng.uniform(0.7, 1.25)  # overall brightness
    image += rng.normal(0, rng.uniform(1, 8), image.shape).astype(np.float32)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image, np.float32(has_face), landmarks, visibility


def _hidden_points(mask, landmarks):
    """Points whose pixel is covered by ``mask`` (points outside the image are not)."""
    height, width = mask.shape
    col = np.floor(landmarks[:, 0]).astype(int)
    row = np.floor(landmarks[:, 1]).astype(int)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    hidden = np.zeros(len(landmarks), bool)
    hidden[inside] = mask[row[inside], col[inside]]
    return hidden


def synthetic_faces(
    num_images=1000,
    image_size=(96, 96),
    seed=0,
    num_landmarks=5,
    no_face_fraction=0.2,
    max_rotation=30.0,
    scale_range=(0.22, 0.36),
    occlusion_probability=0.2,
    clutter=(2, 8),
):
    """A streamed set of synthetic faces in the landmark layout (``zoo.landmarks.data``).

    Args:
        num_images: number of images.
        image_size: ``(height, width)``, at least 32 a side.
        seed: example ``i`` depends only on ``(seed, i)``.
        num_landmarks: 5 or 9.
        no_face_fraction: expected fraction of images with no face (presence 0).
        max_rotation: largest rotation in degrees.
        scale_range: face half-width as a fraction of the short side.
        occlusion_probability: chance of a partial occluder.
        clutter: ``(min, max)`` background clutter shapes.

    Returns:
        ``LandmarkData`` (flip permutation and eye indices ``(0, 1)`` set).

    Example:
    ```python
    data = synthetic_faces(64, seed=1)
    element = next(iter(data.dataset))
    ```
    """
    height, width = int(image_size[0]), int(image_size[1])
    if min(height, width) < 32:
        raise ValueError(f"image_size must be at least 32x32. Received: image_size={image_size}")
    if num_landmarks not in FACE_LANDMARKS:
        raise ValueError(f"num_landmarks must be 5 or 9. Received: num_landmarks={num_landmarks!r}")
    if not 0.0 <= no_face_fraction <= 1.0:
        raise ValueError(
            f"no_face_fraction must be in [0, 1]. Received: no_face_fraction={no_face_fraction}"
        )
    low, high = scale_range
    if not 0 < low <= high:
        raise ValueError(f"scale_range must satisfy 0 < low <= high. Received: {scale_range}")
    options = dict(
        seed=seed,
        image_size=(height, width),
        num_landmarks=num_landmarks,
        no_face_fraction=no_face_fraction,
        max_rotation=max_rotation,
        scale_range=(low, high),
        occlusion_probability=occlusion_probability,
        clutter=tuple(clutter),
    )

    def draw(index):
        return render_face(int(index), **options)

    def decode(index):
        image, presence, landmarks, visibility = tf.numpy_function(
            draw, [index], (tf.uint8, tf.float32, tf.float32, tf.float32), stateful=False
        )
        image.set_shape((height, width, 3))
        landmarks.set_shape((num_landmarks, 2))
        visibility.set_shape((num_landmarks,))
        return make_landmark_element(image, presence, landmarks, visibility)

    return LandmarkData(
        records=tf.data.Dataset.range(num_images),
        decode_fn=decode,
        landmark_names=FACE_LANDMARKS[num_landmarks],
        flip_permutation=FACE_FLIPS[num_landmarks],
        eye_indices=(0, 1),
        num_examples=int(num_images),
        report=DataReport(),
        source=f"synthetic:faces(seed={seed}, size={height}x{width}, k={num_landmarks})",
    )
