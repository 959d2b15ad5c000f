"""Losses of the self-supervised pretext tasks (targets as made by ``zoo.ssl.pretext``).

- Inpainting: ``y_true = concat(clean / 255, mask)`` ``(B, H, W, C + 1)`` (``mask`` 1 on hidden
  pixels; a ``C``-channel mask also works), ``y_pred`` ``(B, H, W, C)`` in [0, 1]. Per example::

      L_b = sum_{pixels, channels} m * e(y^ - y) / max(1, sum_{pixels, channels} m)

  with ``e`` the squared (``"l2"``) or absolute (``"l1"``) error and ``m`` the mask broadcast to
  the ``C`` channels, i.e. the mean error over the hidden pixel-channels only (Context
  Encoders' reconstruction loss). Visible pixels never count; an empty mask gives 0 with a zero
  (finite) gradient. The Keras reduction then averages over the batch.
- Colorization, regression: ``y_true`` ``(B, H, W, 2)`` = ab / 128, ``y_pred`` tanh; per example
  the mean over pixels and both channels of the squared error or the Huber loss (``delta`` in
  the same ab / 128 units).
- Colorization, quantized: ``y_true`` int ``(B, H, W)`` bin indices, ``y_pred`` ``(B, H, W, Q)``
  logits; per example the mean over pixels of ``w[y] * CE`` with optional class-rebalancing
  weights ``w`` (Zhang et al. 2016, eq. 3–4; see ``colorization_class_weights``).
- ``pretext_loss(task)`` returns the loss of each task (rotation / jigsaw: sparse categorical
  cross-entropy on logits; denoising: MSE; inpainting: ``MaskedReconstructionLoss``;
  colorization by ``mode``).

Reference:
    Pathak et al., "Context Encoders: Feature Learning by Inpainting", CVPR 2016;
    Zhang et al., "Colorful Image Colorization", ECCV 2016.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = [
    "ColorizationQuantizedLoss",
    "ColorizationRegressionLoss",
    "MaskedReconstructionLoss",
    "colorization_class_weights",
    "colorization_quantized_loss",
    "colorization_regression_loss",
    "masked_reconstruction_loss",
    "pretext_loss",
]

RECONSTRUCTION_KINDS = ("l2", "l1")
REGRESSION_KINDS = ("l2", "huber")
PRETEXT_TASKS = ("rotation", "jigsaw", "colorization", "inpainting", "denoising")
COLORIZATION_MODES = ("regression", "quantized")


def _check_kind(kind, kinds, arg="kind"):
    if kind not in kinds:
        raise ValueError(f"{arg} must be one of {kinds}. Received: {arg}={kind!r}")
    return kind


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0. Received: {name}={value!r}")
    return float(value)


# === Inpainting ===


def masked_reconstruction_loss(y_true, y_pred, kind="l2"):
    """Mean reconstruction error over the hidden pixel-channels of each example.

    Args:
        y_true: ``(B, H, W, C + 1)`` = ``concat(clean / 255, mask)`` (or ``(B, H, W, 2C)`` with a
            per-channel mask); the mask is 1 on hidden pixels and 0 elsewhere.
        y_pred: ``(B, H, W, C)`` reconstruction in [0, 1].
        kind: ``"l2"`` (squared error, default) or ``"l1"`` (absolute error).

    Returns:
        A ``(B,)`` float32 tensor: ``sum(m * e) / max(1, sum(m))`` per example (module docstring).

    Example:
        >>> clean, mask = np.zeros((1, 2, 2, 1)), np.array([1, 0, 0, 0.]).reshape(1, 2, 2, 1)
        >>> masked_reconstruction_loss(np.concatenate([clean, mask], -1), np.full((1, 2, 2, 1), .5))
        [0.25]
    """
    _check_kind(kind, RECONSTRUCTION_KINDS)
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    channels = y_pred.shape[-1]
    if channels is None or y_true.shape[-1] is None:
        raise ValueError(
            "masked_reconstruction_loss needs known channel counts. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    mask_channels = int(y_true.shape[-1]) - int(channels)
    if mask_channels not in (1, int(channels)):
        raise ValueError(
            f"y_true must hold C clean channels and a 1- or C-channel mask, C = y_pred's "
            f"{channels}. Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    clean = y_true[..., :channels]
    mask = y_true[..., channels:] * ops.ones_like(y_pred)  # broadcast to C channels
    hidden = mask > 0
    # where(), not a product: a NaN / garbage prediction on a visible pixel cannot leak in.
    diff = ops.where(hidden, y_pred - clean, 0.0)
    error = ops.square(diff) if kind == "l2" else ops.abs(diff)
    error = ops.where(hidden, mask * error, 0.0)
    axes = tuple(range(1, len(y_pred.shape)))
    count = ops.sum(ops.where(hidden, mask, 0.0), axis=axes)
    return ops.sum(error, axis=axes) / ops.maximum(count, 1.0)


@keras.saving.register_keras_serializable(package="zoo")
class MaskedReconstructionLoss(keras.losses.Loss):
    """Inpainting loss: the reconstruction error over hidden pixels only.

    See ``masked_reconstruction_loss``; ``y_true`` is ``concat(clean / 255, mask)``.

    Args:
        kind: ``"l2"`` (default) or ``"l1"``.
        reduction, name, dtype: as ``keras.losses.Loss``.

    Example:
    ```python
    model = build_pretext_model(encoder, "inpainting")
    model.compile("adam", loss=MaskedReconstructionLoss())
    ```
    """

    def __init__(
        self,
        kind="l2",
        reduction="sum_over_batch_size",
        name="masked_reconstruction_loss",
        dtype=None,
    ):
        _check_kind(kind, RECONSTRUCTION_KINDS)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.kind = kind

    def call(self, y_true, y_pred):
        return masked_reconstruction_loss(y_true, y_pred, kind=self.kind)

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind)
        return config


# === Colorization ===


def colorization_regression_loss(y_true, y_pred, kind="l2", delta=0.1):
    """Per-example ab regression loss (mean over pixels and the two channels).

    Args:
        y_true: ``(B, H, W, 2)`` = (a*, b*) / 128.
        y_pred: ``(B, H, W, 2)`` (tanh outputs).
        kind: ``"l2"`` (squared error, default) or ``"huber"``.
        delta: Huber threshold in ab / 128 units (0.1 is about 13 ab units).

    Returns:
        A ``(B,)`` float32 tensor.

    Example:
        >>> colorization_regression_loss(np.zeros((1, 1, 1, 2)), np.full((1, 1, 1, 2), 0.5))
        [0.25]
    """
    _check_kind(kind, REGRESSION_KINDS)
    delta = _check_positive("delta", delta)
    diff = ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")
    if kind == "l2":
        error = ops.square(diff)
    else:
        ad = ops.abs(diff)
        error = ops.where(ad <= delta, 0.5 * ops.square(diff), delta * (ad - 0.5 * delta))
    return ops.mean(error, axis=tuple(range(1, len(diff.shape))))


def colorization_quantized_loss(y_true, y_pred, class_weights=None, from_logits=True):
    """Per-example cross-entropy over ab bins, optionally class-rebalanced.

    Args:
        y_true: int ``(B, H, W)`` bin indices in ``[0, Q)``.
        y_pred: ``(B, H, W, Q)`` logits (or probabilities with ``from_logits=False``).
        class_weights: ``None`` or a length-``Q`` vector ``w``; each pixel's cross-entropy is
            multiplied by ``w[y_true]`` (Zhang et al.'s rebalancing,
            ``colorization_class_weights``).
        from_logits: whether ``y_pred`` are logits.

    Returns:
        A ``(B,)`` float32 tensor: the mean over pixels of ``w[y] * CE``.

    Example:
        >>> colorization_quantized_loss(np.zeros((1, 1, 1), "int32"), np.zeros((1, 1, 1, 4)))
        [1.3862944]  # ln 4
    """
    y_true = ops.cast(y_true, "int32")
    y_pred = ops.cast(y_pred, "float32")
    ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits)
    if class_weights is not None:
        weights = ops.convert_to_tensor(np.asarray(class_weights, "float32"))
        ce = ce * ops.take(weights, y_true)
    return ops.mean(ce, axis=tuple(range(1, len(ce.shape))))


def colorization_class_weights(bin_probabilities, mix=0.5):
    """Zhang et al.'s class-rebalancing weights from the empirical ab bin distribution.

    ``w ∝ 1 / ((1 - mix) p + mix / Q)``, normalised so that ``sum_q p_q w_q = 1`` (the expected
    weight is 1, so the loss keeps its scale). The paper uses ``mix = 0.5`` and smooths ``p`` with
    a Gaussian over the ab grid first (do that before calling, if wanted).

    Args:
        bin_probabilities: length-``Q`` counts or probabilities (normalised here), not all 0.
        mix: in ``[0, 1]``: 0 -> inverse frequency, 1 -> uniform weights.

    Returns:
        A float32 numpy array of shape ``(Q,)``.

    Example:
        >>> colorization_class_weights([3, 1], mix=0.0)   # p = [.75, .25] -> [2/3, 2]
        array([0.6666667, 2.       ], dtype=float32)
    """
    p = np.asarray(bin_probabilities, "float64").reshape(-1)
    if p.size < 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(
            "bin_probabilities must be non-negative finite counts, not all 0. Received: "
            f"bin_probabilities={bin_probabilities!r}"
        )
    if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be in [0, 1]. Received: mix={mix!r}")
    p = p / p.sum()
    if mix == 0.0 and np.any(p == 0):
        raise ValueError(
            "mix=0 gives infinite weights to empty bins; use mix > 0. Received: mix=0.0"
        )
    w = 1.0 / ((1.0 - mix) * p + mix / p.size)
    return (w / np.sum(p * w)).astype("float32")


@keras.saving.register_keras_serializable(package="zoo")
class ColorizationRegressionLoss(keras.losses.Loss):
    """ab regression loss (see ``colorization_regression_loss``).

    Args:
        kind: ``"l2"`` (default) or ``"huber"``.
        delta: Huber threshold in ab / 128 units.
        reduction, name, dtype: as ``keras.losses.Loss``.

    Example:
    ```python
    model.compile("adam", loss=ColorizationRegressionLoss("huber", delta=0.1))
    ```
    """

    def __init__(
        self,
        kind="l2",
        delta=0.1,
        reduction="sum_over_batch_size",
        name="colorization_regression_loss",
        dtype=None,
    ):
        _check_kind(kind, REGRESSION_KINDS)
        delta = _check_positive("delta", delta)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.kind = kind
        self.delta = delta

    def call(self, y_true, y_pred):
        return colorization_regression_loss(y_true, y_pred, kind=self.kind, delta=self.delta)

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, delta=self.delta)
        return config


@keras.saving.register_keras_serializable(package="zoo")
class ColorizationQuantizedLoss(keras.losses.Loss):
    """Cross-entropy over ab bins with optional rebalancing (``colorization_quantized_loss``).

    Args:
        class_weights: ``None`` or a length-``Q`` sequence of per-bin weights
            (``colorization_class_weights``).
        from_logits: whether predictions are logits (default ``True``).
        reduction, name, dtype: as ``keras.losses.Loss``.

    Example:
    ```python
    weights = colorization_class_weights(bin_counts, mix=0.5)
    model.compile("adam", loss=ColorizationQuantizedLoss(class_weights=weights))
    ```
    """

    def __init__(
        self,
        class_weights=None,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="colorization_quantized_loss",
        dtype=None,
    ):
        if class_weights is not None:
            array = np.asarray(class_weights, "float64")
            if (
                array.ndim != 1
                or array.size < 1
                or not np.all(np.isfinite(array))
                or np.any(array < 0)
            ):
                raise ValueError(
                    "class_weights must be None or a 1-D vector of finite weights >= 0. "
                    f"Received: class_weights={class_weights!r}"
                )
            class_weights = [float(v) for v in array]
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_weights = class_weights
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return colorization_quantized_loss(
            y_true, y_pred, class_weights=self.class_weights, from_logits=self.from_logits
        )

    def get_config(self):
        config = super().get_config()
        config.update(class_weights=self.class_weights, from_logits=self.from_logits)
        return config


# === One loss per task ===

_LOSS_OPTIONS = {
    "rotation": (),
    "jigsaw": (),
    "denoising": ("kind",),
    "inpainting": ("kind",),
    "colorization": ("mode", "kind", "delta", "class_weights"),
}


def pretext_loss(task, **options):
    """The Keras loss of a pretext task (targets as made by ``zoo.ssl.pretext``).

    Args:
        task: ``"rotation"``, ``"jigsaw"``, ``"colorization"``, ``"inpainting"`` or
            ``"denoising"``.
        **options: per task (anything else raises):

            - rotation, jigsaw: none -> ``SparseCategoricalCrossentropy(from_logits=True)``.
            - denoising: ``kind="l2"`` (``MeanSquaredError``) or ``"l1"``
              (``MeanAbsoluteError``).
            - inpainting: ``kind="l2" | "l1"`` -> ``MaskedReconstructionLoss(kind)``.
            - colorization: ``mode="regression"`` (with ``kind="l2" | "huber"``, ``delta``) ->
              ``ColorizationRegressionLoss``; ``mode="quantized"`` (with ``class_weights``) ->
              ``ColorizationQuantizedLoss``.

    Returns:
        A ``keras.losses.Loss`` instance.

    Example:
        >>> model.compile("adam", loss=pretext_loss("colorization", mode="quantized"))
    """
    if task not in _LOSS_OPTIONS:
        raise ValueError(f"task must be one of {PRETEXT_TASKS}. Received: task={task!r}")
    allowed = set(_LOSS_OPTIONS[task])
    mode = options.get("mode", "regression")
    if task == "colorization":
        if mode not in COLORIZATION_MODES:
            raise ValueError(f"mode must be one of {COLORIZATION_MODES}. Received: mode={mode!r}")
        allowed = {"mode", "kind", "delta"} if mode == "regression" else {"mode", "class_weights"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        where = f"task={task!r}" + (f", mode={mode!r}" if task == "colorization" else "")
        raise ValueError(
            f"Unknown option(s) {unknown} for {where}; it takes {sorted(allowed)}. Received: "
            + ", ".join(f"{k}={options[k]!r}" for k in unknown)
        )
    if task in ("rotation", "jigsaw"):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, name=f"{task}_loss")
    if task == "denoising":
        kind = _check_kind(options.get("kind", "l2"), RECONSTRUCTION_KINDS)
        cls = keras.losses.MeanSquaredError if kind == "l2" else keras.losses.MeanAbsoluteError
        return cls(name="denoising_loss")
    if task == "inpainting":
        return MaskedReconstructionLoss(kind=options.get("kind", "l2"))
    options = {k: v for k, v in options.items() if k != "mode"}
    if mode == "regression":
        return ColorizationRegressionLoss(**options)
    return ColorizationQuantizedLoss(**options)
