"""Synthetic faces: deterministic, points on the drawn features, pose ranges, no-face images."""

import numpy as np
import pytest

from zoo.landmarks.faces import FACE_FLIP_9, FACE_LANDMARKS_5, render_face, synthetic_faces


def _many(count, **kwargs):
    return [render_face(i, **kwargs) for i in range(count)]


def test_same_seed_same_example_other_seed_differs():
    a = render_face(7, seed=3)
    b = render_face(7, seed=3)
    c = render_face(7, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_layout_shapes_and_names():
    image, presence, landmarks, visibility = render_face(0, image_size=(64, 80))
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8
    assert landmarks.shape == (5, 2) and visibility.shape == (5,)
    assert presence in (0.0, 1.0)
    assert FACE_LANDMARKS_5 == ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
    _, _, nine, vis9 = render_face(0, num_landmarks=9)
    assert nine.shape == (9, 2) and vis9.shape == (9,)
    with pytest.raises(ValueError, match="num_landmarks must be 5 or 9. Received: num_landmarks=6"):
        render_face(0, num_landmarks=6)


def test_no_face_fraction_and_absent_faces_have_no_points():
    examples = _many(200, no_face_fraction=0.3, seed=1)
    presence = np.array([e[1] for e in examples])
    assert 0.2 < 1 - presence.mean() < 0.4
    for _, p, landmarks, visibility in examples:
        if p == 0:
            assert np.all(landmarks == 0) and np.all(visibility == 0)


def test_eye_landmarks_sit_on_dark_pupils():
    dark = []
    for image, presence, landmarks, visibility in _many(60, seed=2, occlusion_probability=0.0):
        if not presence:
            continue
        for k in (0, 1):  # eyes: the pupil is drawn black under the landmark
            if visibility[k]:
                x, y = np.floor(landmarks[k]).astype(int)
                dark.append(image[y, x].astype(int).sum() / 3)
    assert len(dark) > 40
    assert np.median(dark) < 60


def test_pose_covers_the_rotation_range_and_left_is_left_when_upright():
    angles = []
    for _, _presence, landmarks, _ in _many(150, seed=3, no_face_fraction=0.0):
        dx, dy = landmarks[1] - landmarks[0]
        angles.append(np.degrees(np.arctan2(dy, dx)))
    angles = np.abs(angles)
    assert angles.max() <= 30.0 + 3.0  # gaze shifts both eyes equally: the eye line is the pose
    assert np.mean(angles > 15) > 0.2  # the range is used, not only near-upright faces
    # with no rotation, the left eye is on the image-left and the mouth below the nose
    _, _, points, _ = render_face(0, seed=0, no_face_fraction=0.0, max_rotation=0.0)
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
    assert points[2, 1] < points[3, 1]


def test_points_outside_the_image_are_invisible():
    outside = 0
    for _, _presence, landmarks, visibility in _many(
        200, seed=4, scale_range=(0.4, 0.5), no_face_fraction=0.0, num_landmarks=9
    ):
        out = (landmarks < 0).any(-1) | (landmarks[:, 0] > 96) | (landmarks[:, 1] > 96)
        assert np.all(visibility[out] == 0)
        outside += out.sum()
    assert outside > 0  # big faces near the border do leave the image


def test_occlusion_hides_some_points_but_not_most():
    hidden = []
    for _, _presence, landmarks, visibility in _many(
        150, seed=5, occlusion_probability=1.0, no_face_fraction=0.0, scale_range=(0.16, 0.2)
    ):
        inside = (landmarks >= 0).all(-1) & (landmarks <= 96).all(-1)
        hidden.append(int((inside & (visibility == 0)).sum()))
    hidden = np.array(hidden)
    assert hidden.max() <= 2 and np.mean(hidden > 0) > 0.2


def test_dataset_streams_the_same_examples():
    data = synthetic_faces(4, image_size=(48, 48), seed=9, num_landmarks=9)
    assert data.num_landmarks == 9 and data.flip_permutation == FACE_FLIP_9
    assert data.eye_indices == (0, 1)
    elements = list(data.dataset.as_numpy_iterator())
    assert len(elements) == 4
    image, presence, landmarks, visibility = render_face(
        2, seed=9, image_size=(48, 48), num_landmarks=9
    )
    np.testing.assert_array_equal(elements[2]["images"], image)
    np.testing.assert_allclose(elements[2]["landmarks"], landmarks)
    np.testing.assert_allclose(elements[2]["visibility"], visibility)
    assert elements[2]["presence"] == presence
    with pytest.raises(ValueError, match="image_size must be at least 32x32"):
        synthetic_faces(2, image_size=(16, 16))
