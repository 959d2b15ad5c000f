"""The landmark loss: presence cross-entropy plus a coordinate loss where the object is present.

Targets and predictions are dicts (the landmark model's named outputs)::

    y_true = {"presence": (B,) or (B, 1) in {0, 1},
              "landmarks": (B, K, 2) x, y normalized to [0, 1] of the image,
              "visibility": (B, K) weights in [0, 1] (optional, default all ones)}
    y_pred = {"presence": (B,) or (B, 1) probability, "landmarks": (B, K, 2)}

Per example ``b`` (the Keras reduction then averages over the batch)::

    L_b = presence_weight * BCE(p_b, p^_b)
        + coordinate_weight * p_b * (1 / K) * sum_k v_bk * e(l^_bk - l_bk)

where ``p`` is the true presence, ``v`` the visibility weight of each landmark and ``e`` of the
difference ``d = (dx, dy)``:

- ``"l2"``: ``dx^2 + dy^2`` (squared distance),
- ``"l1"``: ``|dx| + |dy|``,
- ``"wing"``: ``wing(dx) + wing(dy)`` with ``wing(x) = w * ln(1 + |x| / eps)`` for ``|x| < w``
  and ``|x| - C`` otherwise, ``C = w - w * ln(1 + w / eps)`` (continuous at ``|x| = w``).

An absent object (``p = 0``) contributes only its presence term; a hidden landmark (``v = 0``)
contributes nothing. The sum over landmarks is divided by ``K`` (not by the number of visible
ones), so a weight of 0 removes a term without re-weighting the others.

Coordinates are normalized, so ``wing_width`` and ``wing_epsilon`` are fractions of the image
(defaults 0.1 and 0.02: the paper's ``w = 10``, ``eps = 2`` on a 100-pixel face).

Reference:
    Feng et al., "Wing Loss for Robust Facial Landmark Localisation with Convolutional Neural
    Networks", CVPR 2018.
"""

import math

import keras
from keras import ops

COORDINATE_LOSSES = ("l2", "l1", "wing")


def _check(coordinate_loss, presence_weight, coordinate_weight, wing_width, wing_epsilon):
    if coordinate_loss not in COORDINATE_LOSSES:
        raise ValueError(
            f"coordinate_loss must be one of {COORDINATE_LOSSES}. "
            f"Received: coordinate_loss={coordinate_loss!r}"
        )
    for name, value in (
        ("presence_weight", presence_weight),
        ("coordinate_weight", coordinate_weight),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0. Received: {name}={value!r}")
    for name, value in (("wing_width", wing_width), ("wing_epsilon", wing_epsilon)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number > 0. Received: {name}={value!r}")


def wing(x, width=0.1, epsilon=0.02):
    """Elementwise Wing loss of a difference ``x`` (Feng et al. 2018).

    Args:
        x: tensor of differences.
        width: ``w``, where the log part ends.
        epsilon: ``eps``, the curvature of the log part.

    Returns:
        A tensor like ``x``: ``w ln(1 + |x|/eps)`` if ``|x| < w`` else ``|x| - C``.

    Example:
        >>> float(wing(ops.convert_to_tensor(0.1), 0.1, 0.02))  # 0.1 * ln(6)
        0.17917...
    """
    ax = ops.abs(x)
    c = width - width * math.log(1.0 + width / epsilon)
    return ops.where(ax < width, width * ops.log1p(ax / epsilon), ax - c)


def _squeeze_presence(p):
    p = ops.convert_to_tensor(p)
    if len(p.shape) == 2:
        p = ops.squeeze(p, axis=-1)
    return p


def landmark_loss_terms(
    y_true,
    y_pred,
    coordinate_loss="wing",
    wing_width=0.1,
    wing_epsilon=0.02,
):
    """The two unweighted per-example terms of the landmark loss.

    Args:
        y_true: dict with ``presence``, ``landmarks`` and optionally ``visibility`` (module
            docstring).
        y_pred: dict with ``presence`` (probability) and ``landmarks``.
        coordinate_loss: ``"l2"``, ``"l1"`` or ``"wing"``.
        wing_width, wing_epsilon: Wing loss parameters (normalized units).

    Returns:
        ``(presence_bce, coordinates)``, each ``(B,)``: the binary cross-entropy of the presence
        probability and ``p * (1/K) * sum_k v_k * e(d_k)``.
    """
    p_true = ops.cast(_squeeze_presence(y_true["presence"]), "float32")
    p_pred = ops.cast(_squeeze_presence(y_pred["presence"]), "float32")
    l_true = ops.cast(y_true["landmarks"], "float32")
    l_pred = ops.cast(y_pred["landmarks"], "float32")
    visibility = y_true.get("visibility") if isinstance(y_true, dict) else None
    if visibility is None:
        visibility = ops.ones(ops.shape(l_true)[:-1], "float32")
    visibility = ops.cast(visibility, "float32")

    presence_bce = keras.losses.binary_crossentropy(
        ops.expand_dims(p_true, -1), ops.expand_dims(p_pred, -1)
    )
    # Zero the difference where the term is masked, so a NaN / garbage target there (padding,
    # an absent object's placeholder points) cannot leak into the value or the gradient.
    mask = ops.expand_dims(visibility * ops.expand_dims(p_true, -1), -1) > 0
    diff = ops.where(mask, l_pred - l_true, 0.0)
    if coordinate_loss == "l2":
        per_point = ops.sum(ops.square(diff), axis=-1)
    elif coordinate_loss == "l1":
        per_point = ops.sum(ops.abs(diff), axis=-1)
    else:
        per_point = ops.sum(wing(diff, wing_width, wing_epsilon), axis=-1)
    per_point = ops.where(mask[..., 0], per_point, 0.0)
    coordinates = p_true * ops.mean(visibility * per_point, axis=-1)
    return presence_bce, coordinates


def landmark_loss(
    y_true,
    y_pred,
    coordinate_loss="wing",
    presence_weight=1.0,
    coordinate_weight=1.0,
    wing_width=0.1,
    wing_epsilon=0.02,
):
    """Per-example landmark loss (module docstring has the formula).

    Args:
        y_true: dict with ``presence`` (B,) or (B, 1), ``landmarks`` (B, K, 2) normalized,
            ``visibility`` (B, K) (optional).
        y_pred: dict with ``presence`` (probability) and ``landmarks`` (B, K, 2).
        coordinate_loss: ``"l2"``, ``"l1"`` or ``"wing"``.
        presence_weight: weight of the presence cross-entropy.
        coordinate_weight: weight of the coordinate term.
        wing_width, wing_epsilon: Wing loss parameters (normalized units).

    Returns:
        A ``(B,)`` float32 tensor.

    Example:
        >>> y_true = {"presence": [1.0], "landmarks": [[[0.5, 0.5]]], "visibility": [[1.0]]}
        >>> y_pred = {"presence": [0.9], "landmarks": [[[0.6, 0.5]]]}
        >>> landmark_loss(y_true, y_pred, "l1")  # -ln(0.9) + 0.1
    """
    _check(coordinate_loss, presence_weight, coordinate_weight, wing_width, wing_epsilon)
    presence_bce, coordinates = landmark_loss_terms(
        y_true, y_pred, coordinate_loss, wing_width, wing_epsilon
    )
    return presence_weight * presence_bce + coordinate_weight * coordinates


@keras.saving.register_keras_serializable(package="zoo")
class LandmarkLoss(keras.losses.Loss):
    """Presence BCE + coordinate loss masked by presence and visibility (see ``landmark_loss``).

    ``y_true`` and ``y_pred`` are dicts (module docstring). The landmark model's
    ``compute_loss`` calls this loss with the whole target and output dicts; to use it
    elsewhere call it directly: ``LandmarkLoss()(y_true, y_pred)``.

    Args:
        coordinate_loss: ``"l2"``, ``"l1"`` or ``"wing"`` (default).
        presence_weight: weight of the presence cross-entropy.
        coordinate_weight: weight of the coordinate term.
        wing_width: Wing ``w`` in normalized units.
        wing_epsilon: Wing ``eps`` in normalized units.
        reduction, name, dtype: as ``keras.losses.Loss``.

    Example:
    ```python
    loss = LandmarkLoss("wing", coordinate_weight=5.0)
    value = loss({"presence": p, "landmarks": pts, "visibility": vis}, model(images))
    ```
    """

    def __init__(
        self,
        coordinate_loss="wing",
        presence_weight=1.0,
        coordinate_weight=1.0,
        wing_width=0.1,
        wing_epsilon=0.02,
        reduction="sum_over_batch_size",
        name="landmark_loss",
        dtype=None,
    ):
        _check(coordinate_loss, presence_weight, coordinate_weight, wing_width, wing_epsilon)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.coordinate_loss = coordinate_loss
        self.presence_weight = float(presence_weight)
        self.coordinate_weight = float(coordinate_weight)
        self.wing_width = float(wing_width)
        self.wing_epsilon = float(wing_epsilon)

    def call(self, y_true, y_pred):
        return landmark_loss(
            y_true,
            y_pred,
            coordinate_loss=self.coordinate_loss,
            presence_weight=self.presence_weight,
            coordinate_weight=self.coordinate_weight,
            wing_width=self.wing_width,
            wing_epsilon=self.wing_epsilon,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            coordinate_loss=self.coordinate_loss,
            presence_weight=self.presence_weight,
            coordinate_weight=self.coordinate_weight,
            wing_width=self.wing_width,
            wing_epsilon=self.wing_epsilon,
        )
        return config
