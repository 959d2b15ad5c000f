"""The public names the README and docs/ promise exist, with the documented defaults."""

import inspect

import pytest

import zoo


def test_ops_signatures():
    params = inspect.signature(zoo.ops.non_max_suppression).parameters
    assert params["iou_threshold"].default == 0.5
    assert params["score_threshold"].default == 0.6
    assert params["max_output_size"].default == 100
    assert params["box_format"].default == "xyxy"
    for name in ("iou", "giou", "diou", "ciou"):
        assert inspect.signature(getattr(zoo.ops, name)).parameters["box_format"].default == "xyxy"


def test_metrics_export_and_builders_exist():
    assert callable(zoo.metrics.coco_map)
    params = inspect.signature(zoo.export.export_saved_model).parameters
    assert list(params)[:4] == ["model", "root", "name", "version"]
    assert params["version"].default == 1
    params = inspect.signature(zoo.export.export_tflite).parameters
    assert params["quantization"].default is None
    assert params["representative_dataset"].default is None
    from zoo import build_yolo

    assert callable(build_yolo) and callable(zoo.detection.predict)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        zoo.nope  # noqa: B018
