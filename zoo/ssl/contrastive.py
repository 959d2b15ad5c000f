"""SimCLR's NT-Xent loss (normalized temperature-scaled cross-entropy).

For a batch of ``N`` images seen under two augmentations, the projections ``z1`` (view 1) and
``z2`` (view 2) give ``2N`` vectors ``u_1 … u_2N`` (``u_k = z1[k]`` and ``u_{N+k} = z2[k]``). With
``s_ij = cos(u_i, u_j) / τ``, anchor ``i``'s positive is the other view of the same image,
``p(i) = i ± N``, and every other vector of the ``2N`` (``2N − 2`` negatives) is in the
denominator; the anchor itself is excluded:

    ℓ_i = −s_{i,p(i)} + log Σ_{j ≠ i} exp(s_ij)

and the loss is the mean of ``ℓ_i`` over the ``2N`` anchors (Chen et al. 2020, eq. 1). Everything
is computed in float32 (float16 / bfloat16 projections from a mixed-precision model are cast first);
the L2 normalisation divides by ``max(‖u‖, 1e-6)``, so zero vectors and identical embeddings give a
finite loss and finite gradients. Under ``tf.distribute`` the negatives are the ones of the local
(per-replica) batch.

Example:
    >>> loss = nt_xent_loss(z1, z2, temperature=0.5)           # z1, z2: (N, P) → scalar
    >>> NTXentLoss(temperature=0.5)(None, ops.stack([z1, z2], axis=1))   # same value

Reference:
    Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR), ICML 2020.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["NTXentLoss", "nt_xent_loss", "nt_xent_pair_losses"]

_NORM_EPSILON = 1e-6
_MASK_VALUE = -1e9


def _check_temperature(temperature):
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not temperature > 0
    ):
        raise ValueError(f"temperature must be a number > 0. Received: temperature={temperature!r}")
    return float(temperature)


def _float32(x):
    x = ops.convert_to_tensor(x)
    return x if x.dtype == "float32" else ops.cast(x, "float32")


def _l2_normalize(x):
    norm_sq = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(norm_sq, _NORM_EPSILON**2))


def _anchor_losses(z1, z2, temperature):
    """``(2N,)`` per-anchor losses ``ℓ_i`` (anchors of view 1 first, then view 2)."""
    z1, z2 = _float32(z1), _float32(z2)
    if len(z1.shape) != 2 or len(z2.shape) != 2:
        raise ValueError(
            "nt_xent_loss expects two (batch, dim) projection batches. Received shapes "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    u = _l2_normalize(ops.concatenate([z1, z2], axis=0))  # (2N, P)
    n2 = ops.shape(u)[0]
    n = n2 // 2
    logits = ops.matmul(u, ops.transpose(u)) / temperature  # (2N, 2N)
    eye = ops.eye(n2, dtype="float32")
    logits = logits * (1.0 - eye) + _MASK_VALUE * eye  # drop self-similarity
    positive_index = (ops.arange(n2) + n) % n2
    positive = ops.take_along_axis(logits, ops.expand_dims(positive_index, 1), axis=1)[:, 0]
    return ops.logsumexp(logits, axis=1) - positive


def nt_xent_pair_losses(z1, z2, temperature=0.5):
    """NT-Xent per image: ``(ℓ_k + ℓ_{N+k}) / 2``, the mean of its two anchors' losses.

    Their mean over the batch is ``nt_xent_loss``; this is what ``NTXentLoss`` reduces (so a
    ``sample_weight`` weighs images).

    Args:
        z1, z2: ``(N, P)`` projections of view 1 and view 2 (row ``k`` of both is image ``k``).
        temperature: ``τ > 0``.

    Returns:
        ``(N,)`` float32.
    """
    temperature = _check_temperature(temperature)
    losses = _anchor_losses(z1, z2, temperature)
    n = ops.shape(losses)[0] // 2
    return 0.5 * (losses[:n] + losses[n:])


def nt_xent_loss(z1, z2, temperature=0.5):
    """SimCLR's NT-Xent: mean over the ``2N`` anchors (see the module docstring).

    Args:
        z1, z2: ``(N, P)`` projections of the two views; any float dtype (computed in float32).
        temperature: ``τ > 0`` (SimCLR: 0.5 on CIFAR-10, 0.1 on ImageNet with large batches).

    Returns:
        A float32 scalar.

    Example:
        >>> z = np.eye(2, dtype="float32")
        >>> float(nt_xent_loss(z, z, temperature=1.0))   # -1 + log(e + e^0 + e^0)
        0.5514...
    """
    temperature = _check_temperature(temperature)
    return ops.mean(_anchor_losses(z1, z2, temperature))


@keras.saving.register_keras_serializable(package="zoo")
class NTXentLoss(keras.losses.Loss):
    """NT-Xent on a model that outputs both views' projections stacked.

    Args:
        temperature: ``τ > 0``.
        name, reduction, dtype: as ``keras.losses.Loss``.

    Call:
        ``loss(y_true, y_pred)`` with ``y_pred`` of shape ``(N, 2, P)``: ``y_pred[:, 0]`` holds
        view 1's projections and ``y_pred[:, 1]`` view 2's (a tuple ``(z1, z2)`` works too).
        ``y_true`` is ignored (pass ``None`` or zeros): the positives are given by the layout.
        The per-image losses (``nt_xent_pair_losses``) are reduced, so with the default
        ``"sum_over_batch_size"`` the value equals ``nt_xent_loss(z1, z2)``.

    Example:
        >>> loss = NTXentLoss(temperature=0.5)
        >>> value = loss(None, ops.stack([z1, z2], axis=1))
    """

    def __init__(
        self,
        temperature=0.5,
        name="nt_xent_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = _check_temperature(temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if isinstance(y_pred, (list, tuple)):
            if len(y_pred) != 2:
                raise ValueError(
                    f"NTXentLoss expects y_pred = (z1, z2). Received {len(y_pred)} tensors."
                )
            y_pred = ops.stack([_float32(t) for t in y_pred], axis=1)
        if y_true is None:  # Keras converts y_true to a tensor: give it a dummy of the batch size
            y_true = ops.zeros(ops.shape(y_pred)[:1], dtype="float32")
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        del y_true
        y_pred = _float32(y_pred)
        if len(y_pred.shape) != 3 or y_pred.shape[1] != 2:
            raise ValueError(
                "NTXentLoss expects y_pred of shape (batch, 2, dim) = the two views' "
                f"projections. Received shape {tuple(y_pred.shape)}"
            )
        return nt_xent_pair_losses(y_pred[:, 0], y_pred[:, 1], self.temperature)

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config
