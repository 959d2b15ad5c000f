"""zoo.landmarks.export_landmarks: SavedModel + fp32 / int8 .tflite, verified, int8 NME drift."""

import json

import numpy as np
import pytest

from zoo.landmarks import build_landmark_model, export_landmarks

SHAPE = (32, 32, 3)


def batches(count=2, batch_size=4, num_landmarks=3, seed=0):
    """``(images, targets)`` batches as ``landmark_pipeline`` yields them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        images = rng.uniform(0, 255, (batch_size, *SHAPE)).astype("float32")
        targets = {
            "presence": np.ones((batch_size, 1), "float32"),
            "landmarks": rng.uniform(0.2, 0.8, (batch_size, num_landmarks, 2)).astype("float32"),
            "visibility": np.ones((batch_size, num_landmarks), "float32"),
        }
        out.append((images, targets))
    return out


def op_input_dtypes(path, op_name):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return [
        {np.dtype(tensors[i]["dtype"]).name for i in op["inputs"] if i >= 0}
        for op in interpreter._get_ops_details()
        if op["op_name"] == op_name
    ]


@pytest.mark.slow
def test_heatmap_export_keeps_the_soft_argmax_float_and_measures_int8_drift(tmp_path):
    model = build_landmark_model(3, input_shape=SHAPE, head="heatmap", width_multiplier=0.25)
    out = export_landmarks(
        model,
        batches(),
        batches(seed=1),
        tmp_path,
        "lm",
        eye_indices=(0, 1),
        config={"landmark_names": ["a", "b", "c"]},
        calibration_images=8,
        verify_images=4,
    )
    version = tmp_path / "lm" / "1"
    assert out["saved_model"] == version and (version / "saved_model.pb").is_file()
    assert out["tflite_fp32"].name == "model_fp32.tflite"
    assert out["tflite_int8"].name == "model_int8.tflite"
    manifest = json.loads((version / "manifest.json").read_text())
    assert set(manifest["signatures"]["serving_default"]["outputs"]) == {"presence", "landmarks"}
    assert manifest["config"]["head"] == "heatmap"
    assert manifest["config"]["landmark_names"] == ["a", "b", "c"]

    # int8 body, float soft-argmax: the convolutions read int8, the softmax reads float32
    assert all(
        dtypes == {"int8", "int32"} for dtypes in op_input_dtypes(out["tflite_int8"], "CONV_2D")
    )
    assert op_input_dtypes(out["tflite_int8"], "SOFTMAX") == [{"float32"}]

    for kind in ("tflite_fp32", "tflite_int8"):
        assert out["metrics"][kind]["num_images"] == 8
        assert out["nme"][kind].shape == (8,)
    drift = out["metrics"]["tflite_int8"]["nme"] - out["metrics"]["tflite_fp32"]["nme"]
    assert out["int8_nme_minus_fp32"] == pytest.approx(drift)
    assert abs(drift) < 0.01 and out["int8_ok"]
    assert set(out["max_abs"]) == {"saved_model", "model_fp32.tflite", "model_int8.tflite"}
    assert out["max_abs"]["model_fp32.tflite"]["landmarks"] < 1e-3  # pixels


def test_export_landmarks_checks_on_int8_drop():
    model = build_landmark_model(3, input_shape=SHAPE, head="regression", width_multiplier=0.25)
    with pytest.raises(ValueError, match="on_int8_drop must be 'raise' or 'warn'"):
        export_landmarks(model, batches(), batches(), "unused", on_int8_drop="ignore")
