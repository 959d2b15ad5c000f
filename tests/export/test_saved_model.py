"""export_saved_model: TF Serving layout, manifest, image / bytes / raw-input signatures."""

import datetime
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_export_model import EXPORT_KWARGS, HEIGHT, WIDTH, build_tiny_model

from zoo.export import (
    export_saved_model,
    model_input_specs,
    output_dict,
    read_manifest,
    run_saved_model_subprocess,
)


@pytest.fixture(scope="module")
def loaded(saved_model_dir):
    return tf.saved_model.load(str(saved_model_dir))


def _numpy(outputs):
    return {k: np.asarray(v) for k, v in outputs.items()}


# === Layout and manifest ===


def test_layout_is_tf_serving(saved_model_dir):
    assert saved_model_dir.name == "1"
    assert saved_model_dir.parent.name == "tiny"
    names = {p.name for p in saved_model_dir.iterdir()}
    assert {"saved_model.pb", "variables", "manifest.json"} <= names
    assert any(saved_model_dir.joinpath("variables").glob("variables.data-*"))
    # The staging directory is renamed into place: nothing else is left next to the version.
    assert [p.name for p in saved_model_dir.parent.iterdir()] == ["1"]


def test_manifest_contents(saved_model_dir, tiny_model):
    manifest = read_manifest(saved_model_dir)
    assert manifest["name"] == "tiny"
    assert manifest["version"] == 1
    created = datetime.datetime.fromisoformat(manifest["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 3600
    assert manifest["versions"]["tensorflow"] == tf.__version__
    assert manifest["versions"]["keras"] == keras.__version__
    assert manifest["versions"]["zoo"]
    assert manifest["config"] == {"width": 8, "input_shape": [HEIGHT, WIDTH, 3]}
    assert manifest["class_names"] == EXPORT_KWARGS["class_names"]
    assert manifest["metrics"] == {"top1": 0.25}
    assert manifest["preprocessing"] == EXPORT_KWARGS["preprocessing"]
    assert manifest["model"]["parameters"] == tiny_model.count_params()
    assert manifest["input_spec"]["name"] == "images"
    assert manifest["input_spec"]["model_size"] == [HEIGHT, WIDTH]
    assert manifest["input_spec"]["value_range"] == [0, 255]

    sigs = manifest["signatures"]
    assert set(sigs) == {"serving_default", "serving_bytes"}
    assert sigs["serving_default"]["inputs"] == {
        "images": {"dtype": "float32", "shape": [None, None, None, 3]}
    }
    assert sigs["serving_bytes"]["inputs"] == {"image_bytes": {"dtype": "string", "shape": [None]}}
    for sig in sigs.values():
        assert sig["outputs"] == {
            "logits": {"dtype": "float32", "shape": [None, 4]},
            "embedding": {"dtype": "float32", "shape": [None, 8]},
        }
    # Small: no layer configs.
    assert len(json.dumps(manifest)) < 5000


def test_loaded_signatures_match_manifest(loaded):
    assert set(loaded.signatures) == {"serving_default", "serving_bytes"}
    fn = loaded.signatures["serving_default"]
    assert set(fn.structured_input_signature[1]) == {"images"}
    assert set(fn.structured_outputs) == {"logits", "embedding"}
    fn = loaded.signatures["serving_bytes"]
    spec = fn.structured_input_signature[1]["image_bytes"]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]


def test_refuses_to_overwrite_unless_asked(tmp_path):
    model = build_tiny_model(seed=3)
    first = export_saved_model(model, tmp_path, "m", 2, image_input=False)
    with pytest.raises(FileExistsError, match=str(first)):
        export_saved_model(model, tmp_path, "m", 2, image_input=False)
    before = read_manifest(first)["created"]
    again = export_saved_model(
        model, tmp_path, "m", 2, image_input=False, overwrite=True, metrics={"run": 2}
    )
    assert again == first
    assert read_manifest(again)["metrics"] == {"run": 2}
    assert read_manifest(again)["created"] >= before
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["2"]


# === serving_default: float images ===


def test_serving_default_matches_model_exactly_at_model_size(loaded, tiny_model, images):
    got = _numpy(loaded.signatures["serving_default"](images=tf.constant(images)))
    want = _numpy(tiny_model(images, training=False))
    for name in ("logits", "embedding"):
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-6)


def test_serving_default_resizes_any_size_bilinear(loaded, tiny_model, images):
    big = tf.image.resize(images, (48, 40), method="bilinear").numpy()
    got = _numpy(loaded.signatures["serving_default"](images=tf.constant(big)))
    want = _numpy(tiny_model(tf.image.resize(big, (HEIGHT, WIDTH), method="bilinear")))
    assert got["logits"].shape == (4, 4)
    for name in ("logits", "embedding"):
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5)


# === serving_bytes: encoded images ===


@pytest.mark.parametrize("codec", ["png", "jpeg"])
def test_serving_bytes_matches_float_signature(loaded, images, codec):
    encode = tf.io.encode_png if codec == "png" else tf.io.encode_jpeg
    pixels = images.astype(np.uint8)
    # One image at a different size: each element of the batch is decoded and resized alone.
    odd = tf.image.resize(images[:1], (40, 36)).numpy().round().clip(0, 255).astype(np.uint8)
    blobs = [encode(p).numpy() for p in pixels] + [encode(odd[0]).numpy()]
    got = _numpy(loaded.signatures["serving_bytes"](image_bytes=tf.constant(blobs)))
    assert got["logits"].shape == (5, 4)

    decoded = [tf.io.decode_image(b, channels=3).numpy().astype(np.float32) for b in blobs]
    if codec == "png":  # lossless: the decoded pixels are the originals
        np.testing.assert_array_equal(decoded[0], pixels[0])
    serve = loaded.signatures["serving_default"]
    for i, image in enumerate(decoded):
        want = _numpy(serve(images=tf.constant(image[np.newaxis])))
        for name in ("logits", "embedding"):
            np.testing.assert_allclose(got[name][i], want[name][0], rtol=0, atol=1e-5)


def test_serving_bytes_rejects_garbage(loaded):
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        loaded.signatures["serving_bytes"](image_bytes=tf.constant([b"not an image"]))


# === Fresh process without zoo ===


@pytest.mark.slow
def test_saved_model_runs_in_subprocess_without_zoo(saved_model_dir, tiny_model, images):
    outputs, meta = run_saved_model_subprocess(saved_model_dir, {"images": images})
    assert meta["zoo_in_sys_modules"] is False
    assert meta["inputs"] == ["images"]
    want = _numpy(tiny_model(images))
    for name in ("logits", "embedding"):
        np.testing.assert_allclose(outputs[name], want[name], rtol=0, atol=1e-6)


# === outputs_fn and non-image models ===


def test_outputs_fn_runs_in_graph_with_image_shapes(tmp_path, images):
    model = build_tiny_model(seed=4)

    def outputs_fn(outputs, image_shapes):
        return {
            "probabilities": tf.nn.softmax(outputs["logits"]),
            "image_shapes": image_shapes,
        }

    path = export_saved_model(model, tmp_path, "post", outputs_fn=outputs_fn)
    sigs = read_manifest(path)["signatures"]
    assert set(sigs["serving_default"]["outputs"]) == {"probabilities", "image_shapes"}
    loaded = tf.saved_model.load(str(path))
    big = tf.image.resize(images[:2], (48, 40)).numpy()
    got = loaded.signatures["serving_default"](images=tf.constant(big))
    np.testing.assert_array_equal(got["image_shapes"].numpy(), [[48, 40], [48, 40]])
    want = tf.nn.softmax(model(tf.image.resize(big, (HEIGHT, WIDTH)))["logits"]).numpy()
    np.testing.assert_allclose(got["probabilities"].numpy(), want, atol=1e-6)

    blobs = [tf.io.encode_png(tf.zeros((h, w, 3), tf.uint8)).numpy() for h, w in [(7, 9), (32, 32)]]
    got = loaded.signatures["serving_bytes"](image_bytes=tf.constant(blobs))
    np.testing.assert_array_equal(got["image_shapes"].numpy(), [[7, 9], [32, 32]])


def _two_tower():
    keras.utils.set_random_seed(5)
    query = keras.Input((3,), name="query")
    doc = keras.Input((5,), name="doc")
    x = keras.layers.Concatenate()([query, doc])
    return keras.Model({"query": query, "doc": doc}, keras.layers.Dense(2, name="score")(x))


def test_non_image_model_serves_its_own_inputs(tmp_path):
    model = _two_tower()
    path = export_saved_model(model, tmp_path, "tower", image_input=False, config={"dim": 2})
    manifest = read_manifest(path)
    assert set(manifest["signatures"]) == {"serving_default"}
    assert manifest["signatures"]["serving_default"]["inputs"] == {
        "query": {"dtype": "float32", "shape": [None, 3]},
        "doc": {"dtype": "float32", "shape": [None, 5]},
    }
    assert manifest["signatures"]["serving_default"]["outputs"] == {
        "outputs": {"dtype": "float32", "shape": [None, 2]}
    }
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default"}
    q = np.arange(6, dtype="float32").reshape(2, 3)
    d = np.arange(10, dtype="float32").reshape(2, 5) / 10
    got = loaded.signatures["serving_default"](query=tf.constant(q), doc=tf.constant(d))
    want = model({"query": q, "doc": d})
    np.testing.assert_allclose(got["outputs"].numpy(), np.asarray(want), atol=1e-6)


def test_output_and_input_naming():
    keras.utils.set_random_seed(6)
    inp = keras.Input((4,))
    a = keras.layers.Dense(2, name="boxes")(inp)
    b = keras.layers.Dense(3, name="classes")(inp)
    listed = keras.Model(inp, [a, b])
    single = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    x = np.ones((1, 4), "float32")
    assert list(output_dict(listed, listed(x))) == ["boxes", "classes"]
    assert list(output_dict(single, single(x))) == ["outputs"]
    names, specs, _ = model_input_specs(single)
    assert names == ["inputs"]  # the auto-generated keras_tensor_N name is not exposed
    assert specs[0].shape.as_list() == [None, 4]
    names, _, _ = model_input_specs(_two_tower())
    assert sorted(names) == ["doc", "query"]


# === Bad arguments ===


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"name": "a/b"}, ValueError, "name="),
        ({"name": ""}, ValueError, "name="),
        ({"version": 0}, ValueError, "version=0"),
        ({"version": True}, ValueError, "version=True"),
        ({"version": "1"}, ValueError, "version='1'"),
        ({"config": {"fn": object()}}, TypeError, "config"),
        ({"class_names": ["a", 1]}, TypeError, "class_names"),
        ({"outputs_fn": "nope"}, TypeError, "outputs_fn"),
        ({"outputs_fn": lambda outputs, shapes: outputs["logits"]}, TypeError, "dict"),
    ],
)
def test_bad_arguments(tiny_model, tmp_path, kwargs, error, match):
    args = {"name": "m", "version": 1, **kwargs}
    with pytest.raises(error, match=match):
        export_saved_model(tiny_model, tmp_path, **args)
    assert not (tmp_path / "m" / "1").exists()


def test_image_input_needs_a_single_sized_image_input(tmp_path):
    inp = keras.Input((None, None, 3), name="any_size")
    fcn = keras.Model(inp, keras.layers.Conv2D(2, 1)(inp))
    with pytest.raises(ValueError, match="known size"):
        export_saved_model(fcn, tmp_path, "fcn")
    with pytest.raises(ValueError, match="single-input"):
        export_saved_model(_two_tower(), tmp_path, "tower")
    # The same models export fine with their own input specs.
    assert export_saved_model(fcn, tmp_path, "fcn", image_input=False).is_dir()


def test_unbuilt_or_subclassed_model_is_refused(tmp_path):
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Sub()
    with pytest.raises(ValueError, match="not built"):
        export_saved_model(sub, tmp_path, "sub", image_input=False)
    sub(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="functional"):
        export_saved_model(sub, tmp_path, "sub", image_input=False)
    with pytest.raises(TypeError, match="keras.Model"):
        export_saved_model("model", tmp_path, "x")
