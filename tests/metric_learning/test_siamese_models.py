"""Siamese / triplet / two-tower builders: shared weights, shapes, one training step, save/load."""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.backbones.towers import JoinBatches, SplitBatches
from zoo.metric_learning.loss import ContrastiveLoss, TripletLoss, TripletMarginLoss
from zoo.metric_learning.model import (
    PairDistance,
    StackEmbeddings,
    build_embedding_model,
    build_siamese,
    build_triplet,
    build_two_tower,
    feature_readout,
)


def tiny_encoder(shape=(12, 12, 1), dim=8):
    return build_embedding_model(shape, embedding_dim=dim, width=4)


def images(n, shape=(12, 12, 1), seed=0):
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype("float32")


def test_embedding_model_shapes_and_unit_norm():
    model = tiny_encoder()
    out = model(images(3), training=False).numpy()
    assert model.output_shape == (None, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    raw = build_embedding_model((12, 12, 1), embedding_dim=5, width=4, normalize=False)
    assert not np.allclose(np.linalg.norm(raw(images(3)).numpy(), axis=1), 1.0)


def test_embedding_model_mlp_and_custom_backbone():
    mlp = build_embedding_model((10,), embedding_dim=3, backbone="mlp", width=2)
    assert mlp.input.name == "features" and mlp.output_shape == (None, 3)
    custom = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(4, 3)])
    model = build_embedding_model((12, 12, 1), embedding_dim=6, backbone=custom)
    assert model(images(2)).shape == (2, 6)


@pytest.mark.slow
def test_embedding_model_named_zoo_backbone_with_grayscale():
    model = build_embedding_model(
        (32, 32, 1),
        embedding_dim=4,
        backbone="mobilenet_v3_small",
        backbone_kwargs={"width_multiplier": 0.75},
    )
    assert model(images(1, (32, 32, 1))).shape == (1, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"backbone": "resnet9000"}, "resnet9000"),
        ({"dropout": 1.5}, "dropout"),
        ({"input_shape": (5, 5)}, "input_shape"),
    ],
)
def test_embedding_model_bad_arguments(kwargs, match):
    args = {"input_shape": (12, 12, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        build_embedding_model(**args)


def test_siamese_branches_share_the_same_variables():
    encoder = tiny_encoder()
    siamese = build_siamese(encoder)
    # one encoder layer inside, and the model's variables are exactly the encoder's
    assert siamese.get_layer(encoder.name) is encoder
    assert {id(v) for v in siamese.trainable_variables} == {
        id(v) for v in encoder.trainable_variables
    }
    x = images(4)
    out = siamese({"input_a": x, "input_b": x}, training=False)
    np.testing.assert_allclose(out["distance"].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(out["embeddings"][:, 0], out["embeddings"][:, 1], atol=1e-7)


@pytest.mark.slow
def test_siamese_gradient_step_moves_both_branches_identically():
    encoder = tiny_encoder()
    siamese = build_siamese(encoder)
    xa, xb, xc = images(4, seed=1), images(4, seed=2), images(4, seed=3)
    before_a = encoder(xc, training=False).numpy()
    siamese.compile(keras.optimizers.SGD(0.5), loss={"distance": ContrastiveLoss(margin=1.0)})
    siamese.train_on_batch({"input_a": xa, "input_b": xb}, {"distance": np.zeros(4)})
    # after the step, both branches are still the same function of their input
    out = siamese({"input_a": xc, "input_b": xc}, training=False)
    np.testing.assert_allclose(out["embeddings"][:, 0], out["embeddings"][:, 1], atol=1e-7)
    after = encoder(xc, training=False).numpy()
    assert not np.allclose(before_a, after)  # the step did move the (shared) weights
    # the gradient reaching a shared variable is the sum of both branches' contributions
    with tf.GradientTape(persistent=True) as tape:
        ea, eb = encoder(xa, training=False), encoder(xb, training=False)
        total = tf.reduce_sum(ea * eb)
        only_a = tf.reduce_sum(ea * tf.stop_gradient(eb))
        only_b = tf.reduce_sum(tf.stop_gradient(ea) * eb)
    kernel = encoder.get_layer("embedding").kernel
    g = tape.gradient(total, kernel).numpy()
    ga, gb = tape.gradient(only_a, kernel).numpy(), tape.gradient(only_b, kernel).numpy()
    np.testing.assert_allclose(g, ga + gb, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("distance", ["l2", "squared_l2", "cosine"])
def test_siamese_distance_output_matches_embeddings(distance):
    siamese = build_siamese(tiny_encoder(), distance=distance)
    out = siamese({"input_a": images(3, seed=1), "input_b": images(3, seed=2)})
    a, b = out["embeddings"][:, 0].numpy(), out["embeddings"][:, 1].numpy()
    want = {
        "l2": np.linalg.norm(a - b, axis=1),
        "squared_l2": np.sum((a - b) ** 2, axis=1),
        "cosine": 1 - np.sum(a * b, axis=1),  # unit-norm embeddings
    }[distance]
    np.testing.assert_allclose(out["distance"].numpy(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_triplet_model_shares_encoder_and_trains():
    encoder = tiny_encoder()
    triplet = build_triplet(encoder)
    assert {id(v) for v in triplet.trainable_variables} == {
        id(v) for v in encoder.trainable_variables
    }
    x = {"anchor": images(4, seed=1), "positive": images(4, seed=2), "negative": images(4, seed=3)}
    out = triplet(x)
    assert out["embeddings"].shape == (4, 3, 8) and out["distances"].shape == (4, 2)
    e = out["embeddings"].numpy()
    np.testing.assert_allclose(out["distances"][:, 0], np.sum((e[:, 0] - e[:, 1]) ** 2, 1), 1e-4)
    triplet.compile("adam", loss={"embeddings": TripletMarginLoss(margin=0.5)})
    loss = triplet.train_on_batch(x, {"embeddings": np.zeros(4)})
    assert np.isfinite(loss)


def test_branches_go_through_the_encoder_as_one_batch():
    """Inference equals separate calls; in training BatchNormalization sees all branches."""
    encoder = tiny_encoder()
    names = ("anchor", "positive", "negative")
    x = {name: images(4, seed=i) + 40.0 * i for i, name in enumerate(names)}
    triplet = build_triplet(encoder)
    separate = np.stack([encoder(x[name]).numpy() for name in names], axis=1)
    np.testing.assert_allclose(triplet(x)["embeddings"], separate, atol=1e-5)
    joined = encoder(np.concatenate([x[name] for name in names]), training=True).numpy()
    trained = triplet(x, training=True)["embeddings"].numpy()
    np.testing.assert_allclose(trained, joined.reshape(3, 4, -1).transpose(1, 0, 2), atol=1e-5)
    # the branches' own statistics would give other embeddings (their means differ by 40)
    own = np.stack([encoder(x[name], training=True).numpy() for name in names], axis=1)
    assert np.abs(trained - own).max() > 1e-3
    siamese = build_siamese(encoder)
    pair = siamese({"input_a": x["anchor"], "input_b": x["negative"]}, training=True)
    joined = encoder(np.concatenate([x["anchor"], x["negative"]]), training=True).numpy()
    np.testing.assert_allclose(
        pair["embeddings"], joined.reshape(2, 4, -1).transpose(1, 0, 2), atol=1e-5
    )


@pytest.mark.slow
def test_two_tower_different_encoders_shared_space():
    image_encoder = tiny_encoder(dim=6)
    vector_encoder = build_embedding_model((20,), embedding_dim=5, backbone="mlp", width=2)
    model = build_two_tower(image_encoder, vector_encoder, projection_dim=7)
    x = {"input_a": images(3), "input_b": np.random.rand(3, 20).astype("float32")}
    out = model(x)
    assert out["embeddings"].shape == (3, 2, 7) and out["distance"].shape == (3,)
    tower_a, tower_b = model.get_layer("tower_a"), model.get_layer("tower_b")
    np.testing.assert_allclose(tower_a(x["input_a"]), out["embeddings"][:, 0], atol=1e-6)
    np.testing.assert_allclose(tower_b(x["input_b"]), out["embeddings"][:, 1], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out["embeddings"], axis=-1), 1.0, rtol=1e-5)
    model.compile("adam", loss={"embeddings": ContrastiveLoss(margin=0.5)})
    assert np.isfinite(model.train_on_batch(x, {"embeddings": np.array([0.0, 1.0, 0.0])}))


def test_two_tower_same_encoder_shares_it_but_not_projections():
    encoder = tiny_encoder()
    model = build_two_tower(encoder, encoder, projection_dim=4)
    a, b = model.get_layer("tower_a"), model.get_layer("tower_b")
    assert a.get_layer(encoder.name) is b.get_layer(encoder.name)
    assert a.get_layer("tower_a_projection").kernel is not b.get_layer("tower_b_projection").kernel


@pytest.mark.slow
def test_online_triplet_training_step_on_tower():
    encoder = tiny_encoder()
    encoder.compile("adam", loss=TripletLoss(margin=0.2, mining="semi-hard"))
    loss = encoder.train_on_batch(images(8), np.repeat(np.arange(4), 2))
    assert np.isfinite(loss) and loss > 0


@pytest.mark.parametrize("builder", ["siamese", "triplet", "two_tower"])
def test_save_load_round_trip(tmp_path, builder):
    encoder = tiny_encoder()
    model = {
        "siamese": lambda: build_siamese(encoder, distance="cosine"),
        "triplet": lambda: build_triplet(encoder),
        "two_tower": lambda: build_two_tower(encoder, tiny_encoder(dim=3), projection_dim=5),
    }[builder]()
    names = [t.name for t in model.inputs]
    x = {name: images(2, seed=i) for i, name in enumerate(sorted(model.input))}
    assert sorted(model.input) == sorted(names)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    before, after = model(x), restored(x)
    for key in before:
        np.testing.assert_allclose(before[key], after[key], atol=1e-6)
    assert json.dumps(model.get_config(), sort_keys=True, default=str) == json.dumps(
        restored.get_config(), sort_keys=True, default=str
    )


def test_layers_config_and_mixed_precision_output_is_float32():
    layer = PairDistance("cosine")
    assert PairDistance.from_config(layer.get_config()).distance == "cosine"
    assert StackEmbeddings.from_config(StackEmbeddings(axis=-1).get_config()).axis == -1
    assert SplitBatches.from_config(SplitBatches(3).get_config()).n == 3
    parts = SplitBatches(2)(JoinBatches()([np.zeros((2, 3)), np.ones((2, 3))]))
    np.testing.assert_array_equal(parts[1], np.ones((2, 3)))
    with pytest.raises(ValueError, match="n=0"):
        SplitBatches(0)
    with pytest.raises(ValueError, match="distance"):
        PairDistance("l1")
    previous = keras.config.dtype_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        siamese = build_siamese(tiny_encoder())
        out = siamese({"input_a": images(2), "input_b": images(2, seed=1)})
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert out["distance"].dtype == tf.float32 and out["embeddings"].dtype == tf.float32


def test_builders_reject_bad_encoders():
    with pytest.raises(ValueError, match="single-input"):
        build_siamese("not a model")
    with pytest.raises(ValueError, match="projection_dim"):
        build_two_tower(tiny_encoder(), tiny_encoder(), projection_dim=0)


def test_feature_readout_is_the_normalised_flattened_inner_map_with_shared_weights():
    encoder = tiny_encoder()
    x = images(3, seed=7)
    readout = feature_readout(encoder, "cnn_relu1_1")
    inner = keras.Model(encoder.inputs, encoder.get_layer("cnn_relu1_1").output)(x)
    flat = np.asarray(inner).reshape(3, -1)
    expected = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # called on a plain batch: no input-structure warning
        got = np.asarray(readout(x))
    assert got.shape == (3, 6 * 6 * 8)  # 12 px pooled once, width 4 doubled
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the same variables: a change to the encoder shows in the readout
    conv = encoder.get_layer("cnn_conv0_0")
    conv.kernel.assign(conv.kernel * 2.0 + 0.1)
    assert not np.allclose(np.asarray(readout(x)), got)
    with pytest.raises(ValueError, match="layer must name a layer"):
        feature_readout(encoder, "no_such_layer")
