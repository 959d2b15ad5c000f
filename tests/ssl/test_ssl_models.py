"""SSL encoder and pretext models: shapes, shared weights, one training step, save/load, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.ssl.loss import pretext_loss
from zoo.ssl.model import SSL_BACKBONES, build_pretext_model, build_ssl_encoder, encoder_feature_map


def images(n, shape, seed=0):
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype("float32")


def _leaves(model):
    return {id(v) for v in model.weights}


# === Encoder ===


@pytest.mark.parametrize("backbone", ["small_cnn", "resnet_small"])
@pytest.mark.parametrize(
    "shape, fmap",
    [
        ((32, 32, 3), (4, 4)),
        ((28, 28, 1), (4, 4)),
        ((64, 64, 3), (4, 4)),
        ((16, 16, 1), (4, 4)),
        ((12, 20, 3), (3, 5)),
    ],
)
def test_encoder_shapes_and_feature_map(backbone, shape, fmap):
    encoder = build_ssl_encoder(shape, backbone=backbone, width=4)
    stages = {32: 3, 28: 3, 64: 4, 16: 2, 12: 2}[shape[0]]
    dim = 4 * 2 ** (stages - 1)
    assert encoder.input.name == "images"
    assert encoder.output_shape == (None, dim)
    view = encoder_feature_map(encoder)
    assert view.output_shape == (None, *fmap, dim)
    x = images(2, shape)
    features, feature_map = encoder(x), view(x)
    assert features.shape == (2, dim) and feature_map.shape == (2, *fmap, dim)
    # the encoder's output is exactly the global average of its feature map
    np.testing.assert_allclose(features, np.mean(feature_map, axis=(1, 2)), rtol=1e-5, atol=1e-6)
    # the view shares every layer object (hence every variable) with the encoder
    assert _leaves(view) <= _leaves(encoder)


def test_encoder_normalises_inside_and_projects():
    encoder = build_ssl_encoder((12, 12, 1), width=4, feature_dim=5)
    assert encoder.output_shape == (None, 5) and encoder.get_layer("projection").units == 5
    rescale = encoder.get_layer("rescale")
    np.testing.assert_allclose(rescale(np.full((1, 2, 2, 1), 255.0, "float32")), 1.0)


def test_encoder_with_unknown_size_has_the_fixed_size_architecture():
    fixed = build_ssl_encoder((32, 32, 3), width=4)
    flexible = build_ssl_encoder((None, None, 3), width=4)
    flexible.set_weights(fixed.get_weights())  # raises if the architectures differ
    x = images(2, (32, 32, 3))
    np.testing.assert_allclose(flexible(x), fixed(x), rtol=1e-5, atol=1e-6)
    assert flexible(images(1, (20, 24, 3))).shape == (1, 16)


def test_encoder_loads_a_local_weights_file(tmp_path):
    trained = build_ssl_encoder((16, 16, 3), backbone="resnet_small", width=4)
    path = str(tmp_path / "enc.weights.h5")
    trained.save_weights(path)
    loaded = build_ssl_encoder((16, 16, 3), backbone="resnet_small", width=4, weights=path)
    x = images(2, (16, 16, 3))
    np.testing.assert_allclose(loaded(x), trained(x), rtol=1e-6)


@pytest.mark.parametrize("shape", [(32, 32, 1), (64, 48, 3)])
def test_mobilenet_encoder(shape):
    encoder = build_ssl_encoder(shape, backbone="mobilenet_v3_small", width=24)
    fmap = (-(-shape[0] // 32), -(-shape[1] // 32))
    assert encoder.output_shape == (None, 432)  # 576 * alpha, alpha = 24 / 32
    assert encoder_feature_map(encoder).output_shape == (None, *fmap, 432)
    assert np.all(np.isfinite(encoder(images(1, shape))))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backbone": "resnet9000"}, "backbone='resnet9000'"),
        ({"width": 0}, "width=0"),
        ({"width": 2.5}, "width=2.5"),
        ({"feature_dim": -3}, "feature_dim=-3"),
        ({"input_shape": (32, 32)}, r"input_shape=\(32, 32\)"),
        ({"input_shape": (32, 32, 2)}, r"input_shape=\(32, 32, 2\)"),
        ({"input_shape": (6, 6, 3)}, r"input_shape=\(6, 6, 3\)"),
        ({"input_shape": (28, 28, 3), "backbone": "mobilenet_v3_small"}, "28, 28, 3"),
        ({"weights": "/no/such/file.weights.h5"}, "weights='/no/such/file.weights.h5'"),
    ],
)
def test_encoder_bad_arguments_echo_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_ssl_encoder(**kwargs)


def test_feature_map_needs_the_named_layer():
    plain = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)], name="plain")
    with pytest.raises(ValueError, match="'plain'"):
        encoder_feature_map(plain)
    with pytest.raises(ValueError, match="encoder"):
        encoder_feature_map("not a model")


def test_backbone_names_are_the_documented_ones():
    assert SSL_BACKBONES == ("small_cnn", "resnet_small", "mobilenet_v3_small")


# === Pretext models ===

# (id, encoder input shape, task, options, pretext input shape or None, output shape, targets fn)
Q = 7  # ab bins of the quantized colorization case


def _targets(task, options, batch, shape, rng):
    h, w = shape[-3], shape[-2]
    if task == "rotation":
        return rng.integers(0, 4, batch).astype("int32")
    if task == "jigsaw":
        return rng.integers(0, options.get("num_permutations", 100), batch).astype("int32")
    if task == "colorization":
        if options.get("mode") == "quantized":
            return rng.integers(0, Q, (batch, h, w)).astype("int32")
        return rng.uniform(-0.8, 0.8, (batch, h, w, 2)).astype("float32")
    c = shape[-1]
    clean = rng.random((batch, h, w, c)).astype("float32")
    if task == "denoising":
        return clean
    mask = np.zeros((batch, h, w, 1), "float32")
    mask[:, h // 4 : h // 2, w // 4 : 3 * w // 4] = 1.0
    return np.concatenate([clean, mask], axis=-1)


CASES = [
    ("rotation", (32, 32, 3), "rotation", {}, None, (4,)),
    ("rotation_gray", (28, 28, 1), "rotation", {"hidden_units": 8, "dropout": 0.1}, None, (4,)),
    ("jigsaw_padded", (32, 32, 3), "jigsaw", {"num_permutations": 10}, None, (10,)),
    ("jigsaw_tiles", (None, None, 1), "jigsaw", {"tiles": True}, (9, 9, 9, 1), (100,)),
    ("color_gray_encoder", (32, 32, 1), "colorization", {}, None, (32, 32, 2)),
    (
        "color_quantized_rgb_encoder",
        (28, 28, 3),
        "colorization",
        {"mode": "quantized", "num_bins": Q},
        None,
        (28, 28, Q),
    ),
    ("inpainting", (32, 32, 3), "inpainting", {}, None, (32, 32, 3)),
    ("denoising_gray", (28, 28, 1), "denoising", {"decoder_width": 8}, None, (28, 28, 1)),
    ("denoising_flexible", (None, None, 3), "denoising", {}, (20, 20, 3), (20, 20, 3)),
]


def _build(case):
    _, enc_shape, task, options, input_shape, _ = case
    encoder = build_ssl_encoder(enc_shape, width=4)
    model = build_pretext_model(encoder, task, input_shape=input_shape, **options)
    return encoder, model


def _batch(model, task, options, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(model.input_shape[1:])
    x = images(batch, shape, seed)
    return x, _targets(task, options, batch, shape, rng)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_pretext_model_trains_the_shared_encoder(case):
    _, _, task, options, _, out_shape = case
    encoder, model = _build(case)
    assert model.output_shape == (None, *out_shape)
    # every encoder variable is one of the pretext model's variables (the same objects)
    assert _leaves(encoder) <= _leaves(model)
    x, y = _batch(model, task, options)
    probe = images(3, tuple(d or 16 for d in encoder.input_shape[1:]), seed=9)
    before = encoder(probe, training=False).numpy()
    kernels = [v.numpy().copy() for v in encoder.trainable_weights]

    model.compile(
        keras.optimizers.SGD(0.1),
        loss=pretext_loss(task, **_loss_options(options)),
        run_eagerly=True,  # the same Keras train step, without tracing (fast for tiny models)
    )
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert all(
        not np.allclose(a, v.numpy())
        for a, v in zip(kernels, encoder.trainable_weights, strict=True)
    ), "a training step on the pretext model must move every encoder variable"
    assert not np.allclose(before, encoder(probe, training=False).numpy())

    out = model(x, training=False).numpy()
    assert out.shape == (4, *out_shape) and np.all(np.isfinite(out))
    if task in ("inpainting", "denoising"):
        assert out.min() >= 0.0 and out.max() <= 1.0
    if task == "colorization" and "mode" not in options:
        assert np.abs(out).max() <= 1.0


def _loss_options(options):
    return {"mode": options["mode"]} if "mode" in options else {}


# nested encoder, padding, TimeDistributed tower, gray_to_rgb + crop, decoder
ROUND_TRIP = (
    "rotation_gray",
    "jigsaw_padded",
    "jigsaw_tiles",
    "color_quantized_rgb_encoder",
    "inpainting",
)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ROUND_TRIP], ids=ROUND_TRIP)
def test_pretext_model_save_load_round_trip(case, tmp_path):
    _, _, task, options, _, _ = case
    _, model = _build(case)
    x, _ = _batch(model, task, options, batch=2)
    path = tmp_path / f"{case[0]}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
    assert loaded.name == model.name and loaded.output_shape == model.output_shape


def test_all_pretext_models_share_one_encoder_and_train_it_in_turn():
    encoder = build_ssl_encoder((32, 32, 3), width=4)
    rot = build_pretext_model(encoder, "rotation")
    den = build_pretext_model(encoder, "denoising")
    kernel = encoder.get_layer("stem_conv").kernel
    assert rot.get_layer("ssl_encoder") is encoder
    assert any(v is kernel for v in den.weights)
    den.compile(keras.optimizers.SGD(0.1), loss=pretext_loss("denoising"), run_eagerly=True)
    before = kernel.numpy().copy()
    x, y = _batch(den, "denoising", {})
    den.train_on_batch(x, y)
    # the rotation model sees the weights the denoising step wrote
    assert not np.allclose(before, rot.get_layer("ssl_encoder").get_layer("stem_conv").kernel)


def test_jigsaw_pads_a_crop_back_to_the_encoder_size():
    encoder = build_ssl_encoder((32, 32, 3), width=4)
    model = build_pretext_model(encoder, "jigsaw", num_permutations=5)
    assert model.input_shape == (None, 30, 30, 3)
    pad = model.get_layer("jigsaw_pad")
    padded = pad(np.ones((1, 30, 30, 3), "float32")).numpy()
    assert padded.shape == (1, 32, 32, 3) and padded.sum() == 30 * 30 * 3
    assert padded[0, 0].sum() == 0 and padded[0, -1].sum() == 0


def test_colorization_repeats_gray_for_an_rgb_encoder():
    encoder = build_ssl_encoder((16, 16, 3), width=4)
    model = build_pretext_model(encoder, "colorization")
    assert model.input_shape == (None, 16, 16, 1)
    gray = model.get_layer("gray_to_rgb")
    x = images(1, (16, 16, 1))
    np.testing.assert_array_equal(gray([x, x, x]), np.repeat(x, 3, axis=-1))


@pytest.mark.parametrize(
    "enc_shape, task, kwargs, match",
    [
        ((16, 16, 3), "rotations", {}, "task='rotations'"),
        ((16, 16, 3), "rotation", {"num_bins": 3}, "num_bins=3"),
        ((16, 16, 3), "jigsaw", {"num_permutations": 1}, "num_permutations=1"),
        ((16, 16, 3), "jigsaw", {"tiles": "yes"}, "tiles='yes'"),
        ((16, 16, 3), "jigsaw", {"tiles": True, "input_shape": (9, 5, 5, 3)}, "9, 5, 5, 3"),
        ((None, None, 3), "jigsaw", {"tiles": True, "input_shape": (8, 5, 5, 3)}, "8, 5, 5"),
        ((16, 16, 3), "rotation", {"dropout": 1.0}, "dropout=1.0"),
        ((16, 16, 3), "colorization", {"mode": "lab"}, "mode='lab'"),
        ((16, 16, 3), "colorization", {"mode": "quantized"}, "num_bins=None"),
        ((16, 16, 3), "colorization", {"num_bins": 5}, "num_bins=5"),
        ((16, 16, 3), "colorization", {"input_shape": (16, 16, 3)}, r"16, 16, 3"),
        ((16, 16, 3), "inpainting", {"input_shape": (16, 16, 1)}, r"16, 16, 1"),
        ((16, 16, 3), "inpainting", {"input_shape": (20, 20, 3)}, r"20, 20, 3"),
        ((16, 16, 3), "inpainting", {"decoder_width": 0}, "decoder_width=0"),
        ((None, None, 3), "denoising", {}, r"input_shape=\(None, None, 3\)"),
        ((16, 16, 3), "jigsaw", {"input_shape": (9, 9, 3)}, r"9, 9, 3"),
    ],
)
def test_pretext_model_bad_arguments_echo_the_value(enc_shape, task, kwargs, match):
    encoder = build_ssl_encoder(enc_shape, width=4)
    with pytest.raises(ValueError, match=match):
        build_pretext_model(encoder, task, **kwargs)


def test_pretext_model_needs_a_keras_model():
    with pytest.raises(ValueError, match="encoder='enc'"):
        build_pretext_model("enc", "rotation")


@pytest.mark.slow
def test_encoder_tflite_export_matches_keras(tmp_path):
    from zoo.export import export_tflite, verify_export

    encoder = build_ssl_encoder((32, 32, 3), feature_dim=16)
    x = images(4, (32, 32, 3), seed=3)
    path = export_tflite(encoder, tmp_path / "encoder.tflite")
    # float32 TFLite: max |difference| <= 1e-4 * max(1, max |feature|) (verify_export default)
    report = verify_export(encoder, x, tflite_paths=[path])
    assert report["ok"]
    (entry,) = report["tflite"].values()
    assert entry["kind"] == "float32"
    assert all(
        o["max_abs"] <= 1e-4 * max(1.0, float(np.abs(encoder(x)).max()))
        for o in entry["outputs"].values()
    )


def test_feature_map_backs_a_downstream_head_with_the_same_variables():
    encoder = build_ssl_encoder((28, 28, 1), width=4)
    view = encoder_feature_map(encoder)
    head = keras.layers.Conv2D(3, 1)(view.output)
    detector = keras.Model(view.input, head)
    x = tf.constant(images(2, (28, 28, 1)))
    assert detector(x).shape == (2, 4, 4, 3)
    assert _leaves(encoder) <= _leaves(detector)


def test_public_import_and_float32_outputs_under_mixed_precision():
    import zoo

    assert zoo.build_ssl_encoder is build_ssl_encoder
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        encoder = build_ssl_encoder((16, 16, 3), width=4)
        assert encoder.get_layer("stem_conv").compute_dtype == "float16"
        for task in ("rotation", "inpainting"):
            model = build_pretext_model(encoder, task)
            assert model(images(1, (16, 16, 3))).dtype == "float32"
        assert encoder(images(1, (16, 16, 3))).dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)
