"""export_tflite: fp32 / float16 / dynamic / int8, run with LiteRT, builtin ops only."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tiny_export_model import HEIGHT, WIDTH, build_tiny_model

from zoo.export import (
    DEFAULT_TOLERANCES,
    export_tflite,
    representative_samples,
    run_tflite,
    tflite_quantization,
)

# Largest |diff| allowed against the Keras model, as a fraction of max(1, max|ref|) (int8: of
# the output range). Same numbers verify_export uses by default.
KINDS = ["float32", "float16", "dynamic", "int8"]


def _ops(path):
    interpreter = Interpreter(model_path=str(path))
    return [op["op_name"] for op in interpreter._get_ops_details()]


@pytest.mark.parametrize("kind", KINDS)
def test_litert_matches_keras_within_tolerance(tflite_paths, tiny_model, images, kind):
    path = tflite_paths[kind]
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    inputs = runner.get_input_details()
    assert list(inputs) == ["image"]
    assert inputs["image"]["dtype"] == np.float32  # float interface for every mode by default
    assert list(inputs["image"]["shape_signature"]) == [-1, HEIGHT, WIDTH, 3]
    got = runner(image=images)
    assert set(got) == {"logits", "embedding"}
    want = {k: np.asarray(v) for k, v in tiny_model(images).items()}
    for name in ("logits", "embedding"):
        ref = want[name]
        assert np.all(np.isfinite(got[name]))
        scale = (ref.max() - ref.min()) if kind == "int8" else max(1.0, np.abs(ref).max())
        assert np.abs(got[name] - ref).max() <= DEFAULT_TOLERANCES[kind] * scale, name
    if kind == "float32":
        np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_quantization_is_detected_from_the_file(tflite_paths, kind):
    assert tflite_quantization(tflite_paths[kind]) == kind


def test_builtin_ops_only_and_int8_is_full_integer(tflite_paths):
    for path in tflite_paths.values():
        ops = _ops(path)
        assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
        assert not {"VAR_HANDLE", "READ_VARIABLE"} & set(ops)
    interpreter = Interpreter(model_path=str(tflite_paths["int8"]))
    dtypes = [np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()]
    # Weights and activations int8 (biases int32); float only at the QUANTIZE/DEQUANTIZE edges.
    assert dtypes.count(np.dtype("int8")) > dtypes.count(np.dtype("float32"))
    assert "QUANTIZE" in _ops(tflite_paths["int8"])


def test_sizes_follow_the_quantization(tflite_paths, tiny_model):
    sizes = {k: p.stat().st_size for k, p in tflite_paths.items()}
    params = tiny_model.count_params()
    assert sizes["float32"] >= 4 * params
    assert sizes["float16"] < sizes["float32"]
    assert sizes["dynamic"] < sizes["float32"]


@pytest.mark.slow
@pytest.mark.parametrize("io_dtype", ["int8", "uint8"])
def test_int8_integer_interface(tmp_path, tiny_model, images, calibration_images, io_dtype):
    path = export_tflite(
        tiny_model,
        tmp_path / "m.tflite",
        "int8",
        calibration_images,
        io_dtype=io_dtype,
    )
    runner = Interpreter(model_path=str(path)).get_signature_runner()
    assert runner.get_input_details()["image"]["dtype"] == np.dtype(io_dtype)
    assert runner.get_output_details()["logits"]["dtype"] == np.dtype(io_dtype)
    got = run_tflite(path, images)  # (de)quantizes with each tensor's scale and zero point
    ref = np.asarray(tiny_model(images)["logits"])
    assert np.abs(got["logits"] - ref).max() <= 0.1 * (ref.max() - ref.min())


# === Representative datasets ===


def test_representative_samples_accepts_the_documented_forms(tiny_model, calibration_images):
    x = calibration_images[:6]

    def generator():
        for i in range(3):
            yield x[i]  # one unbatched sample at a time

    labels = np.zeros((6,), "int32")
    forms = {
        "array": (x, 6),
        "generator": (generator, 3),
        "dataset (x, y) batched": (tf.data.Dataset.from_tensor_slices((x, labels)).batch(4), 6),
        "dataset dict": (tf.data.Dataset.from_tensor_slices({"images": x}), 6),
        "single sample": (x[0], 1),
    }
    for form, (data, count) in forms.items():
        feeds = representative_samples(data, tiny_model)
        assert len(feeds) == count, form
        assert all(list(f) == ["image"] and f["image"].shape == (1, 32, 32, 3) for f in feeds)
        np.testing.assert_array_equal(feeds[0]["image"][0], x[0])
    assert len(representative_samples(x, tiny_model, limit=2)) == 2


def test_representative_samples_rejects_bad_data(tiny_model):
    with pytest.raises(ValueError, match=r"expects shape \[None, 32, 32, 3\]"):
        representative_samples(np.zeros((2, 16, 16, 3), "float32"), tiny_model)
    with pytest.raises(ValueError, match="no samples"):
        representative_samples(lambda: iter([]), tiny_model)
    with pytest.raises(TypeError, match="str"):
        representative_samples("images/", tiny_model)


@pytest.mark.slow
def test_int8_from_tf_data(tmp_path, tiny_model, images, calibration_images):
    dataset = tf.data.Dataset.from_tensor_slices(
        (calibration_images, np.zeros(len(calibration_images)))
    ).batch(8)
    path = export_tflite(tiny_model, tmp_path / "ds.tflite", "int8", dataset)
    got = run_tflite(path, images)
    ref = np.asarray(tiny_model(images)["embedding"])
    assert np.abs(got["embedding"] - ref).max() <= 0.1 * (ref.max() - ref.min())


def test_non_image_multi_input_model(tmp_path):
    keras.utils.set_random_seed(2)
    query = keras.Input((3,), name="query")
    doc = keras.Input((5,), name="doc")
    score = keras.layers.Dense(2)(keras.layers.Concatenate()([query, doc]))
    model = keras.Model({"query": query, "doc": doc}, score)
    path = export_tflite(model, tmp_path / "tower.tflite")
    q = np.ones((3, 3), "float32")
    d = np.full((3, 5), 0.5, "float32")
    got = run_tflite(path, {"query": q, "doc": d})
    np.testing.assert_allclose(got["outputs"], np.asarray(model({"query": q, "doc": d})), atol=1e-5)


# === Bad arguments ===


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"quantization": "int4"}, "quantization='int4'"),
        ({"quantization": "INT8"}, "quantization='INT8'"),
        ({"quantization": "int8"}, "needs representative_dataset"),
        (
            {"quantization": "float16", "representative_dataset": np.zeros((1, 32, 32, 3))},
            "only used with quantization='int8'",
        ),
        ({"io_dtype": "int8"}, "needs quantization='int8'"),
        ({"io_dtype": "int16"}, "io_dtype='int16'"),
    ],
)
def test_bad_arguments(tiny_model, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_tflite(tiny_model, tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_path_must_end_with_tflite(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="model.lite"):
        export_tflite(tiny_model, tmp_path / "model.lite")


def test_weights_are_the_models_own(tmp_path, images):
    """Two models differing only in weights give different files and different outputs."""
    a, b = build_tiny_model(seed=7), build_tiny_model(seed=8)
    pa = export_tflite(a, tmp_path / "a.tflite")
    pb = export_tflite(b, tmp_path / "b.tflite")
    ga, gb = run_tflite(pa, images), run_tflite(pb, images)
    np.testing.assert_allclose(ga["logits"], np.asarray(a(images)["logits"]), atol=1e-5)
    np.testing.assert_allclose(gb["logits"], np.asarray(b(images)["logits"]), atol=1e-5)
    assert np.abs(ga["logits"] - gb["logits"]).max() > 1e-3


def _op_dtypes(path, op_name):
    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return [
        [np.dtype(tensors[i]["dtype"]) for i in op["inputs"] if i >= 0]
        for op in interpreter._get_ops_details()
        if op["op_name"] == op_name
    ]


def test_int8_float_layers_keep_the_named_layer_in_float(
    tmp_path, tiny_model, images, calibration_images
):
    plain = export_tflite(tiny_model, tmp_path / "plain.tflite", "int8", calibration_images)
    mixed = export_tflite(
        tiny_model, tmp_path / "mixed.tflite", "int8", calibration_images, float_layers=["conv2"]
    )
    # Two CONV_2D ops (conv1, conv2): both int8 in the plain file; in the mixed one conv2 takes
    # float32 inputs and weights while conv1 stays int8.
    assert all(np.dtype("float32") not in d for d in _op_dtypes(plain, "CONV_2D"))
    kinds = [np.dtype("float32") in d for d in _op_dtypes(mixed, "CONV_2D")]
    assert kinds == [False, True]
    want = np.asarray(tiny_model(images)["logits"])
    got = run_tflite(mixed, {"image": images})["logits"]
    assert np.abs(got - want).max() <= DEFAULT_TOLERANCES["int8"] * (want.max() - want.min())
    with pytest.raises(ValueError, match="no op of layer 'nope'"):
        export_tflite(
            tiny_model, tmp_path / "x.tflite", "int8", calibration_images, float_layers=["nope"]
        )
    with pytest.raises(ValueError, match="float_layers needs quantization='int8'"):
        export_tflite(tiny_model, tmp_path / "y.tflite", float_layers=["conv2"])
