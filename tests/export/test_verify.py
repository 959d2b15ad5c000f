"""verify_export: parity report for every artifact, and loud failures on bad artifacts."""

import numpy as np
import pytest
import tensorflow as tf
from tiny_export_model import build_tiny_model

from zoo.export import (
    DEFAULT_TOLERANCES,
    ExportMismatchError,
    check_tflite_structure,
    compare_outputs,
    export_saved_model,
    export_tflite,
    verify_export,
)


@pytest.mark.slow
def test_verify_all_artifacts(tiny_model, images, saved_model_dir, tflite_paths):
    report = verify_export(
        tiny_model,
        images,
        saved_model_dir=saved_model_dir,
        tflite_paths=list(tflite_paths.values()),
    )
    assert report["ok"] and report["failures"] == []
    assert set(report["reference"]) == {"logits", "embedding"}

    sm = report["saved_model"]
    assert sm["subprocess"]["zoo_in_sys_modules"] is False
    assert sm["subprocess"]["inputs"] == ["images"]
    assert sm["size_bytes"] > 4 * tiny_model.count_params()
    for entry in sm["outputs"].values():
        assert entry["max_abs"] <= 1e-6 and entry["ok"]

    assert set(report["tflite"]) == {str(p) for p in tflite_paths.values()}
    for kind, path in tflite_paths.items():
        entry = report["tflite"][str(path)]
        assert entry["kind"] == entry["quantization"] == kind
        assert entry["tolerance"] == DEFAULT_TOLERANCES[kind]
        assert entry["size_bytes"] == path.stat().st_size
        assert entry["parameters"] == tiny_model.count_params()
        assert set(entry["outputs"]) == {"logits", "embedding"}
        for out in entry["outputs"].values():
            assert 0 <= out["mean_abs"] <= out["max_abs"] <= out["limit"]
    fp32 = report["tflite"][str(tflite_paths["float32"])]["outputs"]["logits"]["max_abs"]
    int8 = report["tflite"][str(tflite_paths["int8"])]["outputs"]["logits"]["max_abs"]
    assert fp32 < 1e-5 < int8  # quantization shows up in the numbers


def test_verify_raises_on_other_weights(tmp_path, tiny_model, images):
    other = build_tiny_model(seed=11)
    path = export_tflite(other, tmp_path / "other.tflite")
    with pytest.raises(ExportMismatchError, match="logits") as info:
        verify_export(tiny_model, images, tflite_paths=[path])
    report = info.value.report
    assert report["ok"] is False
    entry = report["tflite"][str(path)]["outputs"]["logits"]
    assert entry["ok"] is False and entry["max_abs"] > entry["limit"]
    # A tolerance override, by path, lets the same comparison pass.
    loose = verify_export(tiny_model, images, tflite_paths=[path], tolerances={str(path): 1e6})
    assert loose["ok"]


@pytest.mark.slow
def test_verify_raises_on_corrupted_saved_model(tmp_path, tiny_model, images):
    other = build_tiny_model(seed=12)
    path = export_saved_model(other, tmp_path, "other")
    with pytest.raises(ExportMismatchError, match=r"serving_default.*max \|diff\|") as info:
        verify_export(tiny_model, images, saved_model_dir=path)
    assert info.value.report["saved_model"]["subprocess"]["zoo_in_sys_modules"] is False


def test_verify_raises_on_nan_outputs(tmp_path, tiny_model, images):
    broken = build_tiny_model(seed=13)
    dense = broken.get_layer("logits")
    kernel, bias = dense.get_weights()
    dense.set_weights([np.full_like(kernel, np.nan), bias])
    path = tmp_path / "nan.tflite"
    path = export_tflite(broken, path)
    with pytest.raises(ExportMismatchError, match="NaN/Inf"):
        verify_export(tiny_model, images, tflite_paths=[path], tolerances={str(path): 1e6})


def test_custom_compare_decides(tmp_path, tiny_model, images):
    other = build_tiny_model(seed=11)
    path = export_tflite(other, tmp_path / "other.tflite")
    seen = []

    def lenient(label, reference, outputs, kind, tolerance):
        entry, failures = compare_outputs(label, reference, outputs, kind, tolerance)
        seen.append((label, kind, len(failures)))
        entry["lenient"] = True
        return entry, []

    report = verify_export(tiny_model, images, tflite_paths=[path], compare=lenient)
    # The default comparison finds the other weights; the custom one overrules it.
    assert [call[:2] for call in seen] == [(str(path), "float32")] and seen[0][2] >= 1
    assert report["ok"] and report["tflite"][str(path)]["lenient"]
    assert report["tflite"][str(path)]["outputs"]["logits"]["ok"] is False


def test_tight_tolerance_by_kind_fails(tiny_model, images, tflite_paths):
    path = tflite_paths["float16"]
    with pytest.raises(ExportMismatchError, match="float16 tolerance"):
        verify_export(tiny_model, images, tflite_paths=[path], tolerances={"float16": 1e-9})


def _weightless_tflite(model, path):
    """The failure seen in the wild: a hand-made tf.Module around a Keras 3 model converts to a
    .tflite whose variables are never initialised (VAR_HANDLE/READ_VARIABLE ops, NaN outputs)."""

    class Wrapper(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def __call__(self, x):
            return self.model(x)["logits"]

    wrapper = Wrapper(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [wrapper.__call__.get_concrete_function()], wrapper
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path.write_bytes(converter.convert())
    return path


@pytest.mark.slow
def test_weightless_tflite_fails_loudly(tmp_path, tiny_model, images):
    path = _weightless_tflite(tiny_model, tmp_path / "weightless.tflite")
    with pytest.raises(ExportMismatchError, match="weightless"):
        check_tflite_structure(path, tiny_model)
    with pytest.raises(ExportMismatchError, match="weightless") as info:
        verify_export(tiny_model, images, tflite_paths=[path])
    assert info.value.report["tflite"][str(path)]["size_bytes"] == path.stat().st_size


def test_too_small_tflite_fails_size_check(tflite_paths):
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(inputs)
    big = keras.Model(inputs, keras.layers.Dense(64)(x))  # ~200k parameters
    with pytest.raises(ExportMismatchError, match="cannot hold"):
        check_tflite_structure(tflite_paths["float32"], big)


def test_verify_bad_arguments(tiny_model, images, tflite_paths):
    with pytest.raises(ValueError, match="saved_model_dir and/or tflite_paths"):
        verify_export(tiny_model, images)
    with pytest.raises(ValueError, match="unknown keys"):
        verify_export(
            tiny_model, images, tflite_paths=[tflite_paths["float32"]], tolerances={"fp32": 1e-3}
        )
    with pytest.raises(ValueError, match="missing"):
        verify_export(tiny_model, {"img": images}, tflite_paths=[tflite_paths["float32"]])


def test_int8_drop_is_raised_or_logged(caplog):
    import logging

    from zoo.export.verify import check_int8_drop_action, report_int8_drop

    with pytest.raises(RuntimeError, match="collapsed"):
        report_int8_drop("model_int8.tflite: collapsed", "raise")
    with caplog.at_level(logging.WARNING, logger="zoo.export"):
        report_int8_drop("model_int8.tflite: collapsed", "warn")
    assert "model_int8.tflite: collapsed" in caplog.text
    with pytest.raises(
        ValueError, match="on_int8_drop must be 'raise' or 'warn'. Received: 'skip'"
    ):
        check_int8_drop_action("skip")
