"""The public names the README and docs/ promise exist, with the documented defaults."""

import importlib
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


FAMILIES = ("detection", "landmarks", "metric_learning", "ssl", "text", "multimodal")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_builder_of_every_family_is_importable_from_the_top(family):
    package = importlib.import_module(f"zoo.{family}")
    builders = [name for name in package.__all__ if name.startswith("build_")]
    assert builders, f"zoo.{family} exports no build_* function"
    for name in builders:
        assert getattr(zoo, name) is getattr(package, name), name
        assert name in zoo.__all__


def test_old_layer_packages_are_gone():
    for name in ("zoo.models", "zoo.losses"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)
