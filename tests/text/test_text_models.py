"""Text encoder and MLM model: shapes, padding ignored, one training step, .keras round trip."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from zoo.text.loss import MaskedTokenLoss
from zoo.text.model import TokenAndPositionEmbedding, build_mlm_model, build_text_encoder

VOCAB, LENGTH = 40, 12


def tiny_encoder(**kwargs):
    options = dict(embed_dim=16, num_heads=2, ff_dim=32, num_layers=2, dropout=0.0)
    options.update(kwargs)
    return build_text_encoder(VOCAB, LENGTH, **options)


def test_encoder_and_mlm_shapes():
    encoder = tiny_encoder()
    ids = np.random.default_rng(0).integers(3, VOCAB, size=(3, LENGTH)).astype("int32")
    assert tuple(encoder(ids).shape) == (3, LENGTH, 16)
    mlm = build_mlm_model(encoder, VOCAB)
    logits = mlm(ids)
    assert tuple(logits.shape) == (3, LENGTH, VOCAB) and logits.dtype == "float32"
    assert mlm.get_layer("text_encoder") is encoder
    # Shorter sequences use the first positions.
    assert tuple(mlm(ids[:, :5]).shape) == (3, 5, VOCAB)
    names = [layer.name for layer in encoder.layers]
    assert sum("attention" in n and n.endswith("attention") for n in names) == 2


def test_padding_does_not_change_real_token_features():
    encoder = tiny_encoder()
    ids = np.random.default_rng(1).integers(3, VOCAB, size=(1, LENGTH)).astype("int32")
    ids[:, 7:] = 0
    padded = ops.convert_to_numpy(encoder(ids))
    # The 7 real tokens' features are those of the same 7 tokens without any padding...
    unpadded = ops.convert_to_numpy(encoder(ids[:, :7]))
    np.testing.assert_allclose(padded[:, :7], unpadded, atol=1e-5)
    # ... while a real token in place of a padding one does change them (attention sees it).
    other = ids.copy()
    other[:, 8] = 5
    changed = ops.convert_to_numpy(encoder(other))
    assert np.abs(changed[:, :7] - padded[:, :7]).max() > 1e-4


@pytest.mark.slow
def test_training_steps_reduce_the_masked_loss():
    keras.utils.set_random_seed(0)
    mlm = build_mlm_model(tiny_encoder(), VOCAB)
    mlm.compile(keras.optimizers.Adam(1e-2), loss=MaskedTokenLoss(), jit_compile=False)
    rng = np.random.default_rng(2)
    targets = rng.integers(3, VOCAB, size=(8, LENGTH)).astype("int32")
    weights = (rng.random((8, LENGTH)) < 0.3).astype("float32")
    masked = np.where(weights == 1, 2, targets).astype("int32")
    losses = [float(mlm.train_on_batch(masked, targets, sample_weight=weights)) for _ in range(6)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.slow
def test_keras_round_trip(tmp_path):
    mlm = build_mlm_model(tiny_encoder(dropout=0.1), VOCAB)
    ids = np.random.default_rng(3).integers(0, VOCAB, size=(2, LENGTH)).astype("int32")
    expected = ops.convert_to_numpy(mlm(ids))
    path = tmp_path / "mlm.keras"
    mlm.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(ids)), expected, atol=1e-5)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        mlm.get_config(), sort_keys=True
    )
    layer = TokenAndPositionEmbedding(VOCAB, LENGTH, 8)
    assert (
        TokenAndPositionEmbedding.from_config(layer.get_config()).get_config() == layer.get_config()
    )


def test_builder_arguments_are_checked():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        build_text_encoder(VOCAB, LENGTH, embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="num_layers"):
        build_text_encoder(VOCAB, LENGTH, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        build_text_encoder(VOCAB, LENGTH, dropout=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        build_mlm_model(tiny_encoder(), 0)
