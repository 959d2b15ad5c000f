"""Symmetric InfoNCE (the CLIP loss) over a batch of paired embeddings.

For a batch of ``B`` pairs ``(a_i, b_i)`` with embeddings ``A``, ``B`` (``(B, D)``, usually unit
norm), the logits are ``L = s · A Bᵀ`` with the scale ``s = min(exp(logit_scale), max_scale)``
(CLIP learns ``logit_scale`` = log(1 / temperature), starts it at log(1 / 0.07) and caps the
scale at 100). Row ``i`` of ``L`` scores ``a_i`` against every ``b_j``; its target is ``j = i``.

    loss = ½ · [ mean_i CE(L[i, :], i)  +  mean_j CE(L[:, j], j) ]

(Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", 2021,
Figure 3; van den Oord et al., "Representation Learning with Contrastive Predictive Coding",
2018, for InfoNCE). Computed in float32 with a log-sum-exp, so large scales do not overflow.

Example:
    >>> a = keras.ops.normalize(keras.random.normal((8, 16)), axis=-1)
    >>> clip_loss(a, a, logit_scale=math.log(1 / 0.07))      # small: each row matches itself
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = [
    "DEFAULT_LOGIT_SCALE",
    "MAX_LOGIT_SCALE",
    "CLIPLoss",
    "clip_logits",
    "clip_loss",
    "clip_loss_from_logits",
]

DEFAULT_LOGIT_SCALE = math.log(1.0 / 0.07)  # CLIP's initial temperature 0.07
MAX_LOGIT_SCALE = 100.0  # CLIP caps exp(logit_scale) at 100


def clip_logits(emb_a, emb_b, logit_scale, max_scale=MAX_LOGIT_SCALE):
    """Scaled similarity matrix ``min(exp(logit_scale), max_scale) · emb_a emb_bᵀ`` (float32).

    Args:
        emb_a: ``(B, D)`` embeddings of modality a.
        emb_b: ``(B', D)`` embeddings of modality b.
        logit_scale: scalar (or any shape that reduces to one value), the log of the scale.
        max_scale: cap of the scale (``None``: no cap). Past the cap the scale has no gradient.

    Returns:
        ``(B, B')`` float32 logits.
    """
    emb_a = ops.cast(emb_a, "float32")
    emb_b = ops.cast(emb_b, "float32")
    scale = ops.exp(ops.reshape(ops.cast(logit_scale, "float32"), (-1,))[0])
    if max_scale is not None:
        scale = ops.minimum(scale, float(max_scale))
    return scale * ops.matmul(emb_a, ops.transpose(emb_b))


def _diagonal_ce(logits):
    """``-log softmax(logits)[i, i]`` for every row ``i`` (square logits)."""
    n = ops.shape(logits)[0]
    log_probs = logits - ops.logsumexp(logits, axis=1, keepdims=True)
    return -ops.sum(log_probs * ops.eye(n, dtype=log_probs.dtype), axis=1)


def clip_loss_from_logits(logits, reduce=True):
    """Symmetric cross-entropy of a square logit matrix whose diagonal holds the positives.

    Args:
        logits: ``(B, B)``; ``logits[i, j]`` scores a_i against b_j.
        reduce: return the mean (a scalar); False returns the per-pair loss ``(B,)``:
            ``½ (CE(row i) + CE(column i))``, whose mean is the loss.

    Returns:
        A float32 scalar, or ``(B,)`` with ``reduce=False``.
    """
    logits = ops.cast(logits, "float32")
    per_pair = 0.5 * (_diagonal_ce(logits) + _diagonal_ce(ops.transpose(logits)))
    return ops.mean(per_pair) if reduce else per_pair


def clip_loss(emb_a, emb_b, logit_scale=DEFAULT_LOGIT_SCALE, max_scale=MAX_LOGIT_SCALE):
    """The CLIP loss: symmetric InfoNCE of paired embeddings (see the module docstring).

    Args:
        emb_a, emb_b: ``(B, D)`` embeddings; row ``i`` of both comes from the same pair.
        logit_scale: log of the logit scale (a number or a scalar variable, e.g. the model's
            learnable ``logit_scale``).
        max_scale: cap of ``exp(logit_scale)`` (100 in CLIP; ``None``: no cap).

    Returns:
        A float32 scalar.

    Example:
        >>> loss = clip_loss(image_emb, text_emb, model.get_layer("logits").logit_scale)
    """
    return clip_loss_from_logits(clip_logits(emb_a, emb_b, logit_scale, max_scale))


@keras.saving.register_keras_serializable(package="zoo")
class CLIPLoss(keras.losses.Loss):
    """Symmetric InfoNCE on the ``(B, B)`` logits a CLIP model outputs.

    ``y_true`` is ignored (any tensor with a batch dimension, e.g. zeros): the targets are the
    diagonal, pair ``i`` against itself. The per-pair values ``½ (CE(row i) + CE(column i))``
    are returned to Keras, whose mean reduction gives ``clip_loss``. The temperature lives in
    the model (``build_clip``'s ``logits`` layer), so it is learnt with the other weights.

    Args:
        name, reduction: as for any ``keras.losses.Loss``.

    Example:
        >>> model = build_clip(image_encoder, text_encoder)
        >>> model.compile("adam", loss={"logits": CLIPLoss()})
        >>> model.fit(multimodal_dataset(data, "image-text"), steps_per_epoch=100)
    """

    def __init__(self, name="clip_loss", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        del y_true  # the positives are the diagonal
        return clip_loss_from_logits(y_pred, reduce=False)
