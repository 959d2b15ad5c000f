"""zoo.ops.boxes: golden values vs a NumPy reference and hand computation, Keras cross-checks,
degenerate boxes (values and gradients), and hypothesis properties."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo import ops as zops

PAIRWISE = {"iou": zops.iou, "giou": zops.giou, "diou": zops.diou, "ciou": zops.ciou}
ELEMENTWISE = {
    "iou": zops.elementwise_iou,
    "giou": zops.elementwise_giou,
    "diou": zops.elementwise_diou,
    "ciou": zops.elementwise_ciou,
}
BOUNDS = {"iou": (0.0, 1.0), "giou": (-1.0, 1.0), "diou": (-1.0, 1.0), "ciou": (-2.0, 1.0)}


# --- NumPy reference (float64, straight from the papers) -------------------------------------


def np_metric(kind, a, b, frozen_alpha=None):
    """Element-wise IoU/GIoU/DIoU/CIoU of xyxy boxes (..., 4); negative extents clamp to 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ax1, ay1 = a[..., 0], a[..., 1]
    ax2, ay2 = np.maximum(a[..., 2], ax1), np.maximum(a[..., 3], ay1)
    bx1, by1 = b[..., 0], b[..., 1]
    bx2, by2 = np.maximum(b[..., 2], bx1), np.maximum(b[..., 3], by1)
    aw, ah, bw, bh = ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    if kind == "iou":
        return iou
    cw = np.maximum(ax2, bx2) - np.minimum(ax1, bx1)
    ch = np.maximum(ay2, by2) - np.minimum(ay1, by1)
    if kind == "giou":
        c = cw * ch
        return iou - np.where(c > 0, (c - union) / np.where(c > 0, c, 1), 0.0)
    c2 = cw**2 + ch**2
    rho2 = ((ax1 + ax2 - bx1 - bx2) / 2) ** 2 + ((ay1 + ay2 - by1 - by2) / 2) ** 2
    diou = iou - np.where(c2 > 0, rho2 / np.where(c2 > 0, c2, 1), 0.0)
    if kind == "diou":
        return diou
    v = 4 / np.pi**2 * (np.arctan2(bw, bh) - np.arctan2(aw, ah)) ** 2
    denom = 1 - iou + v  # 0 only for identical boxes, where v = 0 too
    alpha = np.where(denom > 0, v / np.where(denom > 0, denom, 1), 0.0)
    alpha = alpha if frozen_alpha is None else frozen_alpha
    return diou - alpha * v


def random_boxes(rng, n, lo=0.0, hi=100.0, min_size=1.0, max_size=40.0):
    xy = rng.uniform(lo, hi, (n, 2))
    wh = rng.uniform(min_size, max_size, (n, 2))
    return np.concatenate([xy, xy + wh], -1).astype(np.float32)


# --- golden values ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PAIRWISE))
def test_pairwise_matches_numpy_reference(kind):
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 7), random_boxes(rng, 5)
    got = keras.ops.convert_to_numpy(PAIRWISE[kind](a, b))
    want = np_metric(kind, a[:, None, :], b[None, :, :])
    assert got.shape == (7, 5)
    np.testing.assert_allclose(got, want, atol=2e-6)
    # element-wise on the same pairs agrees with the pairwise table.
    ew = keras.ops.convert_to_numpy(ELEMENTWISE[kind](a[:, None, :], b[None, :, :]))
    np.testing.assert_allclose(ew, got, atol=1e-7)


def test_hand_computed_values():
    # IoU: two 2x2 squares overlapping in a 1x1 square: 1 / (4 + 4 - 1).
    assert float(zops.iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0]) == pytest.approx(1 / 7, abs=1e-7)
    # Two unit squares one unit apart: IoU 0, enclosing box 3x1, union 2.
    a, b = [[0, 0, 1, 1]], [[2, 0, 3, 1]]
    assert float(zops.giou(a, b)[0, 0]) == pytest.approx(-1 / 3, abs=1e-7)
    # DIoU: centres 2 apart, enclosing diagonal^2 = 3^2 + 1^2.
    assert float(zops.diou(a, b)[0, 0]) == pytest.approx(-4 / 10, abs=1e-7)
    # CIoU: 2x2 vs 4x2 sharing a corner: IoU 1/2, rho^2 = 1, c^2 = 20,
    # v = 4/pi^2 (atan 2 - atan 1)^2, alpha = v / (1 - 1/2 + v).
    v = 4 / math.pi**2 * (math.atan(2.0) - math.atan(1.0)) ** 2
    want = 0.5 - 1 / 20 - v / (0.5 + v) * v
    got = float(zops.elementwise_ciou([0, 0, 2, 2], [0, 0, 4, 2]))
    assert got == pytest.approx(want, abs=1e-6)
    assert got == pytest.approx(0.446752, abs=1e-6)
    # Areas, with a negative width clamped to 0.
    np.testing.assert_allclose(zops.box_area([[0, 0, 2, 3], [5, 5, 4, 9]]), [6.0, 0.0])


def test_box_formats_give_the_same_iou():
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 4), random_boxes(rng, 3)
    want = keras.ops.convert_to_numpy(zops.ciou(a, b))
    for fmt in ("yxyx", "xywh", "center_xywh", "center_yxhw"):
        got = zops.ciou(
            zops.convert_format(a, "xyxy", fmt), zops.convert_format(b, "xyxy", fmt), fmt
        )
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, atol=1e-5, err_msg=fmt)
    # Relative boxes: IoU is invariant to scaling each axis.
    rel = {"height": 120.0, "width": 150.0}
    ra = zops.convert_format(a, "xyxy", "rel_xyxy", **rel)
    rb = zops.convert_format(b, "xyxy", "rel_xyxy", **rel)
    np.testing.assert_allclose(zops.iou(ra, rb, "rel_xyxy"), zops.iou(a, b), atol=1e-5)


def test_batched_pairwise_and_broadcast_elementwise():
    rng = np.random.default_rng(3)
    a = np.stack([random_boxes(rng, 4), random_boxes(rng, 4)])  # (2, 4, 4)
    b = np.stack([random_boxes(rng, 6), random_boxes(rng, 6)])  # (2, 6, 4)
    got = keras.ops.convert_to_numpy(zops.giou(a, b))
    assert got.shape == (2, 4, 6)
    for i in range(2):
        np.testing.assert_allclose(got[i], zops.giou(a[i], b[i]), atol=1e-7)
    # element-wise broadcasting: (4, 4) against one (4,) box.
    ew = keras.ops.convert_to_numpy(zops.elementwise_diou(a[0], b[0, 0]))
    np.testing.assert_allclose(ew, np_metric("diou", a[0], b[0, 0]), atol=2e-6)


def test_cross_check_with_keras_bounding_boxes():
    rng = np.random.default_rng(4)
    a, b = random_boxes(rng, 6), random_boxes(rng, 6)
    kiou = keras.utils.bounding_boxes.compute_iou(a, b, "xyxy")
    np.testing.assert_allclose(zops.iou(a, b), kiou, atol=1e-5)
    # Keras's CIoU is element-wise (it adds eps to heights: close, not bit-equal).
    kciou = keras.utils.bounding_boxes.compute_ciou(a, b, "xyxy")
    np.testing.assert_allclose(zops.elementwise_ciou(a, b), kciou, atol=1e-4)


def test_bad_format_names_are_echoed():
    with pytest.raises(ValueError, match="box_format='xyxz'"):
        zops.iou([[0, 0, 1, 1]], [[0, 0, 1, 1]], box_format="xyxz")
    with pytest.raises(ValueError, match="target='cxcywh'"):
        zops.convert_format([[0.0, 0.0, 1.0, 1.0]], "xyxy", "cxcywh")
    with pytest.raises(ValueError, match="shape"):
        zops.iou([[0, 0, 1]], [[0, 0, 1, 1]])
    assert zops.check_box_format("CENTER_XYWH") == "center_xywh"


# --- degenerate boxes --------------------------------------------------------------------------

DEGENERATE_PAIRS = {
    "all_zero": ([0, 0, 0, 0], [0, 0, 0, 0]),
    "zero_vs_box": ([0, 0, 0, 0], [1, 1, 3, 4]),
    "identical": ([1, 2, 5, 7], [1, 2, 5, 7]),
    "far_apart": ([0, 0, 1, 1], [1e4, 1e4, 1e4 + 1, 1e4 + 1]),
    "negative_width": ([3, 0, 1, 2], [0, 0, 2, 2]),
    "negative_both": ([3, 3, 1, 1], [3, 3, 1, 1]),
    "zero_height_line": ([0, 1, 4, 1], [0, 1, 4, 1]),
    "point_inside": ([1, 1, 1, 1], [0, 0, 2, 2]),
}


@pytest.mark.parametrize("kind", sorted(ELEMENTWISE))
def test_degenerate_values_and_gradients_are_finite(kind):
    pairs = np.array(list(DEGENERATE_PAIRS.values()), np.float32)  # (P, 2, 4)
    a, b = tf.Variable(pairs[:, 0]), tf.Variable(pairs[:, 1])
    lo, hi = BOUNDS[kind]
    for fn, reduce in ((ELEMENTWISE[kind], lambda x: x), (PAIRWISE[kind], tf.linalg.diag_part)):
        with tf.GradientTape() as tape:
            value = reduce(fn(a, b))
            loss = tf.reduce_sum(1.0 - value)
        grads = tape.gradient(loss, [a, b])
        value = value.numpy()
        assert np.all(np.isfinite(value)), dict(zip(DEGENERATE_PAIRS, value, strict=True))
        assert np.all(value >= lo - 1e-6) and np.all(value <= hi + 1e-6), value
        for g in grads:
            assert np.all(np.isfinite(g.numpy())), g
    named = dict(zip(DEGENERATE_PAIRS, value, strict=True))
    assert named["identical"] == pytest.approx(1.0, abs=1e-6)
    assert named["all_zero"] == pytest.approx(0.0, abs=1e-6)
    assert named["far_apart"] <= 1e-6  # no overlap
    np.testing.assert_allclose(value, np_metric(kind, pairs[:, 0], pairs[:, 1]), atol=1e-5)


def test_ciou_gradient_treats_alpha_as_constant():
    a0 = np.array([1.0, 2.0, 4.0, 7.0])
    b = np.array([2.0, 1.0, 6.0, 5.0])
    v = 4 / np.pi**2 * (np.arctan2(4, 4) - np.arctan2(3, 5)) ** 2
    iou0 = np_metric("iou", a0, b)
    alpha0 = v / (1 - iou0 + v)
    h = 1e-6
    numeric = np.array(
        [
            (
                np_metric("ciou", a0 + h * e, b, frozen_alpha=alpha0)
                - np_metric("ciou", a0 - h * e, b, frozen_alpha=alpha0)
            )
            / (2 * h)
            for e in np.eye(4)
        ]
    )
    var = tf.Variable(a0, dtype=tf.float64)
    with tf.GradientTape() as tape:
        value = zops.elementwise_ciou(var, tf.constant(b))
    grad = tape.gradient(value, var).numpy()
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


# --- properties ---------------------------------------------------------------------------------

coord = st.integers(-50, 50)
extent = st.integers(0, 30)


@st.composite
def int_boxes(draw, min_extent=0):
    x, y = draw(coord), draw(coord)
    w, h = draw(st.integers(min_extent, 30)), draw(st.integers(min_extent, 30))
    return [x, y, x + w, y + h]


float_box = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32), min_size=4, max_size=4
)


@settings(max_examples=40, deadline=None)
@given(st.lists(int_boxes(), min_size=1, max_size=5), st.lists(int_boxes(), min_size=1, max_size=5))
def test_iou_symmetric(a, b):
    for kind in ("iou", "giou", "diou", "ciou"):
        ab = keras.ops.convert_to_numpy(PAIRWISE[kind](a, b))
        ba = keras.ops.convert_to_numpy(PAIRWISE[kind](b, a))
        np.testing.assert_allclose(ab, ba.T, atol=1e-6, err_msg=kind)


@settings(max_examples=30, deadline=None)
@given(st.lists(int_boxes(min_extent=1), min_size=1, max_size=8))
def test_iou_of_a_box_with_itself_is_one(boxes):
    for kind in ("iou", "giou", "diou", "ciou"):
        value = keras.ops.convert_to_numpy(ELEMENTWISE[kind](boxes, boxes))
        np.testing.assert_allclose(value, 1.0, atol=1e-6, err_msg=kind)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(float_box, float_box), min_size=1, max_size=8))
def test_bounds_on_arbitrary_boxes(pairs):
    # Arbitrary floats: corners in any order, zero/negative extents.
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    for kind, (lo, hi) in BOUNDS.items():
        value = keras.ops.convert_to_numpy(ELEMENTWISE[kind](a, b))
        assert np.all(np.isfinite(value)), kind
        assert np.all(value >= lo - 1e-6) and np.all(value <= hi + 1e-6), (kind, value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(int_boxes(), int_boxes(), coord, coord), min_size=1, max_size=8))
def test_translation_invariance(cases):
    a = np.array([c[0] for c in cases], np.float32)
    b = np.array([c[1] for c in cases], np.float32)
    shift = np.array([[dx, dy, dx, dy] for _, _, dx, dy in cases], np.float32)
    for kind in ("iou", "giou", "diou", "ciou"):
        before = keras.ops.convert_to_numpy(ELEMENTWISE[kind](a, b))
        after = keras.ops.convert_to_numpy(ELEMENTWISE[kind](a + shift, b + shift))
        np.testing.assert_allclose(after, before, atol=1e-6, err_msg=kind)


@settings(max_examples=50, deadline=None)
@given(st.lists(int_boxes(), min_size=1, max_size=6))
def test_format_round_trip(boxes):
    boxes = np.array(boxes, np.float32)
    centre = zops.convert_format(boxes, "xyxy", "center_xywh")
    back = keras.ops.convert_to_numpy(zops.convert_format(centre, "center_xywh", "xyxy"))
    np.testing.assert_allclose(back, boxes, atol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(centre)[:, 2:], boxes[:, 2:] - boxes[:, :2]
    )
