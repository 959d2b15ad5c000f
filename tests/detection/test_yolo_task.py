"""The YOLO task model owns its workflow: grid from the input, default loss, decoded predict,
thresholds on the model, and a .keras round trip with the compiled loss."""

import keras
import numpy as np
import pytest

from zoo import build_yolo
from zoo.data import synthetic_shapes
from zoo.detection import YoloLoss, fit_anchors, make_yolo_dataset, predict


@pytest.fixture(scope="module")
def data():
    return synthetic_shapes(16, image_size=(64, 64), num_classes=3, seed=2)


@pytest.fixture(scope="module")
def trained(data):
    anchors = fit_anchors(data, k=3)
    model = build_yolo(
        3,
        (64, 64, 3),
        anchors=anchors,
        backbone="darknet_nano",
        width_multiplier=0.25,
        xy_scale=2.0,
        score_threshold=0.01,
    )
    model.compile()
    ds = make_yolo_dataset(data, model.loss, (64, 64), batch_size=4, training=True)
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
    return model


def _images(data, n=3):
    return np.stack([e["images"] for e in data.dataset.take(n).as_numpy_iterator()]).astype(
        "float32"
    )


@pytest.mark.parametrize(
    ("backbone", "size", "grid"),
    [
        ("yolov1_fast", 448, 7),
        ("yolov1_fast", 128, 2),
        ("darknet_nano", 128, 16),
        ("darknet_nano", 96, 12),
    ],
)
def test_grid_follows_the_input_unless_given(backbone, size, grid):
    model = build_yolo(3, (size, size, 3), backbone=backbone, width_multiplier=0.125)
    assert model.grid_size == grid and model.output_shape[1:3] == (grid, grid)


def test_compile_without_a_loss_builds_yolo_loss_from_the_model(trained):
    loss = trained.loss
    assert isinstance(loss, YoloLoss)
    assert (loss.num_classes, loss.grid_size) == (3, trained.grid_size)
    np.testing.assert_allclose(loss.anchors, trained.anchors)
    assert loss.xy_scale == 2.0 and loss.neighbour_cells and loss.box_loss == "ciou"
    v1 = build_yolo(2, (128, 128, 3), width_multiplier=0.125)
    assert v1.yolo_loss().box_loss == "mse" and v1.yolo_loss().boxes_per_cell == 2
    assert v1.yolo_loss(lambda_coord=3.0).lambda_coord == 3.0


def test_predict_returns_decoded_detections_equal_to_zoo_detection_predict(trained, data):
    images = _images(data)
    out = trained.predict(images, verbose=0)
    assert set(out) == {"boxes", "scores", "classes", "num_detections"}
    assert out["boxes"].shape == (3, 100, 4) and out["classes"].dtype == np.int32
    assert np.all(out["boxes"] >= 0) and np.all(out["boxes"] <= 64)
    reference = predict(trained, list(images.astype("uint8")), score_threshold=0.01)
    for i, ref in enumerate(reference):
        n = int(out["num_detections"][i])
        assert n == len(ref["scores"])
        np.testing.assert_allclose(out["boxes"][i, :n], ref["boxes"], atol=1e-3)
        np.testing.assert_allclose(out["scores"][i, :n], ref["scores"], atol=1e-5)
        np.testing.assert_array_equal(out["classes"][i, :n], ref["classes"])


def test_thresholds_live_on_the_model(trained, data):
    images = _images(data)
    many = trained.predict(images, verbose=0)["num_detections"]
    trained.score_threshold = 0.99
    try:
        few = trained.predict(images, verbose=0)["num_detections"]
    finally:
        trained.score_threshold = 0.01
    assert np.all(few <= many) and few.sum() < many.sum()


def test_keras_round_trip_keeps_the_loss_and_the_predictions(trained, data, tmp_path):
    path = tmp_path / "yolo.keras"
    trained.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.loss, YoloLoss)
    assert loaded.loss.get_config() == trained.loss.get_config()
    images = _images(data)
    a, b = trained.predict(images, verbose=0), loaded.predict(images, verbose=0)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)
    np.testing.assert_allclose(trained(images), loaded(images), atol=1e-5)  # raw head too
