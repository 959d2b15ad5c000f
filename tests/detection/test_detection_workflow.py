"""zoo.detection beyond decoding: anchors from data, the training pipeline, COCO evaluation,
plots, and the verified export."""

import json

import numpy as np
import pytest

from zoo.data import synthetic_shapes
from zoo.detection import (
    YoloLoss,
    build_yolo,
    draw_detection_grid,
    encode_yolo_targets,
    export_yolo,
    fit_anchors,
    make_yolo_dataset,
    plot_pr_curves,
    yolo_eval,
)
from zoo.detection.evaluate import collect_detections
from zoo.detection.export import next_version, tflite_predict

ANCHORS = [(0.15, 0.15), (0.35, 0.3)]


@pytest.fixture(scope="module")
def data():
    return synthetic_shapes(12, image_size=(64, 64), seed=5, num_classes=3)


@pytest.fixture(scope="module")
def model():
    return build_yolo(3, (64, 64, 3), grid_size=4, anchors=ANCHORS, width_multiplier=0.125)


def _png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_fit_anchors_are_relative_sorted_and_match_kmeans_quality(data):
    anchors = fit_anchors(data, 3, seed=0)
    assert len(anchors) == 3
    areas = [w * h for w, h in anchors]
    assert areas == sorted(areas)
    assert all(0 < w <= 1 and 0 < h <= 1 for w, h in anchors)
    # every box's shape has some anchor overlapping it reasonably (k-means on 1 - IoU)
    shapes = []
    for element in data.dataset.as_numpy_iterator():
        b = element["bounding_boxes"]["boxes"]
        shapes.extend((b[:, 2:] - b[:, :2]) / 64.0)
    shapes = np.array(shapes)
    inter = np.minimum(shapes[:, None], np.array(anchors)[None]).prod(-1)
    union = shapes.prod(-1)[:, None] + np.prod(anchors, -1)[None] - inter
    assert (inter / union).max(axis=1).mean() > 0.5


def test_fit_anchors_on_a_small_set_fits_one_per_distinct_shape_with_a_warning(data):
    distinct = len(
        np.unique(
            np.round(
                np.concatenate(
                    [
                        (e["bounding_boxes"]["boxes"][:, 2:] - e["bounding_boxes"]["boxes"][:, :2])
                        / 64.0
                        for e in data.dataset.as_numpy_iterator()
                    ]
                ),
                6,
            ),
            axis=0,
        )
    )
    with pytest.warns(UserWarning, match=f"cannot give k=500 anchors; fitting {distinct}"):
        anchors = fit_anchors(data, 500)
    assert len(anchors) == distinct < 500


def test_fit_anchors_without_boxes_falls_back_to_yolov2_anchors():
    from zoo.detection.pipeline import YOLOV2_ANCHORS

    empty = synthetic_shapes(2, image_size=(32, 32), seed=0, num_classes=1, empty_fraction=1.0)
    with pytest.warns(UserWarning, match="no boxes .* using YOLOv2's 5 anchors"):
        anchors = fit_anchors(empty, 5)
    assert anchors == list(YOLOV2_ANCHORS) and len(anchors) == 5
    areas = [w * h for w, h in anchors]
    assert areas == sorted(areas)


def test_make_yolo_dataset_targets_equal_encoding_of_the_batch_boxes(data):
    loss = YoloLoss(3, 4, anchors=ANCHORS)
    ds = make_yolo_dataset(data, loss, (64, 64), batch_size=4, max_boxes=10)
    images, targets = next(iter(ds))
    assert images.dtype.name == "float32" and images.shape == (4, 64, 64, 3)
    assert float(np.max(images)) > 1.0  # 0-255 pixels, the model normalises
    assert targets.shape == (4, 4, 4, 2, 5 + 3)
    first = [e for e in data.dataset.take(4).as_numpy_iterator()]
    boxes = np.zeros((4, 10, 4), np.float32)
    labels = -np.ones((4, 10), np.int32)
    for i, e in enumerate(first):
        n = len(e["bounding_boxes"]["labels"])
        boxes[i, :n] = e["bounding_boxes"]["boxes"]
        labels[i, :n] = e["bounding_boxes"]["labels"]
    expected = encode_yolo_targets(
        boxes / 64.0, labels, 3, 4, anchors=ANCHORS, box_format="rel_xyxy"
    )
    np.testing.assert_allclose(targets.numpy(), expected.numpy(), atol=1e-6)


def test_training_dataset_repeats_with_full_batches(data):
    loss = YoloLoss(3, 4, anchors=ANCHORS)
    ds = make_yolo_dataset(data, loss, (64, 64), batch_size=5, training=True, seed=1)
    shapes = [images.shape[0] for images, _ in ds.take(7)]  # 12 images -> more than 2 epochs
    assert shapes == [5] * 7


def test_collect_detections_with_an_oracle_gives_perfect_coco_map(data):
    truth_by_image = [e["bounding_boxes"] for e in data.dataset.as_numpy_iterator()]
    calls = []

    def oracle(images):
        start = sum(calls)
        calls.append(len(images))
        return [
            {"boxes": t["boxes"], "classes": t["labels"], "scores": np.ones(len(t["labels"]))}
            for t in truth_by_image[start : start + len(images)]
        ]

    images, truth, dets = collect_detections(oracle, data, chunk=5)
    assert calls == [5, 5, 2] and len(images) == len(truth) == len(dets) == 12
    from zoo.metrics import coco_map

    assert coco_map(truth, dets)["map"] == pytest.approx(1.0)


def test_yolo_eval_and_plots_on_an_untrained_model(data, model, tmp_path):
    evaluation = yolo_eval(model, data, max_images=6)
    assert len(evaluation["detections"]) == 6
    assert 0.0 <= evaluation["metrics"]["map50"] <= 1.0
    plot_pr_curves(evaluation, tmp_path / "pr.png")
    draw_detection_grid(model, data, tmp_path / "grid.png", num_images=4, score_threshold=0.01)
    assert _png(tmp_path / "pr.png") and _png(tmp_path / "grid.png")


def test_next_version_counts_existing_versions(tmp_path):
    assert next_version(tmp_path, "m") == 1
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "7").mkdir()
    (tmp_path / "m" / "tmp").mkdir()
    assert next_version(tmp_path, "m") == 8


@pytest.mark.slow
def test_export_yolo_writes_verified_artifacts(data, model, tmp_path):
    out = export_yolo(
        model,
        data,
        tmp_path,
        "det",
        metrics={"map": 0.5},
        score_threshold=0.05,
        calibration_images=8,
        int8_eval_images=6,
        int8_map50_tolerance=1.0,  # untrained: only the mechanics are checked here
    )
    saved = out["saved_model"]
    assert saved == tmp_path / "det" / "1"
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["config"]["score_threshold"] == 0.05
    assert manifest["metrics"] == {"map": 0.5}
    assert (
        out["verify"]["ok"] and not out["verify"]["saved_model"]["subprocess"]["zoo_in_sys_modules"]
    )
    # the fp32 .tflite gives the Keras model's detections, in each image's own pixels
    from zoo.detection import predict

    images = [e["images"] for e in data.dataset.take(3).as_numpy_iterator()]
    lite = tflite_predict(out["tflite_fp32"], images, (64, 64))
    keras_dets = predict(model, images, score_threshold=0.05)
    for a, b in zip(lite, keras_dets, strict=True):
        np.testing.assert_allclose(a["boxes"], b["boxes"], atol=1e-2)
        np.testing.assert_array_equal(a["classes"], b["classes"])
    assert set(out["summary"]) == {"saved_model", "model_fp32.tflite", "model_int8.tflite"}
    # int8 file: int8 convolutions but the head's output conv, float decoding (EXP / LOGISTIC
    # of the detections layer)
    from ai_edge_litert.interpreter import Interpreter

    lite8 = Interpreter(model_path=str(out["tflite_int8"]))
    tensors = {t["index"]: t for t in lite8.get_tensor_details()}
    kinds, convs = {}, {}
    for op in lite8._get_ops_details():
        if len(op["outputs"]):
            tensor = tensors[op["outputs"][0]]
            dtype = np.dtype(tensor["dtype"]).name
            kinds.setdefault(op["op_name"], set()).add(dtype)
            if op["op_name"] == "CONV_2D":
                convs[tensor["name"]] = dtype
    head = {name: dtype for name, dtype in convs.items() if "head_out_conv" in name}
    assert len(head) == 1 and set(head.values()) == {"float32"}
    assert {dtype for name, dtype in convs.items() if name not in head} == {"int8"}
    assert kinds["EXP"] == {"float32"} and kinds["LOGISTIC"] == {"float32"}


@pytest.mark.slow
def test_decoupled_head_exports_with_the_same_decoding(data, tmp_path):
    model = build_yolo(
        3, (64, 64, 3), grid_size=4, anchors=ANCHORS, width_multiplier=0.125, head="decoupled"
    )
    out = export_yolo(
        model,
        data,
        tmp_path,
        "decoupled",
        score_threshold=0.05,
        calibration_images=8,
        int8_eval_images=6,
        int8_map50_tolerance=1.0,  # untrained: only the mechanics are checked here
    )
    assert out["verify"]["ok"]
    from zoo.detection import predict

    images = [e["images"] for e in data.dataset.take(3).as_numpy_iterator()]
    lite = tflite_predict(out["tflite_fp32"], images, (64, 64))
    for a, b in zip(lite, predict(model, images, score_threshold=0.05), strict=True):
        np.testing.assert_allclose(a["boxes"], b["boxes"], atol=1e-2)
        np.testing.assert_array_equal(a["classes"], b["classes"])


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(head="conv"), ("head_out_conv", "head_output")),
        (
            dict(head="decoupled"),
            ("head_box_out", "head_cls_out", "head_box_grid", "head_cls_grid", "head_output"),
        ),
    ],
)
def test_int8_float_layers_are_the_head_tail(kwargs, expected):
    from zoo.detection.export import int8_float_layers

    model = build_yolo(
        3, (64, 64, 3), grid_size=4, anchors=ANCHORS, width_multiplier=0.125, **kwargs
    )
    assert int8_float_layers(model) == ("detections", *expected)


def test_batch_one_detection_graph_equals_the_batched_one(data, model):
    from zoo.detection import detection_model

    image = next(data.dataset.as_numpy_iterator())["images"][None].astype("float32")
    looped = detection_model(model, score_threshold=0.01)(image)
    single = detection_model(model, batch_size=1, score_threshold=0.01)(image)
    assert single["detection_boxes"].shape == (1, 100, 4)
    for key in looped:
        np.testing.assert_allclose(single[key].numpy(), looped[key].numpy(), atol=1e-6)


def test_export_yolo_calibrates_on_every_calibration_image(data, model, tmp_path, monkeypatch):
    """calibration_images above the converter's own default of 200 samples are all used."""
    import zoo.detection.export as export_module

    class Stop(Exception):
        pass

    seen = {}
    real = export_module.export_tflite

    def record(model_, path, quantization=None, **kwargs):
        if quantization == "int8":
            seen.update(kwargs)
            raise Stop
        return real(model_, path, quantization, **kwargs) if quantization else real(model_, path)

    monkeypatch.setattr(export_module, "export_tflite", record)
    many = synthetic_shapes(250, image_size=(64, 64), seed=6, num_classes=3)
    with pytest.raises(Stop):
        export_yolo(model, many, tmp_path, "cal", calibration_images=240)
    assert len(seen["representative_dataset"]) == 240
    assert seen["num_calibration_samples"] == 240
