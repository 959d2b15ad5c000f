"""Landmark model: outputs, soft-argmax, training step, .keras round trip, export in pixels."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.landmarks.loss import LandmarkLoss
from zoo.landmarks.model import (
    DEFAULT_HEAD,
    HEADS,
    LandmarkModel,
    SoftArgmax2D,
    build_landmark_model,
    pixel_landmark_model,
    serving_outputs_fn,
)

SHAPE = (64, 64, 3)


def _batch(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *SHAPE)).astype("float32")


def _targets(n=2, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "presence": np.array([1.0, 0.0] * (n // 2), "float32"),
        "landmarks": rng.uniform(0.2, 0.8, (n, k, 2)).astype("float32"),
        "visibility": np.ones((n, k), "float32"),
    }


@pytest.mark.parametrize("head", HEADS)
def test_named_outputs_shapes_and_ranges(head):
    model = build_landmark_model(3, input_shape=SHAPE, head=head)
    out = model(_batch())
    assert set(out) == {"presence", "landmarks"}
    assert tuple(out["presence"].shape) == (2, 1) and tuple(out["landmarks"].shape) == (2, 3, 2)
    assert np.all((out["presence"] > 0) & (out["presence"] < 1))
    assert np.all((out["landmarks"] >= 0) & (out["landmarks"] <= 1))
    assert model.head == head and DEFAULT_HEAD in HEADS


def test_soft_argmax_golden_and_numpy_reference():
    logits = np.full((1, 4, 4, 2), -50.0, "float32")
    logits[0, 1, 3, 0] = 50.0  # row 1, column 3 -> x = 3.5 / 4, y = 1.5 / 4
    out = np.asarray(SoftArgmax2D()(logits))
    m = 2 / 256  # the prior mass at the centre: (x + m / 2) / (1 + m)
    np.testing.assert_allclose(out[0, 0], (np.array([0.875, 0.375]) + m / 2) / (1 + m), atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [0.5, 0.5], atol=1e-6)  # uniform -> the centre
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (2, 3, 5, 4)).astype("float32")
    got = np.asarray(SoftArgmax2D(beta=2.0)(logits))
    for b in range(2):
        for k in range(4):
            p = np.exp(2.0 * logits[b, :, :, k].astype(np.float64))
            p /= p.sum()
            ys, xs = np.mgrid[0:3, 0:5]
            expected = [(p * (xs + 0.5) / 5).sum(), (p * (ys + 0.5) / 3).sum()]
            expected = (np.array(expected) + m / 2) / (1 + m)
            np.testing.assert_allclose(got[b, k], expected, rtol=1e-5)


def test_soft_argmax_is_differentiable():
    logits = tf.Variable(np.zeros((1, 4, 4, 1), "float32"))
    with tf.GradientTape() as tape:
        x = SoftArgmax2D()(logits)[0, 0, 0]
    grad = tape.gradient(x, logits).numpy()[0, :, :, 0]
    assert np.all(grad[:, 3] > 0) and np.all(grad[:, 0] < 0)  # pulling mass right raises x


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_fit_reduces_the_landmark_loss(head):
    model = build_landmark_model(3, input_shape=SHAPE, head=head)
    model.compile(
        keras.optimizers.Adam(1e-3), LandmarkLoss("l1", coordinate_weight=5.0), jit_compile=False
    )
    x, y = _batch(4), _targets(4)
    # training-mode losses: 20 steps are too few for the batch-norm statistics used by evaluate
    losses = model.fit(x, y, epochs=20, batch_size=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and min(losses[-5:]) < 0.8 * losses[0]


def test_compute_loss_uses_the_whole_target_dict():
    model = build_landmark_model(3, input_shape=SHAPE, head="regression")
    model.compile("adam", LandmarkLoss("l2"), jit_compile=False)
    x, y = _batch(), _targets()
    y_pred = model(x, training=False)
    expected = float(LandmarkLoss("l2")(y, y_pred))
    np.testing.assert_allclose(float(model.compute_loss(x, y, y_pred)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="trains on targets"):
        model.compute_loss(x, y["landmarks"], y_pred)


@pytest.mark.slow
def test_keras_file_round_trip_keeps_config_weights_and_loss(tmp_path):
    model = build_landmark_model(3, input_shape=SHAPE, head="heatmap", heatmap_stride=8)
    model.compile(
        keras.optimizers.Adam(1e-3), LandmarkLoss("l1", coordinate_weight=7.0), jit_compile=False
    )
    x = _batch()
    model.fit(x, _targets(), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, LandmarkModel)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    for key in ("presence", "landmarks"):
        np.testing.assert_allclose(loaded(x)[key], model(x)[key], atol=1e-6)
    a, b = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for key in ("presence", "landmarks"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-4)
    assert isinstance(loaded.landmark_loss, LandmarkLoss)
    assert loaded.landmark_loss.coordinate_loss == "l1"
    assert loaded.landmark_loss.coordinate_weight == 7.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"num_landmarks": 0},
            "num_landmarks must be an integer >= 1. Received: num_landmarks=0",
        ),
        ({"head": "dense"}, "head must be one of .* Received: head='dense'"),
        ({"backbone": "resnet"}, "backbone must be one of .* Received: backbone='resnet'"),
        ({"input_shape": (60, 64, 3)}, "multiples of 16"),
        ({"heatmap_stride": 3}, "heatmap_stride must be"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"unknown_flag": 1}, "unknown_flag"),
    ],
)
def test_bad_arguments_echo_the_value(kwargs, match):
    args = {"num_landmarks": 3, "input_shape": SHAPE, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        build_landmark_model(**args)


@pytest.mark.slow
def test_named_backbone_feeds_both_heads():
    for head in HEADS:
        model = build_landmark_model(
            5,
            input_shape=(96, 96, 3),
            backbone="mobilenet_v3_small",
            head=head,
            width_multiplier=0.75,
        )
        out = model(np.zeros((1, 96, 96, 3), "float32"))
        assert tuple(out["landmarks"].shape) == (1, 5, 2)


@pytest.mark.parametrize("head", HEADS)
def test_predict_returns_presence_and_points_in_input_pixels(head):
    model = build_landmark_model(3, input_shape=(64, 96, 3), head=head)
    x = np.random.default_rng(4).uniform(0, 255, (2, 64, 96, 3)).astype("float32")
    raw = model(x, training=False)
    out = model.predict(x, verbose=0)
    assert set(out) == {"presence", "landmarks"} and out["presence"].shape == (2,)
    np.testing.assert_allclose(out["presence"], np.asarray(raw["presence"])[:, 0], atol=1e-6)
    np.testing.assert_allclose(
        out["landmarks"], np.asarray(raw["landmarks"]) * np.array([96, 64]), atol=1e-3
    )


def test_serving_outputs_are_in_input_pixels():
    model = build_landmark_model(3, input_shape=SHAPE, head="regression")
    x = _batch()
    normalized = np.asarray(model(x)["landmarks"])
    pixels = pixel_landmark_model(model)(x)
    assert tuple(pixels["presence"].shape) == (2,)
    np.testing.assert_allclose(pixels["landmarks"], normalized * 64, rtol=1e-6)
    # with image shapes (height 128, width 32) the x scale is 32 and the y scale 128
    out = serving_outputs_fn((64, 64))(model(x), tf.constant([[128, 32], [128, 32]]))
    np.testing.assert_allclose(out["landmarks"][..., 0], normalized[..., 0] * 32, rtol=1e-6)
    np.testing.assert_allclose(out["landmarks"][..., 1], normalized[..., 1] * 128, rtol=1e-6)


@pytest.mark.slow
def test_saved_model_returns_points_in_pixels_of_any_input_size(tmp_path):
    from zoo.export import export_saved_model

    model = build_landmark_model(3, input_shape=SHAPE, head="heatmap")
    path = export_saved_model(
        model, tmp_path, "lm", version=1, outputs_fn=serving_outputs_fn(SHAPE[:2])
    )
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    big = np.random.default_rng(3).uniform(0, 255, (1, 128, 96, 3)).astype("float32")
    out = serve(images=tf.constant(big))
    assert set(out) == {"presence", "landmarks"}
    resized = tf.image.resize(big, SHAPE[:2]).numpy()
    expected = np.asarray(model(resized)["landmarks"]) * np.array([96, 128])
    np.testing.assert_allclose(out["landmarks"].numpy(), expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        out["presence"].numpy(), np.asarray(model(resized)["presence"])[:, 0], atol=1e-5
    )


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_tflite_fp32_and_int8_track_the_keras_model(head, tmp_path):
    from zoo.export import export_tflite, run_tflite

    model = build_landmark_model(3, input_shape=SHAPE, head=head)
    pixels = pixel_landmark_model(model)
    x = _batch(8, seed=5)
    reference = pixels(x)
    fp32 = export_tflite(pixels, tmp_path / "m.tflite")
    got = run_tflite(fp32, x)
    np.testing.assert_allclose(got["landmarks"], reference["landmarks"], atol=1e-3)
    int8 = export_tflite(pixels, tmp_path / "m8.tflite", "int8", representative_dataset=x)
    got8 = run_tflite(int8, x)
    # untrained outputs sit near the centre; int8 must stay within a couple of pixels
    assert np.max(np.abs(got8["landmarks"] - reference["landmarks"])) < 3.0
    assert np.max(np.abs(got8["presence"] - reference["presence"])) < 0.05
