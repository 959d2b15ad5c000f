"""Masked-token loss: cross-entropy over the selected (masked) positions only.

``L = Σ_i w_i · CE(t_i, softmax(z_i)) / Σ_i w_i`` over every position ``i`` of the batch, with
``w_i = 1`` on the positions chosen by ``zoo.text.masking.mask_tokens`` / ``mask_spans`` and 0
elsewhere (padding, unselected tokens). The loss is 0 (finite, zero gradient) when a batch has
no selected position. Computed in float32 (mixed-precision logits are cast first).

How the weights reach the loss with ``model.fit``: as Keras SAMPLE WEIGHTS. ``make_mlm_dataset``
yields ``(masked_ids, targets, weights)``, which Keras unpacks as ``(x, y, sample_weight)`` and
passes to ``MaskedTokenLoss``; the loss uses the reduction ``"mean_with_sample_weight"`` (the sum
of weighted per-token losses divided by the sum of the weights, 0 when that sum is 0), so the
mean is over the selected positions, not over ``B × L``. Metrics that should count selected
positions only go in ``compile(weighted_metrics=[...])``.

Example:
    >>> model.compile("adam", loss=MaskedTokenLoss(),
    ...               weighted_metrics=[keras.metrics.SparseCategoricalAccuracy("masked_accuracy")])
    >>> model.fit(make_mlm_dataset(texts, tokenizer, 64, seed=0), steps_per_epoch=100)
    >>> masked_token_loss(targets, logits, weights)      # the same value, as a pure function
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["MaskedTokenLoss", "masked_token_loss", "token_cross_entropy"]


def token_cross_entropy(targets, logits):
    """Per-token sparse cross-entropy ``(B, L)`` from logits ``(B, L, V)`` (float32)."""
    logits = ops.cast(logits, "float32")
    targets = ops.cast(targets, "int32")
    return ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)


def masked_token_loss(targets, logits, weights):
    """Cross-entropy averaged over the selected positions.

    Args:
        targets: int ``(B, L)`` original token ids.
        logits: float ``(B, L, V)`` predictions.
        weights: float ``(B, L)``: 1 on selected positions, 0 elsewhere (any non-negative
            weights work: a weighted mean).

    Returns:
        Scalar float32: ``Σ w·CE / Σ w``, and 0 when ``Σ w = 0``.

    Example:
        >>> masked_token_loss([[3, 4]], logits, [[1.0, 0.0]])   # only position 0 counts
    """
    weights = ops.cast(weights, "float32")
    per_token = token_cross_entropy(targets, logits)
    return ops.divide_no_nan(ops.sum(per_token * weights), ops.sum(weights))


@keras.saving.register_keras_serializable(package="zoo")
class MaskedTokenLoss(keras.losses.Loss):
    """Masked-token loss for ``model.fit``: the weights come as sample weights.

    ``call`` returns the per-token cross-entropy; Keras multiplies it by the sample weights
    (``weights`` of ``make_mlm_dataset``) and the ``"mean_with_sample_weight"`` reduction
    divides by their sum, which is ``masked_token_loss``. Without sample weights every
    position counts (a plain mean).

    Args:
        reduction: Keras reduction (default ``"mean_with_sample_weight"``).
        name: Loss name.

    Example:
        >>> loss = MaskedTokenLoss()
        >>> loss(targets, logits, sample_weight=weights)   # == masked_token_loss(...)
    """

    def __init__(self, reduction="mean_with_sample_weight", name="masked_token_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return token_cross_entropy(y_true, y_pred)
