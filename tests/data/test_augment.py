import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.data import Augmentation, augment_dataset, horizontal_flip, make_element, resize

NO_COLOR = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def _element(height=40, width=60, boxes=((10, 5, 30, 25), (40, 10, 58, 38)), seed=0):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return make_element(
        tf.constant(image), tf.constant(boxes), tf.range(len(boxes), dtype=tf.int32)
    )


def _np(element):
    return (
        element["images"].numpy(),
        element["bounding_boxes"]["boxes"].numpy(),
        element["bounding_boxes"]["labels"].numpy(),
    )


def test_horizontal_flip_golden():
    image, boxes, labels = _np(horizontal_flip(_element()))
    np.testing.assert_allclose(boxes, [[30, 5, 50, 25], [2, 10, 20, 38]])
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_array_equal(image, _np(_element())[0][:, ::-1])


def test_flip_only_augmentation_equals_horizontal_flip():
    augment = Augmentation(flip_probability=1.0, scale_range=(1, 1), translate=0.0, **NO_COLOR)
    out = _np(augment(_element(), seed=tf.constant([3, 4])))
    expected = _np(horizontal_flip(_element()))
    for a, b in zip(out, expected, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_everything_off_is_identity():
    augment = Augmentation(flip_probability=0.0, scale_range=(1, 1), translate=0.0, **NO_COLOR)
    for a, b in zip(_np(augment(_element(), seed=[1, 1])), _np(_element()), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_image_and_boxes_move_together():
    """A white block on black: after flip + zoom + shift its box still frames the white pixels."""
    image = np.zeros((64, 96, 3), np.uint8)
    image[20:40, 10:30] = 255
    element = make_element(
        tf.constant(image), tf.constant([[10.0, 20.0, 30.0, 40.0]]), tf.constant([7])
    )
    augment = Augmentation(
        flip_probability=0.5, scale_range=(0.6, 1.4), translate=0.15, min_visibility=0.9, **NO_COLOR
    )
    checked = 0
    for s in range(20):
        out, boxes, labels = _np(augment(element, seed=[s, 0]))
        if len(labels) == 0:
            continue
        checked += 1
        assert labels.tolist() == [7]
        ys, xs = np.nonzero(out[..., 0] > 127)
        x1, y1, x2, y2 = boxes[0]
        assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
        assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1
    assert checked >= 10


@settings(max_examples=40, deadline=None)
@given(
    boxes=st.lists(
        st.tuples(st.floats(0, 50), st.floats(0, 30), st.floats(1, 30), st.floats(1, 30)),
        min_size=0,
        max_size=6,
    ),
    seed=st.integers(0, 2**30),
)
def test_boxes_follow_the_drawn_transform(boxes, seed):
    """Each kept box is the affine image of its input box, clipped; labels stay aligned."""
    xyxy = [(x, y, min(x + w, 60), min(y + h, 40)) for x, y, w, h in boxes]
    xyxy = [b for b in xyxy if b[2] > b[0] + 0.5 and b[3] > b[1] + 0.5]
    element = _element(boxes=xyxy or np.zeros((0, 4)))
    augment = Augmentation(
        scale_range=(0.5, 1.5), translate=0.3, min_box_size=1.0, min_visibility=0.2
    )
    t = {k: v.numpy() for k, v in augment.get_random_transformation(tf.constant([seed, 1])).items()}
    image, out_boxes, labels = _np(
        augment.apply(element, augment.get_random_transformation(tf.constant([seed, 1])))
    )
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert (
        np.all(out_boxes >= 0)
        and np.all(out_boxes[:, [0, 2]] <= 60)
        and np.all(out_boxes[:, [1, 3]] <= 40)
    )
    assert np.all(np.diff(labels) > 0)  # kept in order, no duplicates
    kept = dict(zip(labels.tolist(), out_boxes, strict=True))
    for label, (x1, y1, x2, y2) in enumerate(xyxy):
        if t["flip"]:
            x1, x2 = 60 - x2, 60 - x1
        s, (tx, ty) = t["scale"], t["translate"]
        moved = np.array([s * (x1 - 30) + 30 + tx * 60, s * (y1 - 20) + 20 + ty * 40,
                          s * (x2 - 30) + 30 + tx * 60, s * (y2 - 20) + 20 + ty * 40])  # fmt: skip
        expected = np.clip(moved, 0, [60, 40, 60, 40])
        w, h = expected[2] - expected[0], expected[3] - expected[1]
        visible = w * h / ((moved[2] - moved[0]) * (moved[3] - moved[1]))
        if min(w, h) > 1.001 and visible > 0.201:
            assert label in kept
        elif min(w, h) < 0.999 or visible < 0.199:
            assert label not in kept
        if label in kept:
            np.testing.assert_allclose(kept[label], expected, atol=1e-3)


def test_box_pushed_out_is_dropped_with_its_label():
    augment = Augmentation(flip_probability=0.0, scale_range=(1, 1), translate=0.5, **NO_COLOR)
    element = _element(boxes=[(0, 0, 10, 10), (25, 15, 35, 25)])
    for s in range(30):
        t = augment.get_random_transformation(tf.constant([s, 0]))
        if t["translate"][0] < -0.2 and abs(t["translate"][1]) < 0.2:
            # shifted left by more than 12 px: the first box leaves the image, the second stays
            _, boxes, labels = _np(augment.apply(element, t))
            assert labels.tolist() == [1] and boxes.shape == (1, 4)
            return
    pytest.fail("no draw shifted far enough left")


def test_same_seed_same_output_and_seed_matters():
    augment = Augmentation()
    first = _np(augment(_element(), seed=[5, 6]))
    again = _np(augment(_element(), seed=[5, 6]))
    other = _np(augment(_element(), seed=[5, 7]))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_color_jitter_changes_pixels_not_boxes():
    augment = Augmentation(
        flip_probability=0.0,
        scale_range=(1, 1),
        translate=0.0,
        brightness=0.3,
        contrast=0.3,
        saturation=0.5,
        hue=0.1,
    )
    image, boxes, labels = _np(augment(_element(), seed=[0, 9]))
    np.testing.assert_allclose(boxes, _np(_element())[1])
    assert np.abs(image.astype(int) - _np(_element())[0]).mean() > 2


def test_augment_dataset_is_reproducible():
    ds = tf.data.Dataset.from_tensors(_element()).repeat(4)

    def run(seed):
        return [_np_dict(e) for e in augment_dataset(ds, seed=seed).as_numpy_iterator()]

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    assert not np.array_equal(a[0][0], a[1][0])  # every element gets its own draw


def _np_dict(e):
    return e["images"], e["bounding_boxes"]["boxes"], e["bounding_boxes"]["labels"]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="scale_range"):
        Augmentation(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="hue"):
        Augmentation(hue=0.7)


def test_resize_scales_boxes():
    image, boxes, labels = _np(resize(_element(height=40, width=60), (20, 120)))
    assert image.shape == (20, 120, 3)
    np.testing.assert_allclose(boxes, [[20, 2.5, 60, 12.5], [80, 5, 116, 19]])
    np.testing.assert_array_equal(labels, [0, 1])


def test_resize_letterbox_golden():
    element = make_element(
        tf.fill((50, 100, 3), tf.constant(200, tf.uint8)),
        tf.constant([[10.0, 5, 20, 15]]),
        tf.constant([3]),
    )
    image, boxes, _ = _np(resize(element, (64, 64), letterbox=True))
    # scale 0.64: 100x50 -> 64x32, centred with 16 rows of grey above and below
    np.testing.assert_allclose(boxes, [[6.4, 16 + 3.2, 12.8, 16 + 9.6]], atol=1e-4)
    assert (image[:16] == 114).all() and (image[48:] == 114).all() and (image[16:48] == 200).all()


def test_resize_gives_static_shape_in_tf_data():
    ds = tf.data.Dataset.from_tensors(_element()).map(lambda e: resize(e, (32, 48), letterbox=True))
    assert ds.element_spec["images"].shape == (32, 48, 3)
