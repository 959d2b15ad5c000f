"""YOLO grid coding: cell offsets and the decoding of both heads (golden values)."""

import math

import numpy as np
import pytest

from zoo.detection.grid import decode_yolo_grid, grid_cell_offsets

CENTRES = np.array([[0.05, 0.08], [0.20, 0.12], [0.45, 0.60]])


def _clustered_boxes(n_per_cluster=200, jitter=0.05, seed=0):
    rng = np.random.default_rng(seed)
    parts = [c * np.exp(rng.normal(0.0, jitter, size=(n_per_cluster, 2))) for c in CENTRES]
    return np.concatenate(parts)


def test_grid_cell_offsets():
    grid = grid_cell_offsets(3)
    assert grid.shape == (1, 3, 3, 1, 2)
    np.testing.assert_array_equal(grid[0, 2, 1, 0], [1.0, 2.0])  # row 2, column 1 -> (x=1, y=2)


def test_decode_v1_golden():
    # S = 2, B = 2, C = 3: raw zeros -> x = y = sigmoid(0) = 0.5, sqrt(w) = 0.5 -> w = 0.25.
    raw = np.zeros((1, 2, 2, 13), "float32")
    raw[0, 1, 0, 5:7] = [math.log(0.6 / 0.4), math.log(0.2 / 0.8)]  # box 1 of row 1, column 0
    raw[0, 1, 0, 7:9] = [math.log(0.6 / 0.4), math.log(0.4 / 0.6)]  # sqrt(w) 0.6, sqrt(h) 0.4
    raw[0, 1, 0, 9] = math.log(4.0)  # objectness 0.8
    raw[0, 1, 0, 10:] = [0.0, 0.0, math.log(2.0)]  # probs 1/4, 1/4, 1/2
    out = {k: np.asarray(v) for k, v in decode_yolo_grid(raw, num_classes=3).items()}
    assert out["boxes"].shape == (1, 2, 2, 2, 4) and out["class_probs"].shape == (1, 2, 2, 1, 3)
    # Cell (row 0, col 0), box 0: centre (0.5/2, 0.5/2) = (0.25, 0.25), w = h = 0.25.
    np.testing.assert_allclose(out["boxes"][0, 0, 0, 0], [0.125, 0.125, 0.375, 0.375], atol=1e-6)
    # Row 1, col 0, box 1: centre ((0 + 0.6)/2, (1 + 0.2)/2) = (0.3, 0.6), w 0.36, h 0.16.
    np.testing.assert_allclose(out["boxes"][0, 1, 0, 1], [0.12, 0.52, 0.48, 0.68], atol=1e-6)
    np.testing.assert_allclose(out["objectness"][0, 1, 0], [0.5, 0.8], atol=1e-6)
    np.testing.assert_allclose(out["class_probs"][0, 1, 0, 0], [0.25, 0.25, 0.5], atol=1e-6)


def test_decode_anchor_golden():
    anchors = [(0.2, 0.1), (0.5, 0.4)]
    raw = np.zeros((1, 1, 1, 2, 6), "float32")
    raw[0, 0, 0, 1, 2:4] = [math.log(1.5), 0.0]  # w = 0.5 * 1.5, h = 0.4
    raw[0, 0, 0, 0, 2] = 50.0  # clipped to exp(6) * 0.2
    out = {k: np.asarray(v) for k, v in decode_yolo_grid(raw, 1, anchors=anchors).items()}
    np.testing.assert_allclose(out["wh"][0, 0, 0, 1], [0.75, 0.4], rtol=1e-6)
    np.testing.assert_allclose(out["boxes"][0, 0, 0, 1], [0.125, 0.3, 0.875, 0.7], atol=1e-6)
    np.testing.assert_allclose(out["wh"][0, 0, 0, 0, 0], 0.2 * math.exp(6.0), rtol=1e-5)
    np.testing.assert_allclose(out["class_probs"], 1.0)  # one class


def test_decode_shape_errors():
    with pytest.raises(ValueError, match=r"\(batch, S, S, 13\).*shape=\(1, 2, 2, 12\)"):
        decode_yolo_grid(np.zeros((1, 2, 2, 12), "float32"), num_classes=3)
    with pytest.raises(ValueError, match=r"shape=\(1, 2, 2, 3, 8\)"):
        decode_yolo_grid(np.zeros((1, 2, 2, 3, 8), "float32"), 3, anchors=[(0.1, 0.1)] * 2)
