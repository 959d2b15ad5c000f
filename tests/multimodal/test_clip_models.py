"""zoo.multimodal.model: towers, temperature, one training step, .keras and export round trips."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.multimodal.loss import CLIPLoss, clip_loss
from zoo.multimodal.metrics import cross_modal_recall_at_k, similarity_matrix_plot
from zoo.multimodal.model import (
    CLIPLogits,
    MaskedMeanPooling,
    SpecAugment,
    build_audio_encoder,
    build_caption_encoder,
    build_clip,
    build_image_encoder,
    class_prototypes,
    classify_by_prototypes,
    embed,
    knn_classify,
    zero_shot_classify,
)

VOCAB, LENGTH = 20, 8


def image_text(**kwargs):
    return build_clip(
        build_image_encoder((16, 16, 3), embedding_dim=16, width=4),
        build_caption_encoder(VOCAB, LENGTH, embedding_dim=16, width=8),
        projection_dim=8,
        **kwargs,
    )


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (n, 16, 16, 3)).astype(np.float32)
    tokens = rng.integers(2, VOCAB, (n, LENGTH)).astype(np.int32)
    tokens[:, 5:] = 0
    return {"input_a": images, "input_b": tokens}


def variable_ids(model):
    return {id(v) for v in model.weights}


def test_outputs_and_towers():
    model = image_text()
    out = model(batch(), training=False)
    assert out["logits"].shape == (4, 4) and out["embeddings"].shape == (4, 2, 8)
    tower_a, tower_b = model.get_layer("tower_a"), model.get_layer("tower_b")
    ea = np.asarray(tower_a(batch()["input_a"]))
    np.testing.assert_allclose(np.linalg.norm(ea, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out["embeddings"])[:, 0], ea, rtol=1e-5, atol=1e-6)
    # logits = exp(logit_scale) * cosine similarities, initial temperature 0.07
    eb = np.asarray(tower_b(batch()["input_b"]))
    np.testing.assert_allclose(np.asarray(out["logits"]), ea @ eb.T / 0.07, rtol=1e-4, atol=1e-4)
    assert float(model.get_layer("logits").logit_scale) == pytest.approx(math.log(1 / 0.07))


def test_towers_share_nothing_unless_the_encoder_is_shared():
    model = image_text()
    a, b = model.get_layer("tower_a"), model.get_layer("tower_b")
    assert not variable_ids(a) & variable_ids(b)
    audio = build_audio_encoder((16, 16, 2), embedding_dim=8, width=4)
    image = build_image_encoder((16, 16, 2), embedding_dim=8, width=4)
    assert not variable_ids(audio) & variable_ids(image)
    # asked to share: the same encoder twice -> common encoder variables, own projections
    encoder = build_image_encoder((16, 16, 3), embedding_dim=8, width=4)
    shared = build_clip(encoder, encoder, projection_dim=4)
    a, b = shared.get_layer("tower_a"), shared.get_layer("tower_b")
    common = variable_ids(a) & variable_ids(b)
    assert common == variable_ids(encoder)
    assert variable_ids(a) - common and variable_ids(b) - common  # the projections


def test_learnable_temperature_gets_a_gradient_and_can_be_frozen():
    model = image_text()
    layer = model.get_layer("logits")
    with tf.GradientTape() as tape:
        out = model(batch(), training=True)
        loss = clip_loss(out["embeddings"][:, 0], out["embeddings"][:, 1], layer.logit_scale)
    grads = tape.gradient(loss, model.trainable_weights)
    by_name = {v.path: g for v, g in zip(model.trainable_weights, grads, strict=True)}
    scale_grad = by_name[layer.logit_scale.path]
    assert scale_grad is not None and abs(float(scale_grad)) > 0
    assert all(g is not None for g in grads)
    frozen = image_text(learn_temperature=False).get_layer("logits")
    assert frozen.logit_scale not in frozen.trainable_weights


@pytest.mark.slow
def test_one_training_step_is_finite_and_moves_the_temperature():
    model = image_text()
    model.compile(keras.optimizers.Adam(1e-2), loss={"logits": CLIPLoss()}, jit_compile=False)
    before = float(model.get_layer("logits").logit_scale)
    history = model.fit(batch(8), {"logits": np.zeros(8, np.float32)}, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert float(model.get_layer("logits").logit_scale) != pytest.approx(before, abs=1e-6)


def test_keras_round_trip(tmp_path):
    model = image_text()
    model.get_layer("logits").logit_scale.assign(2.5)
    path = tmp_path / "clip.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert json.dumps(loaded.get_layer("logits").get_config(), sort_keys=True) == json.dumps(
        model.get_layer("logits").get_config(), sort_keys=True
    )
    x = batch()
    for key in ("logits", "embeddings"):
        np.testing.assert_allclose(
            np.asarray(loaded(x)[key]), np.asarray(model(x)[key]), rtol=1e-5, atol=1e-5
        )
    assert float(loaded.get_layer("logits").logit_scale) == pytest.approx(2.5)


def test_layers_check_arguments_and_masked_pooling():
    with pytest.raises(ValueError, match="max_scale=-1"):
        CLIPLogits(max_scale=-1)
    with pytest.raises(ValueError, match="pooling='lstm'"):
        build_caption_encoder(10, pooling="lstm")
    with pytest.raises(ValueError, match="image_shape=\\(4, 4, 3\\)"):
        build_image_encoder((4, 4, 3))
    features = np.arange(6, dtype="float32").reshape(1, 3, 2)
    pooled = MaskedMeanPooling()([features, np.array([[5, 7, 0]])])
    np.testing.assert_allclose(np.asarray(pooled), [[1.0, 2.0]])  # mean of rows 0 and 1
    # the padding token's embedding never reaches a (mean-pooled) text embedding
    encoder = build_caption_encoder(VOCAB, LENGTH, embedding_dim=4, width=4, pooling="mean")
    tokens = np.array([[3, 4, 0, 0, 0, 0, 0, 0]], np.int32)
    before = np.asarray(encoder(tokens))
    table = encoder.get_layer("token_embedding").embeddings
    table.assign(keras.ops.concatenate([100.0 * keras.ops.ones((1, 4)), table[1:]]))
    np.testing.assert_allclose(np.asarray(encoder(tokens)), before, rtol=1e-6)


def test_recall_zero_shot_and_prototypes_on_known_embeddings():
    # b_i = a_i: perfect retrieval; a permuted gallery halves recall@1 exactly
    a = np.eye(4, dtype=np.float32)
    result = cross_modal_recall_at_k(a, a, ks=(1, 2))
    assert result == {
        "a_to_b": {"recall@1": 1.0, "recall@2": 1.0},
        "b_to_a": {"recall@1": 1.0, "recall@2": 1.0},
    }
    b = a[[1, 0, 2, 3]]
    assert cross_modal_recall_at_k(a, b, ks=(1,))["a_to_b"]["recall@1"] == 0.5
    # with labels, a neighbour of the same label counts
    labels = np.array([0, 0, 1, 1])
    assert cross_modal_recall_at_k(a, b, (1,), labels, labels)["b_to_a"]["recall@1"] == 1.0
    protos = class_prototypes(np.array([[1, 0], [3, 0], [0, 2]], np.float32), [0, 0, 1])
    np.testing.assert_allclose(protos, [[1, 0], [0, 1]])
    pred, sims = classify_by_prototypes(np.array([[0.1, 1.0], [2.0, 0.5]]), protos)
    assert list(pred) == [1, 0] and sims.shape == (2, 2)
    refs = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0.2, 1]], np.float32)
    ref_labels = np.array([0, 0, 1, 1, 1])
    queries = np.array([[1, 0.05], [0.05, 1], [1, 0.9]], np.float32)
    assert list(knn_classify(queries, refs, ref_labels, k=1)) == [0, 1, 0]
    assert list(knn_classify(queries, refs, ref_labels, k=5)) == [1, 1, 1]  # majority


def test_zero_shot_classify_with_string_prompts_and_ensembles():
    model = image_text()
    images = batch(6)["input_a"]

    def tokenizer(strings):
        return np.array([[2 + len(s) % 10] + [0] * (LENGTH - 1) for s in strings], np.int32)

    tower_a, tower_b = model.get_layer("tower_a"), model.get_layer("tower_b")
    prompts = ["a", "bb", "ccc"]
    pred, sims = zero_shot_classify(tower_a, tower_b, images, prompts, tokenizer)
    ia = embed(tower_a, images)
    tb = embed(tower_b, tokenizer(prompts))
    np.testing.assert_array_equal(pred, np.argmax(ia @ tb.T, axis=1))
    assert sims.shape == (6, 3)
    pred2, _ = zero_shot_classify(tower_a, tower_b, images, [[p, p] for p in prompts], tokenizer)
    np.testing.assert_array_equal(pred, pred2)  # an ensemble of one prompt twice = that prompt
    with pytest.raises(ValueError, match="tokenizer"):
        zero_shot_classify(tower_a, tower_b, images, prompts)


def test_similarity_matrix_plot(tmp_path):
    a = np.random.default_rng(0).normal(size=(5, 3))
    path = similarity_matrix_plot(a, a, tmp_path / "sub" / "sim.png", a_labels=list("abcde"))
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_tower_export_round_trip(tmp_path):
    from zoo.export import export_saved_model, export_tflite, verify_export

    model = image_text()
    text_tower = model.get_layer("tower_b")
    tokens = batch(8)["input_b"]
    saved = export_saved_model(text_tower, tmp_path, "text_tower", image_input=False)
    tflite = export_tflite(text_tower, tmp_path / "text_tower.tflite")
    # stated tolerance: 1e-4 absolute on unit-norm embeddings (float32 SavedModel and .tflite)
    report = verify_export(
        text_tower,
        tokens,
        saved_model_dir=saved,
        tflite_paths=[tflite],
        tolerances={"saved_model": 1e-4, "float32": 1e-4},
    )
    assert report["ok"] and report["saved_model"]["outputs"]["outputs"]["max_abs"] < 1e-4
    image_tower = model.get_layer("tower_a")
    tflite = export_tflite(image_tower, tmp_path / "image_tower.tflite")
    report = verify_export(image_tower, batch(8)["input_a"], tflite_paths=[tflite])
    assert report["tflite"][str(tflite)]["outputs"]["outputs"]["max_abs"] < 1e-4


def test_spec_augment_masks_in_training_only():
    x = np.random.default_rng(0).uniform(1.0, 2.0, (6, 30, 16, 1)).astype("float32")
    layer = SpecAugment(freq_mask=4, time_mask=10, mel_shift=0, seed=3)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)  # inference: identity
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    zero = y == 0.0
    # the zeros of each example are whole mel bins (<= 4 wide) and whole frames (<= 10 long)
    bins = zero.all(axis=(1, 3))  # (B, M)
    frames = zero.all(axis=(2, 3))  # (B, T)
    assert bins.sum(axis=1).max() <= 4 and frames.sum(axis=1).max() <= 10
    np.testing.assert_array_equal(zero, bins[:, None, :, None] | frames[:, :, None, None])
    np.testing.assert_array_equal(y[~zero], x[~zero])


def test_spec_augment_mel_shift_moves_the_mel_axis():
    x = np.tile(np.arange(16, dtype="float32")[None, None, :, None], (8, 5, 1, 1))
    y = np.asarray(SpecAugment(0, 0, mel_shift=2, seed=1)(x, training=True))
    shift = y[:, 0, 5, 0] - 5.0  # bin 5 now holds bin 5 + shift
    assert set(np.unique(shift)) <= {-2.0, -1.0, 0.0, 1.0, 2.0}
    expected = np.clip(np.arange(16)[None, :] + shift[:, None], 0, 15)
    np.testing.assert_array_equal(y[:, 3, :, 0], expected)


def test_spec_augment_config_and_encoder_inference_unchanged():
    layer = SpecAugment(freq_mask=5, time_mask=7, mel_shift=1, seed=2, name="aug")
    clone = SpecAugment.from_config(layer.get_config())
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(
        layer.get_config(), sort_keys=True
    )
    with pytest.raises(ValueError, match="Received: mel_shift=-1"):
        SpecAugment(mel_shift=-1)
    plain = build_audio_encoder((20, 12, 1), embedding_dim=8, width=4, pooling="time_max")
    augmented = build_audio_encoder(
        (20, 12, 1), embedding_dim=8, width=4, pooling="time_max", augment=True
    )
    assert augmented.get_layer("spec_augment") is not None
    augmented.set_weights(plain.get_weights())
    x = np.random.default_rng(1).normal(size=(3, 20, 12, 1)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(augmented(x, training=False)), np.asarray(plain(x, training=False)), atol=1e-6
    )
