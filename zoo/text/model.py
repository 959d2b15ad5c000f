"""A small Transformer text encoder and its masked-token (BERT-style) prediction head.

``build_text_encoder`` is a functional model: token ids ``(B, L)`` -> token embeddings plus
learned position embeddings -> ``num_layers`` pre-norm Transformer blocks (multi-head
self-attention that ignores padding, then a feed-forward network, each with a residual
connection) -> final layer norm -> features ``(B, L, embed_dim)``. Padding (id 0) is masked out
of every attention's keys, so the features of real tokens do not depend on the padding.

``build_mlm_model`` puts the masked-token head on an encoder (dense + GELU + layer norm +
vocabulary logits, float32): ``(B, L)`` ids -> ``(B, L, vocab_size)`` logits. The encoder stays
a nested model (``mlm.get_layer(encoder.name)``) for reuse after pretraining.

Example:
    >>> encoder = build_text_encoder(vocab_size=300, sequence_length=24)
    >>> mlm = build_mlm_model(encoder, vocab_size=300)
    >>> mlm.compile("adam", MaskedTokenLoss(), weighted_metrics=["sparse_categorical_accuracy"])
    >>> mlm.fit(make_mlm_dataset(texts, tokenizer, 64, seed=0), steps_per_epoch=100)

Reference:
    Vaswani et al., "Attention Is All You Need", 2017; Devlin et al., "BERT", 2019; pre-norm
    blocks as in Xiong et al., "On Layer Normalization in the Transformer Architecture", 2020.
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.ops.checks import check_int

__all__ = ["TokenAndPositionEmbedding", "build_mlm_model", "build_text_encoder"]


@keras.saving.register_keras_serializable(package="zoo")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus a learned position embedding.

    Args:
        vocab_size: Number of token ids.
        sequence_length: Longest sequence (number of learned positions); shorter inputs use
            the first positions.
        embed_dim: Embedding size ``D``.

    Call:
        ``layer(ids)`` with int ids ``(B, L)``, ``L <= sequence_length`` -> ``(B, L, D)``.

    Example:
        >>> TokenAndPositionEmbedding(100, 16, 8)(ops.ones((2, 16), "int32")).shape
        (2, 16, 8)
    """

    def __init__(self, vocab_size, sequence_length, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_int("vocab_size", vocab_size)
        self.sequence_length = check_int("sequence_length", sequence_length)
        self.embed_dim = check_int("embed_dim", embed_dim)
        self.token_embedding = keras.layers.Embedding(
            vocab_size, embed_dim, embeddings_initializer="glorot_uniform", name="tokens"
        )
        self.position_embedding = keras.layers.Embedding(
            sequence_length, embed_dim, embeddings_initializer="glorot_uniform", name="positions"
        )

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding.build((self.sequence_length,))
        self.built = True

    def call(self, ids):
        length = ops.shape(ids)[-1]
        positions = self.position_embedding(ops.arange(length, dtype="int32"))
        return self.token_embedding(ids) + ops.expand_dims(positions, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            sequence_length=self.sequence_length,
            embed_dim=self.embed_dim,
        )
        return config


def build_text_encoder(
    vocab_size,
    sequence_length,
    embed_dim=64,
    num_heads=4,
    ff_dim=128,
    num_layers=2,
    dropout=0.1,
    pad_id=0,
    name="text_encoder",
):
    """A small Transformer encoder (functional API).

    Args:
        vocab_size: Number of token ids (``tokenizer.vocab_size``).
        sequence_length: Number of learned positions (inputs may be shorter).
        embed_dim: Feature size ``D``; must be divisible by ``num_heads``.
        num_heads: Attention heads per block (key size ``embed_dim // num_heads``).
        ff_dim: Hidden size of each block's feed-forward network (GELU).
        num_layers: Number of Transformer blocks (>= 1).
        dropout: Dropout rate on attention weights and on each residual branch.
        pad_id: Padding id, masked out of the attention keys.
        name: Model name.

    Returns:
        ``keras.Model``: int ids ``(B, L)`` -> float features ``(B, L, embed_dim)``.

    Example:
        >>> encoder = build_text_encoder(300, 24, embed_dim=32, num_heads=2, num_layers=1)
        >>> encoder(ops.ones((2, 24), "int32")).shape
        (2, 24, 32)
    """
    check_int("embed_dim", embed_dim)
    check_int("num_heads", num_heads)
    check_int("ff_dim", ff_dim)
    check_int("num_layers", num_layers)
    if embed_dim % num_heads:
        raise ValueError(
            "embed_dim must be divisible by num_heads. "
            f"Received: embed_dim={embed_dim}, num_heads={num_heads}"
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")

    # === Functional Model ===
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    # (B, 1, L): every query may attend to every non-padding key.
    attention_mask = ops.expand_dims(ops.not_equal(ids, pad_id), axis=1)
    x = TokenAndPositionEmbedding(vocab_size, sequence_length, embed_dim, name="embedding")(ids)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(num_layers):
        prefix = f"block{i + 1}"
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_attention_norm")(x)
        h = keras.layers.MultiHeadAttention(
            num_heads,
            embed_dim // num_heads,
            dropout=dropout,
            name=f"{prefix}_attention",
        )(h, h, attention_mask=attention_mask)
        h = keras.layers.Dropout(dropout, name=f"{prefix}_attention_dropout")(h)
        x = keras.layers.Add(name=f"{prefix}_attention_residual")([x, h])
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_ff_norm")(x)
        h = keras.layers.Dense(ff_dim, activation="gelu", name=f"{prefix}_ff_hidden")(h)
        h = keras.layers.Dense(embed_dim, name=f"{prefix}_ff_output")(h)
        h = keras.layers.Dropout(dropout, name=f"{prefix}_ff_dropout")(h)
        x = keras.layers.Add(name=f"{prefix}_ff_residual")([x, h])
    features = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    return keras.Model(ids, features, name=name)


def build_mlm_model(encoder, vocab_size, name="mlm"):
    """The encoder plus a masked-token prediction head.

    Args:
        encoder: A model from ``build_text_encoder`` (ids ``(B, L)`` -> ``(B, L, D)``).
        vocab_size: Number of token ids to predict.
        name: Model name.

    Returns:
        ``keras.Model``: int ids ``(B, L)`` -> float32 logits ``(B, L, vocab_size)``. Train with
        ``zoo.text.loss.MaskedTokenLoss`` and the weights of ``make_mlm_dataset`` as sample
        weights.

    Example:
        >>> mlm = build_mlm_model(build_text_encoder(300, 24), 300)
        >>> mlm(ops.ones((2, 24), "int32")).shape
        (2, 24, 300)
    """
    check_int("vocab_size", vocab_size)
    embed_dim = encoder.output.shape[-1]
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = encoder(ids)
    x = keras.layers.Dense(embed_dim, activation="gelu", name="mlm_transform")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="mlm_norm")(x)
    logits = keras.layers.Dense(vocab_size, dtype="float32", name="mlm_logits")(x)
    return keras.Model(ids, logits, name=name)
