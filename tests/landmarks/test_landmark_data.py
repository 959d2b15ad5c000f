"""Landmark readers (.pts folders, TFDS celeb_a on mock data), augmentation, batching."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data.errors import DataError
from zoo.landmarks.augment import LandmarkAugmentation, affine_matrix, augment_landmarks
from zoo.landmarks.data import (
    CELEB_A_FLIP,
    IBUG_68_FLIP,
    check_flip_permutation,
    landmark_pipeline,
    load_landmark_data,
    make_landmark_element,
    read_celeb_a,
    read_pts,
    read_pts_folder,
)


def _pts_text(points, n_points=None):
    n = len(points) if n_points is None else n_points
    body = "\n".join(f"{x} {y}" for x, y in points)
    return f"version: 1\nn_points:  {n}\n{{\n{body}\n}}\n"


def _write_pair(folder, name, points, size=(40, 30), ext=".png", text=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(name))
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{name}{ext}")
    (folder / f"{name}.pts").write_text(text if text is not None else _pts_text(points))
    return pixels


# === .pts ===


def test_read_pts_golden(tmp_path):
    path = tmp_path / "a.pts"
    path.write_text("version: 1\nn_points: 3\n{\n1.5 2\n  10 20.25\n3e1 4\n}\n")
    np.testing.assert_allclose(read_pts(path), [[1.5, 2], [10, 20.25], [30, 4]])


@pytest.mark.parametrize(
    "text, match",
    [
        (
            _pts_text([(1, 2), (3, 4)], n_points=3),
            r"a\.pts: wrong number of points: the header says n_points: 3, the file lists 2",
        ),
        (
            "version: 1\nn_points: 2\n{\n1 2\n3 abc\n}\n",
            r"a\.pts: line 5 = '3 abc': y is not a number",
        ),
        (
            "version: 1\nn_points: 2\n{\n1 2\nnan 4\n}\n",
            r"a\.pts: line 5 = 'nan 4': x is not a finite number",
        ),
        (
            "version: 1\nn_points: 2\n{\n1 2 3\n3 4\n}\n",
            r"line 4 = '1 2 3': a point line must hold two numbers",
        ),
        ("version: 1\n{\n1 2\n}\n", r"a\.pts: no 'n_points:' header"),
        ("version: 1\nn_points: 1\n{\n1 2\n", r"a\.pts: no '}' closing"),
    ],
)
def test_bad_pts_errors_name_the_file_line_and_value(tmp_path, text, match):
    path = tmp_path / "a.pts"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_pts(path)


def test_pts_folder_reads_pairs_one_based_and_reports_unlabelled_images(tmp_path):
    pixels = _write_pair(tmp_path / "sub", "b", [(1, 1), (40, 30), (41, 10)])
    _write_pair(tmp_path, "a", [(5, 6), (7, 8), (9, 10)], ext=".jpg")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "lonely.png")
    data = read_pts_folder(tmp_path)
    assert data.num_examples == 2 and data.num_landmarks == 3
    assert [p.split("/")[-1] for p in data.files] == ["a.jpg", "b.png"]
    assert data.report["images without a .pts file skipped"] == 1
    assert data.flip_permutation is None  # unknown for 3 points: flipping is disabled
    a, b = list(data.dataset.as_numpy_iterator())
    np.testing.assert_allclose(a["landmarks"], [[4.5, 5.5], [6.5, 7.5], [8.5, 9.5]])
    np.testing.assert_array_equal(b["images"], pixels)
    # 1-based (1, 1) -> (0.5, 0.5); (40, 30) -> (39.5, 29.5) inside; (41, 10) -> 40.5 > width 40
    np.testing.assert_allclose(b["landmarks"][:2], [[0.5, 0.5], [39.5, 29.5]])
    np.testing.assert_array_equal(b["visibility"], [1, 1, 0])
    assert b["presence"] == 1.0


def test_pts_without_image_and_inconsistent_counts_name_the_file(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "face.pts").write_text(_pts_text([(1, 2)]))
    with pytest.raises(
        DataError, match=r"face\.pts: no image next to the \.pts file \(tried face\.jpg"
    ):
        read_pts_folder(tmp_path / "x")
    _write_pair(tmp_path / "y", "a", [(1, 2), (3, 4)])
    _write_pair(tmp_path / "y", "b", [(1, 2), (3, 4), (5, 6)])
    with pytest.raises(
        DataError, match=r"b\.pts: wrong number of points: expected 2, the file has 3"
    ):
        read_pts_folder(tmp_path / "y")


def test_ibug_68_flip_is_a_mirror_involution():
    assert check_flip_permutation(IBUG_68_FLIP, 68) == IBUG_68_FLIP
    assert IBUG_68_FLIP[36] == 45 and IBUG_68_FLIP[48] == 54 and IBUG_68_FLIP[30] == 30
    assert IBUG_68_FLIP[0] == 16 and IBUG_68_FLIP[17] == 26 and IBUG_68_FLIP[60] == 64
    with pytest.raises(ValueError, match="must swap left/right pairs"):
        check_flip_permutation((1, 2, 0), 3)


def test_load_landmark_data_uses_train_and_val_subfolders(tmp_path):
    _write_pair(tmp_path / "train", "a", [(1, 2)])
    _write_pair(tmp_path / "train", "b", [(1, 2)])
    _write_pair(tmp_path / "val", "c", [(1, 2)])
    assert load_landmark_data(tmp_path, "train").num_examples == 2
    assert load_landmark_data(tmp_path, "validation").files[0].endswith("c.png")
    synthetic = load_landmark_data("synthetic", "validation", num_images=3, image_size=(32, 32))
    assert synthetic.num_examples == 3 and "seed=10000" in synthetic.source


# === TFDS celeb_a on mock data ===


def _celeb_a_mock(examples):
    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        features = self.info.features
        specs = features.get_serialized_info()
        encoded = [features.encode_example(e) for e in examples]
        ds = tf.data.Dataset.from_generator(
            lambda: iter(encoded),
            output_types=tf.nest.map_structure(lambda t: t.tf_dtype, specs),
            output_shapes=tf.nest.map_structure(lambda t: t.shape, specs),
        )
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(examples)))
        return ds.map(lambda e: features.decode_example(e, decoders=decoders))

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def _celeb_a_example(points):
    from tensorflow_datasets.datasets.celeb_a import celeb_a_dataset_builder as module

    fields = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
    marks = {}
    for field, (x, y) in zip(fields, points, strict=True):
        marks[f"{field}_x"], marks[f"{field}_y"] = x, y
    y, x = np.mgrid[0:218, 0:178]
    image = np.stack([x, y, np.full_like(x, 90)], -1).astype(np.uint8)
    return {
        "image": image,
        "landmarks": {name: marks[name] for name in module.LANDMARK_HEADINGS},
        "attributes": {name: False for name in module.ATTR_HEADINGS},
        "identity": {name: 1 for name in module.IDENTITY_HEADINGS},
    }


def test_celeb_a_reader_on_hand_written_mock_examples(tmp_path):
    points = [(69, 109), (106, 113), (77, 142), (73, 152), (108, 154)]
    far = [(69, 109), (106, 113), (77, 142), (73, 152), (190, 154)]  # right mouth off the image
    with _celeb_a_mock([_celeb_a_example(points), _celeb_a_example(far)]):
        data = read_celeb_a("train", data_dir=str(tmp_path))
        first, second = list(data.dataset.as_numpy_iterator())
    assert data.flip_permutation == CELEB_A_FLIP and data.eye_indices == (0, 1)
    assert data.num_examples == 2 and data.source == "tfds:celeb_a"
    assert first["images"].shape == (218, 178, 3) and first["presence"] == 1.0
    np.testing.assert_allclose(first["landmarks"], np.array(points) + 0.5)
    np.testing.assert_array_equal(first["visibility"], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(second["visibility"], [1, 1, 1, 1, 0])


def test_celeb_a_reader_on_random_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=3):
        data = read_celeb_a("validation", data_dir=str(tmp_path))
        batches = list(landmark_pipeline(data, (32, 32), batch_size=3).as_numpy_iterator())
    images, targets = batches[0]
    assert images.shape == (3, 32, 32, 3) and targets["landmarks"].shape == (3, 5, 2)
    inside = (targets["landmarks"] >= 0).all(-1) & (targets["landmarks"] <= 1).all(-1)
    np.testing.assert_array_equal(targets["visibility"] > 0, inside)


def test_celeb_a_not_prepared_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"tfds:celeb_a: cannot load .*download=True"):
        read_celeb_a(data_dir=str(tmp_path))


# === Augmentation ===


def _element(points, visibility=None, size=(40, 60)):
    image = tf.zeros((*size, 3), tf.uint8)
    return make_landmark_element(image, 1.0, np.array(points, "float32"), visibility)


def _no_jitter(**kwargs):
    return LandmarkAugmentation(brightness=0, contrast=0, saturation=0, hue=0, **kwargs)


def test_flip_mirrors_and_swaps_left_and_right():
    augment = _no_jitter(flip_permutation=(1, 0, 2), flip_probability=1.0)
    element = _element([[10, 5], [50, 6], [30, 20]], visibility=[1, 0, 1])  # width 60
    t = {**augment.get_random_transformation(tf.constant([1, 2])), "angle": 0.0, "scale": 1.0}
    t["translate"] = tf.zeros(2)
    out = augment.apply(element, t)
    # point 1 (right, hidden) becomes the left one: x 50 -> 10; point 0 -> index 1, x 10 -> 50
    np.testing.assert_allclose(out["landmarks"], [[10, 6], [50, 5], [30, 20]], atol=1e-4)
    np.testing.assert_array_equal(out["visibility"], [0, 1, 1])


def test_rotation_scale_translation_move_points_in_closed_form():
    linear, offset = affine_matrix(40, 60, angle=np.pi / 2, scale=2.0, shift=(1.0, -2.0))
    point = np.array([35.0, 20.0], "float32")  # 5 px right of the centre (30, 20)
    moved = np.asarray(tf.linalg.matvec(linear, point) + offset)
    # +x turns to +y (clockwise on screen), doubled: (30, 20 + 10), then shifted by (1, -2)
    np.testing.assert_allclose(moved, [31.0, 28.0], atol=1e-4)


def test_points_leaving_the_image_become_invisible_not_clipped():
    augment = _no_jitter(flip_probability=0.0, translate=0.0, rotation=0.0, scale_range=(1, 1))
    t = augment.get_random_transformation(tf.constant([0, 0]))
    t["translate"] = tf.constant([0.5, 0.0])  # shift right by 30 px
    out = augment.apply(_element([[10, 5], [50, 6]]), t)
    np.testing.assert_allclose(out["landmarks"], [[40, 5], [80, 6]], atol=1e-4)
    np.testing.assert_array_equal(out["visibility"], [1, 0])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_image_and_points_move_together(seed):
    """A bright 3x3 dot drawn at each point ends up under the moved point."""
    size = (48, 64)
    rng = np.random.default_rng(seed)
    points = rng.uniform([12, 12], [52, 36], (2, 2)).astype("float32")
    image = np.zeros((*size, 3), np.uint8)
    for x, y in points.astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    centres = points.astype(int) + 0.5
    element = make_landmark_element(tf.constant(image), 1.0, centres)
    augment = _no_jitter(flip_permutation=(1, 0), rotation=30, scale_range=(0.8, 1.2))
    out = augment(element, tf.constant([seed % 1000, 7]))
    moved = np.asarray(out["images"])[..., 0].astype(float)
    for (x, y), visible in zip(
        np.asarray(out["landmarks"]), np.asarray(out["visibility"]), strict=True
    ):
        if visible and 2 <= x < size[1] - 2 and 2 <= y < size[0] - 2:
            assert moved[int(y), int(x)] > 100


def test_augmentation_is_deterministic_by_seed_and_jitters_colour():
    augment = LandmarkAugmentation(flip_permutation=(1, 0), brightness=0.3)
    element = make_landmark_element(
        tf.fill((32, 32, 3), tf.constant(100, tf.uint8)), 1.0, [[8.0, 8.0], [24.0, 8.0]]
    )
    a = augment(element, tf.constant([3, 4]))
    b = augment(element, tf.constant([3, 4]))
    c = augment(element, tf.constant([5, 4]))
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["landmarks"], b["landmarks"])
    assert not np.array_equal(a["images"], c["images"])
    with pytest.raises(ValueError, match="needs flip_permutation"):
        LandmarkAugmentation()


def test_absent_object_stays_absent_under_augmentation():
    element = make_landmark_element(
        tf.zeros((32, 32, 3), tf.uint8), 0.0, np.zeros((2, 2), "float32")
    )
    ds = augment_landmarks(
        tf.data.Dataset.from_tensors(element), LandmarkAugmentation(flip_permutation=(1, 0))
    )
    out = next(iter(ds))
    assert float(out["presence"]) == 0.0 and np.all(out["visibility"] == 0)
    assert np.all(out["landmarks"] == 0)


def test_pipeline_batches_normalized_targets():
    from zoo.landmarks.faces import synthetic_faces

    data = synthetic_faces(6, image_size=(64, 48), seed=2)
    images, targets = next(iter(landmark_pipeline(data, (32, 32), 6, augment=True)))
    assert images.dtype == tf.float32 and images.shape == (6, 32, 32, 3)
    assert set(targets) == {"presence", "landmarks", "visibility"}
    visible = targets["visibility"].numpy() > 0
    points = targets["landmarks"].numpy()[visible]
    assert points.size and np.all((points >= 0) & (points <= 1))
    plain = next(iter(landmark_pipeline(data, (32, 32), 6)))[1]
    raw = list(data.dataset.as_numpy_iterator())
    expected = raw[0]["landmarks"] / np.array([48, 64])
    np.testing.assert_allclose(plain["landmarks"][0], expected * raw[0]["presence"], atol=1e-6)
