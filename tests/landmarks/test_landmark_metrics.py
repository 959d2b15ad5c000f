"""Landmark metrics: hand-computed NME, NumPy loop references, CED/AUC, presence, plots."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.landmarks.metrics import (
    ced_auc,
    ced_curve,
    collect_predictions,
    failure_rate,
    landmark_metrics,
    nme,
    normalizing_distance,
    presence_accuracy,
    save_ced_plot,
    save_landmark_grid,
)

# Two eyes 10 px apart and a third point; errors 0, 0 and 2 px -> NME = (2 / 3) / 10.
TRUE = np.array([[[0, 0], [10, 0], [5, 5]]], float)
PRED = np.array([[[0, 0], [10, 0], [5, 3]]], float)


def test_nme_inter_ocular_by_hand():
    np.testing.assert_allclose(nme(PRED, TRUE), [2 / 3 / 10])


def test_nme_leaves_out_hidden_points_and_absent_objects():
    true = np.concatenate([TRUE, TRUE])
    pred = np.concatenate([PRED, PRED + 100])
    vis = np.array([[1, 1, 0], [1, 1, 1]])
    got = nme(pred, true, visibility=vis, presence=[1, 0])
    np.testing.assert_allclose(got[0], 0.0)  # the only wrong point is hidden
    assert np.isnan(got[1])  # absent object
    summary = landmark_metrics(pred, true, vis, [0.9, 0.2], [1, 0])
    assert summary["num_images"] == 1 and summary["nme"] == 0.0
    assert summary["presence_accuracy"] == 1.0


def test_nme_box_diagonal_by_hand_and_with_boxes():
    # tight box of the true points: 10 x 5 -> diagonal sqrt(125)
    np.testing.assert_allclose(
        nme(PRED, TRUE, normalization="box_diagonal"), [2 / 3 / np.sqrt(125)]
    )
    np.testing.assert_allclose(
        nme(PRED, TRUE, normalization="box_diagonal", boxes=[[0, 0, 30, 40]]), [2 / 3 / 50]
    )
    # hidden points do not make the tight box
    d = normalizing_distance(TRUE, [[1, 1, 0]], "box_diagonal")
    np.testing.assert_allclose(d, [10.0])


def test_eye_groups_use_the_mean_of_each_group():
    true = np.array([[[0, 0], [2, 0], [10, 0], [12, 0]]], float)  # eye centres at 1 and 11
    d = normalizing_distance(true, eye_indices=((0, 1), (2, 3)))
    np.testing.assert_allclose(d, [10.0])


def _nme_loop(pred, true, vis, left, right):
    out = []
    for i in range(len(pred)):
        d = np.hypot(*(true[i, left] - true[i, right]))
        errors = [np.hypot(*(pred[i, k] - true[i, k])) for k in range(pred.shape[1]) if vis[i, k]]
        out.append(np.mean(errors) / d if errors and d > 0 else np.nan)
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 100_000))
def test_nme_matches_a_loop_reference(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 6), rng.integers(2, 7)
    true = rng.uniform(0, 100, (n, k, 2))
    pred = true + rng.normal(0, 3, (n, k, 2))
    vis = rng.uniform(size=(n, k)) < 0.8
    np.testing.assert_allclose(
        nme(pred, true, vis, eye_indices=(0, 1)), _nme_loop(pred, true, vis, 0, 1), rtol=1e-10
    )


def test_failure_rate_ced_and_auc_by_hand():
    errors = np.array([0.0, 0.05, 0.1, 0.2, np.nan])
    assert failure_rate(errors) == 0.25  # only 0.2 is > 0.1; NaN left out
    thresholds, fractions = ced_curve(errors, 0.1, 3)  # 0, 0.05, 0.1
    np.testing.assert_allclose(thresholds, [0, 0.05, 0.1])
    np.testing.assert_allclose(fractions, [0.25, 0.5, 0.75])
    # AUC = mean(max(0, 1 - e / 0.1)) = (1 + 0.5 + 0 + 0) / 4
    assert ced_auc(errors) == pytest.approx(0.375)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 100_000))
def test_auc_equals_the_trapezoid_integral_of_the_ced(seed):
    errors = np.random.default_rng(seed).uniform(0, 0.15, 30)
    thresholds, fractions = ced_curve(errors, 0.1, 20001)
    reference = np.trapezoid(fractions, thresholds) / 0.1
    assert ced_auc(errors) == pytest.approx(reference, abs=2e-4)


def test_presence_accuracy():
    assert presence_accuracy([0.9, 0.4, 0.6, 0.1], [1, 0, 0, 0]) == 0.75
    assert presence_accuracy([0.9, 0.4], [1, 1], threshold=0.3) == 1.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="normalization must be one of"):
        nme(PRED, TRUE, normalization="face")
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        nme(PRED[:, :2], TRUE)


def test_collect_predictions_converts_targets_to_pixels():
    images = np.zeros((2, 8, 16, 3), np.float32)
    targets = {
        "presence": np.array([1.0, 0.0]),
        "landmarks": np.array([[[0.5, 0.25]], [[0.0, 0.0]]]),
        "visibility": np.array([[1.0], [0.0]]),
    }

    def predict(x):
        return {"presence": np.array([[0.8], [0.1]]), "landmarks": np.array([[[8, 3]], [[1, 1]]])}

    got = collect_predictions(predict, [(images, targets)], (8, 16), keep_images=1)
    np.testing.assert_allclose(got["true_landmarks"][0], [[8.0, 2.0]])
    assert got["images"].shape == (1, 8, 16, 3) and got["pred_presence"].shape == (2,)


def test_plots_are_written(tmp_path):
    ced = save_ced_plot({"a": [0.01, 0.05], "b": [0.02, np.nan]}, tmp_path / "ced.png")
    images = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3))
    grid = save_landmark_grid(
        images, TRUE.repeat(3, 0), TRUE.repeat(3, 0), path=tmp_path / "grid.png", columns=2
    )
    for path in (ced, grid):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
