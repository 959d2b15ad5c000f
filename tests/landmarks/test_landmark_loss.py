"""LandmarkLoss: hand-computed golden values (absent object, hidden landmark), masking, config."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.landmarks.loss import LandmarkLoss, landmark_loss, landmark_loss_terms, wing

# Three examples, K = 2 landmarks, normalized coordinates.
#  0: present, both visible: diffs (0.1, 0) and (0, -0.2); predicted presence 0.8
#  1: absent (presence 0): the points are garbage and must not count; predicted presence 0.3
#  2: present, landmark 1 hidden (its target is NaN: must not leak); diff of landmark 0 is
#     (0, 0.05); predicted presence 0.9
Y_TRUE = {
    "presence": np.array([1.0, 0.0, 1.0], "float32"),
    "landmarks": np.array(
        [[[0.5, 0.5], [0.2, 0.3]], [[0.0, 0.0], [0.0, 0.0]], [[0.4, 0.4], [np.nan, np.nan]]],
        "float32",
    ),
    "visibility": np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]], "float32"),
}
Y_PRED = {
    "presence": np.array([[0.8], [0.3], [0.9]], "float32"),
    "landmarks": np.array(
        [[[0.6, 0.5], [0.2, 0.1]], [[0.9, 0.9], [0.9, 0.9]], [[0.4, 0.45], [0.1, 0.1]]],
        "float32",
    ),
}
BCE = [-math.log(0.8), -math.log(0.7), -math.log(0.9)]
# Coordinate terms, sum over visible points divided by K = 2, computed by hand:
W, EPS = 0.1, 0.02
C = W - W * math.log(1 + W / EPS)
COORD = {
    "l1": [(0.1 + 0.2) / 2, 0.0, 0.05 / 2],
    "l2": [(0.01 + 0.04) / 2, 0.0, 0.0025 / 2],
    # wing(0.1) = 0.1 - C (= 0.1 ln 6 by continuity), wing(0.2) = 0.2 - C, wing(0.05) = 0.1 ln 3.5
    "wing": [((0.1 - C) + (0.2 - C)) / 2, 0.0, 0.1 * math.log(3.5) / 2],
}


@pytest.mark.parametrize("kind", ["l1", "l2", "wing"])
def test_golden_per_example(kind):
    got = np.asarray(landmark_loss(Y_TRUE, Y_PRED, kind))
    expected = np.array(BCE) + np.array(COORD[kind])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_golden_values_written_out():
    # The same numbers as literals, so a change in the constants above cannot hide a regression.
    np.testing.assert_allclose(COORD["wing"], [0.2291759, 0.0, 0.0626381], atol=1e-6)
    got = np.asarray(landmark_loss(Y_TRUE, Y_PRED, "l1"))
    np.testing.assert_allclose(got, [0.3731435, 0.3566749, 0.1303605], atol=1e-6)


def test_absent_object_has_only_the_presence_term():
    bce, coords = landmark_loss_terms(Y_TRUE, Y_PRED, "l2")
    assert float(coords[1]) == 0.0
    np.testing.assert_allclose(float(bce[1]), -math.log(0.7), rtol=1e-5)


def test_hidden_landmark_and_nan_target_do_not_leak_into_value_or_gradient():
    pred = tf.Variable(Y_PRED["landmarks"])
    with tf.GradientTape() as tape:
        loss = landmark_loss(Y_TRUE, {"presence": Y_PRED["presence"], "landmarks": pred}, "wing")
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, pred).numpy()
    assert np.all(np.isfinite(loss.numpy())) and np.all(np.isfinite(grad))
    assert np.all(grad[1] == 0)  # absent object
    assert np.all(grad[2, 1] == 0)  # hidden landmark
    assert np.any(grad[2, 0] != 0) and np.any(grad[0] != 0)


def test_class_reduces_over_batch_and_applies_weights():
    loss = LandmarkLoss("l1", presence_weight=2.0, coordinate_weight=3.0)
    got = float(loss(Y_TRUE, Y_PRED))
    expected = np.mean(2.0 * np.array(BCE) + 3.0 * np.array(COORD["l1"]))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_visibility_is_a_weight_and_optional():
    y_true = {k: v for k, v in Y_TRUE.items() if k != "visibility"}
    y_true["landmarks"] = np.nan_to_num(Y_TRUE["landmarks"])
    all_visible = np.asarray(landmark_loss(y_true, Y_PRED, "l1"))
    # example 2 without visibility: both points count, |0.05| + (0.1 + 0.1) (NaN -> 0) over K = 2
    np.testing.assert_allclose(all_visible[2], BCE[2] + (0.05 + 0.2) / 2, rtol=1e-5)
    half = dict(y_true, visibility=np.array([[0.5, 0.5], [1, 1], [1, 1]], "float32"))
    got = np.asarray(landmark_loss(half, Y_PRED, "l1"))
    np.testing.assert_allclose(got[0], BCE[0] + 0.5 * COORD["l1"][0], rtol=1e-5)


def test_config_round_trip():
    loss = LandmarkLoss("l2", presence_weight=0.5, coordinate_weight=4.0, wing_width=0.2)
    config = loss.get_config()
    again = LandmarkLoss.from_config(config)
    assert json.dumps(again.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, LandmarkLoss) and restored.coordinate_loss == "l2"
    np.testing.assert_allclose(float(restored(Y_TRUE, Y_PRED)), float(loss(Y_TRUE, Y_PRED)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coordinate_loss": "l3"}, "coordinate_loss must be one of"),
        (
            {"presence_weight": -1},
            "presence_weight must be a number >= 0. Received: presence_weight=-1",
        ),
        ({"wing_epsilon": 0}, "wing_epsilon must be a number > 0"),
    ],
)
def test_bad_arguments_echo_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LandmarkLoss(**kwargs)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.001, 0.5), st.floats(0.001, 0.1))
def test_wing_is_continuous_at_the_width_and_increasing(width, epsilon):
    at = np.array([width * (1 - 1e-6), width * (1 + 1e-6)], "float32")
    values = np.asarray(wing(at, width, epsilon))
    assert abs(values[1] - values[0]) < 1e-4 * max(1.0, values[0])
    xs = np.linspace(0, 2 * width, 50).astype("float32")
    assert np.all(np.diff(np.asarray(wing(xs, width, epsilon))) > -1e-7)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_coordinate_term_is_zero_for_exact_points_and_positive_otherwise(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, (4, 3, 2)).astype("float32")
    y_true = {"presence": np.ones(4, "float32"), "landmarks": points}
    for kind in ("l1", "l2", "wing"):
        _, exact = landmark_loss_terms(y_true, {"presence": np.ones(4), "landmarks": points}, kind)
        assert np.all(np.asarray(exact) == 0)
        moved = points + rng.uniform(0.01, 0.1, points.shape).astype("float32")
        _, off = landmark_loss_terms(y_true, {"presence": np.ones(4), "landmarks": moved}, kind)
        assert np.all(np.asarray(off) > 0)
