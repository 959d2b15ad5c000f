"""zoo.ops.anchors: k-means anchors (1 - IoU distance) and YOLO grid decoding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.ops.anchors import kmeans_anchors, shape_iou

CENTRES = np.array([[0.05, 0.08], [0.20, 0.12], [0.45, 0.60]])


def _clustered_boxes(n_per_cluster=200, jitter=0.05, seed=0):
    rng = np.random.default_rng(seed)
    parts = [c * np.exp(rng.normal(0.0, jitter, size=(n_per_cluster, 2))) for c in CENTRES]
    return np.concatenate(parts)


def test_shape_iou_golden():
    # [2, 1] vs [1, 1]: inter 1, union 2 + 1 - 1 = 2 -> 0.5; vs [1, 2]: inter 1, union 3 -> 1/3
    got = shape_iou([[2.0, 1.0]], [[1.0, 1.0], [1.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(got, [[0.5, 1.0 / 3.0, 1.0]])


def test_kmeans_recovers_known_clusters():
    boxes = _clustered_boxes()
    anchors, mean_iou = kmeans_anchors(boxes, k=3, seed=0)
    assert anchors.shape == (3, 2) and anchors.dtype == np.float32
    areas = anchors[:, 0] * anchors[:, 1]
    assert np.all(np.diff(areas) > 0), "anchors must be sorted by area"
    np.testing.assert_allclose(anchors, CENTRES, rtol=0.05)
    # The reported mean IoU is the mean best-anchor IoU of the boxes, and high for tight clusters.
    np.testing.assert_allclose(mean_iou, shape_iou(boxes, anchors).max(axis=1).mean(), rtol=1e-5)
    assert mean_iou > 0.9


def test_kmeans_exact_clusters_and_determinism():
    boxes = np.concatenate([np.full((30, 2), 0.1), np.full((20, 2), 0.5), [[0.3, 0.2]] * 10])
    anchors, mean_iou = kmeans_anchors(boxes, k=3, seed=3)
    np.testing.assert_allclose(anchors, [[0.1, 0.1], [0.3, 0.2], [0.5, 0.5]], rtol=1e-6)
    assert mean_iou == pytest.approx(1.0)
    again, again_iou = kmeans_anchors(boxes, k=3, seed=3)
    np.testing.assert_array_equal(anchors, again)
    assert again_iou == mean_iou


def test_kmeans_median_and_k1():
    boxes = np.array([[1.0, 1.0], [2.0, 2.0], [9.0, 9.0]])
    anchors, _ = kmeans_anchors(boxes, k=1, center="median")
    np.testing.assert_allclose(anchors, [[2.0, 2.0]])
    anchors, _ = kmeans_anchors(boxes, k=1, center="mean")
    np.testing.assert_allclose(anchors, [[4.0, 4.0]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(boxes_wh=[[0.1, 0.2, 0.3]], k=1), r"shape=\(1, 3\)"),
        (dict(boxes_wh=[[0.1, 0.2], [0.0, 0.3]], k=1), r"boxes_wh\[1\] = \[0.0, 0.3\]"),
        (dict(boxes_wh=[[0.1, 0.2], [0.1, 0.2]], k=2), "k=2 is larger"),
        (dict(boxes_wh=[[0.1, 0.2]], k=0), "k=0"),
        (dict(boxes_wh=[[0.1, 0.2]], k=1, center="mode"), "center='mode'"),
        (dict(boxes_wh=[[0.1, 0.2]], k=1, max_iter=0), "max_iter=0"),
    ],
)
def test_kmeans_errors_echo_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kmeans_anchors(**kwargs)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=2**16),
)
def test_kmeans_properties(k, seed):
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0.01, 1.0, size=(40, 2))
    anchors, mean_iou = kmeans_anchors(boxes, k=k, seed=seed, n_init=1)
    assert anchors.shape == (k, 2)
    assert 0.0 < mean_iou <= 1.0
    np.testing.assert_allclose(mean_iou, shape_iou(boxes, anchors).max(axis=1).mean(), rtol=1e-5)
    # Anchors lie inside the range of the boxes they average.
    assert np.all(anchors >= boxes.min(axis=0) - 1e-6) and np.all(
        anchors <= boxes.max(axis=0) + 1e-6
    )
