"""Landmark metrics (NumPy): NME, failure rate, CED curve and its AUC, presence accuracy.

Per image ``i`` with the object present and at least one visible point::

    NME_i = (1 / |V_i|) * sum_{k in V_i} ||pred_ik - true_ik|| / d_i

``V_i`` is the set of visible points (visibility > 0) and ``d_i`` the normalizing distance:

- ``"inter_ocular"``: distance between the two true eyes; ``eye_indices`` names them, either
  two point indices (CelebA / synthetic: the eye centres, i.e. inter-pupil) or two groups of
  indices whose means are the eyes (iBUG 68: ``((36, ..., 41), (42, ..., 47))``);
- ``"box_diagonal"``: the diagonal ``sqrt(w^2 + h^2)`` of a box around the object: the boxes you
  pass, or the tight box of the true visible points.

Images where the object is absent, no point is visible or ``d_i`` is 0 get NaN and are left out
of every summary. Predictions and targets must be in the same units (pixels or [0, 1]); for a
non-square image in [0, 1] units use pixels, or distances are skewed.

- failure rate: fraction of the images with ``NME > threshold`` (0.1);
- CED (cumulative error distribution): fraction of images with ``NME <= e`` for ``e`` in
  ``[0, max_error]``; its AUC@0.1 is ``(1 / max_error) * integral_0^max_error CED(e) de``,
  computed exactly as ``mean_i max(0, 1 - NME_i / max_error)``;
- presence accuracy: fraction of images whose thresholded presence probability matches.

Example:
    >>> metrics = landmark_metrics(pred_points, true_points, visibility,
    ...                            pred_presence, true_presence, eye_indices=(0, 1))
    >>> metrics["nme"], metrics["failure_rate"], metrics["auc"]
"""

from __future__ import annotations

import numpy as np

NORMALIZATIONS = ("inter_ocular", "box_diagonal")


def _eye(points, index):
    if np.ndim(index) == 0:
        return points[:, int(index)]
    return points[:, list(index)].mean(axis=1)


def normalizing_distance(
    true, visibility=None, normalization="inter_ocular", eye_indices=(0, 1), boxes=None
):
    """``d_i`` per image (module docstring); NaN where it cannot be computed.

    Args:
        true: ``(N, K, 2)`` true points.
        visibility: ``(N, K)`` (default all visible); used by the box of the points.
        normalization: ``"inter_ocular"`` or ``"box_diagonal"``.
        eye_indices: two indices, or two groups of indices (inter-ocular).
        boxes: ``(N, 4)`` "xyxy" boxes for ``"box_diagonal"`` (default: tight box of the
            visible true points).

    Returns:
        float64 ``(N,)``.
    """
    true = np.asarray(true, np.float64)
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {NORMALIZATIONS}. Received: normalization={normalization!r}"
        )
    if normalization == "inter_ocular":
        if eye_indices is None or len(eye_indices) != 2:
            raise ValueError(
                "inter_ocular normalization needs eye_indices: two indices or two groups. "
                f"Received: eye_indices={eye_indices!r}"
            )
        left, right = _eye(true, eye_indices[0]), _eye(true, eye_indices[1])
        distance = np.linalg.norm(left - right, axis=-1)
    elif boxes is not None:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        distance = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    else:
        vis = np.ones(true.shape[:2], bool) if visibility is None else np.asarray(visibility) > 0
        low = np.where(vis[..., None], true, np.inf).min(axis=1)
        high = np.where(vis[..., None], true, -np.inf).max(axis=1)
        with np.errstate(invalid="ignore"):
            size = high - low
        distance = np.where(vis.any(axis=1), np.hypot(size[:, 0], size[:, 1]), np.nan)
    return np.where(distance > 0, distance, np.nan)


def nme(
    pred,
    true,
    visibility=None,
    presence=None,
    normalization="inter_ocular",
    eye_indices=(0, 1),
    boxes=None,
):
    """Normalized mean error per image (module docstring).

    Args:
        pred: ``(N, K, 2)`` predicted points.
        true: ``(N, K, 2)`` true points, same units.
        visibility: ``(N, K)`` weights; points with 0 are left out (default all visible).
        presence: ``(N,)`` true presence; images with 0 get NaN (default all present).
        normalization: ``"inter_ocular"`` or ``"box_diagonal"``.
        eye_indices: the eyes (``"inter_ocular"``).
        boxes: ``(N, 4)`` "xyxy" boxes (``"box_diagonal"``).

    Returns:
        float64 ``(N,)``: NME per image, NaN where undefined.

    Example:
        >>> nme([[[0, 0], [10, 0], [5, 3]]], [[[0, 0], [10, 0], [5, 5]]])  # 2 / 3 / 10
        array([0.06666667])
    """
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(
            f"pred and true must both be (N, K, 2). Received: {pred.shape} and {true.shape}"
        )
    vis = np.ones(true.shape[:2]) if visibility is None else np.asarray(visibility, np.float64)
    vis = (vis > 0).astype(np.float64)
    distance = normalizing_distance(true, vis, normalization, eye_indices, boxes)
    errors = np.linalg.norm(pred - true, axis=-1)
    count = vis.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_image = (np.where(vis > 0, errors, 0.0).sum(axis=1) / count) / distance
    per_image = np.where(count > 0, per_image, np.nan)
    if presence is not None:
        per_image = np.where(np.asarray(presence).reshape(-1) > 0.5, per_image, np.nan)
    return per_image


def _valid(nmes):
    nmes = np.asarray(nmes, np.float64).reshape(-1)
    return nmes[np.isfinite(nmes)]


def failure_rate(nmes, threshold=0.1):
    """Fraction of images (NaN left out) with ``NME > threshold``; NaN if there are none."""
    values = _valid(nmes)
    return float(np.mean(values > threshold)) if values.size else float("nan")


def ced_curve(nmes, max_error=0.1, num_points=101):
    """The cumulative error distribution.

    Args:
        nmes: per-image NME (NaN left out).
        max_error: last threshold.
        num_points: number of thresholds in ``[0, max_error]``.

    Returns:
        ``(thresholds, fractions)``: fraction of images with ``NME <= threshold``.
    """
    values = _valid(nmes)
    thresholds = np.linspace(0.0, max_error, num_points)
    if not values.size:
        return thresholds, np.full_like(thresholds, np.nan)
    fractions = (values[None, :] <= thresholds[:, None]).mean(axis=1)
    return thresholds, fractions


def ced_auc(nmes, max_error=0.1):
    """Area under the CED curve on ``[0, max_error]``, divided by ``max_error`` (exact)."""
    values = _valid(nmes)
    if not values.size:
        return float("nan")
    return float(np.mean(np.maximum(0.0, 1.0 - values / max_error)))


def presence_accuracy(pred_presence, true_presence, threshold=0.5):
    """Fraction of images where ``pred_presence > threshold`` equals ``true_presence > 0.5``."""
    pred = np.asarray(pred_presence, np.float64).reshape(-1) > threshold
    true = np.asarray(true_presence, np.float64).reshape(-1) > 0.5
    if pred.shape != true.shape:
        raise ValueError(f"presence shapes differ: {pred.shape} and {true.shape}")
    return float(np.mean(pred == true)) if pred.size else float("nan")


def landmark_metrics(
    pred,
    true,
    visibility=None,
    pred_presence=None,
    true_presence=None,
    *,
    normalization="inter_ocular",
    eye_indices=(0, 1),
    boxes=None,
    failure_threshold=0.1,
    max_error=0.1,
    presence_threshold=0.5,
):
    """All landmark metrics in one dict.

    NME is measured on images where the object is truly present (whatever the predicted
    presence), so it measures localization alone; presence accuracy measures detection.

    Args:
        pred, true, visibility: as ``nme``.
        pred_presence: ``(N,)`` predicted probabilities (optional).
        true_presence: ``(N,)`` true presence (default all present).
        normalization, eye_indices, boxes: as ``nme``.
        failure_threshold: NME above which an image is a failure.
        max_error: CED / AUC upper limit.
        presence_threshold: probability threshold of the predicted presence.

    Returns:
        ``{"nme", "failure_rate", "auc", "num_images" (with a defined NME),
        "presence_accuracy" (if ``pred_presence`` is given)}``; ``nme`` is the mean per-image
        NME.
    """
    per_image = nme(pred, true, visibility, true_presence, normalization, eye_indices, boxes)
    values = _valid(per_image)
    result = {
        "nme": float(values.mean()) if values.size else float("nan"),
        "failure_rate": failure_rate(values, failure_threshold),
        "auc": ced_auc(values, max_error),
        "num_images": int(values.size),
    }
    if pred_presence is not None:
        true_p = np.ones(len(per_image)) if true_presence is None else true_presence
        result["presence_accuracy"] = presence_accuracy(pred_presence, true_p, presence_threshold)
    return result


# === Plots (matplotlib, imported on use) ===


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_ced_plot(curves, path, max_error=0.1, title="Cumulative error distribution"):
    """Writes a CED plot PNG.

    Args:
        curves: ``{label: per-image NMEs}`` (one curve each; NaN left out).
        path: output ``.png``.
        max_error: x-axis limit.
        title: plot title.

    Returns:
        The path.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for label, nmes in curves.items():
        thresholds, fractions = ced_curve(nmes, max_error, 201)
        ax.plot(
            thresholds,
            fractions,
            label=f"{label} (AUC@{max_error:g} = {ced_auc(nmes, max_error):.3f})",
        )
    ax.set_xlim(0, max_error)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("NME")
    ax.set_ylabel("fraction of images")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_landmark_grid(
    images,
    pred,
    true=None,
    visibility=None,
    pred_presence=None,
    true_presence=None,
    path="landmarks.png",
    columns=6,
):
    """Writes a PNG grid of images with predicted (red x) and true (green o) points.

    Args:
        images: ``(N, H, W, 3)`` 0-255.
        pred: ``(N, K, 2)`` predicted points in pixels.
        true: ``(N, K, 2)`` true points in pixels (optional).
        visibility: ``(N, K)``: hidden true points are not drawn.
        pred_presence, true_presence: ``(N,)`` shown in each title.
        path: output ``.png``.
        columns: images per row.

    Returns:
        The path.
    """
    plt = _pyplot()
    images = np.asarray(images)
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.1 * rows), dpi=80)
    axes = np.atleast_1d(axes).reshape(-1)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(np.clip(images[i], 0, 255).astype(np.uint8))
        if true is not None:
            keep = np.ones(len(true[i]), bool) if visibility is None else visibility[i] > 0
            ax.scatter(
                true[i][keep, 0] - 0.5,
                true[i][keep, 1] - 0.5,
                s=18,
                facecolors="none",
                edgecolors="lime",
                linewidths=1.0,
            )
        ax.scatter(
            pred[i][:, 0] - 0.5, pred[i][:, 1] - 0.5, s=14, c="red", marker="x", linewidths=1.0
        )
        title = []
        if pred_presence is not None:
            title.append(f"p={float(pred_presence[i]):.2f}")
        if true_presence is not None:
            title.append(f"true={int(true_presence[i] > 0.5)}")
        ax.set_title(" ".join(title), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# === Collecting predictions ===


def collect_predictions(predict_fn, batches, image_size, keep_images=0):
    """Runs ``predict_fn`` over ``(images, targets)`` batches and gathers everything in pixels.

    Args:
        predict_fn: ``images float32 (B, H, W, 3) -> {"presence": (B,) or (B, 1),
            "landmarks": (B, K, 2) in pixels of the input}`` (a Keras model wrapped by
            ``zoo.landmarks.model.pixel_landmark_model``, a ``.tflite`` runner...).
        batches: iterable of ``(images, {"presence", "landmarks" in [0, 1], "visibility"})``
            (``zoo.landmarks.data.landmark_pipeline``); tensors or arrays.
        image_size: ``(height, width)`` of the images, to put the targets in pixels.
        keep_images: how many of the first images to keep (for plots).

    Returns:
        dict of arrays: ``pred_landmarks``, ``pred_presence``, ``true_landmarks`` (pixels),
        ``visibility``, ``true_presence`` and ``images`` (the first ``keep_images``).
    """
    scale = np.array([image_size[1], image_size[0]], np.float64)
    parts = {
        k: []
        for k in (
            "pred_landmarks",
            "pred_presence",
            "true_landmarks",
            "visibility",
            "true_presence",
        )
    }
    kept = []
    for images, targets in batches:
        images = np.asarray(images, np.float32)
        out = predict_fn(images)
        parts["pred_landmarks"].append(np.asarray(out["landmarks"], np.float64))
        parts["pred_presence"].append(np.asarray(out["presence"], np.float64).reshape(-1))
        parts["true_landmarks"].append(np.asarray(targets["landmarks"], np.float64) * scale)
        parts["visibility"].append(np.asarray(targets["visibility"], np.float64))
        parts["true_presence"].append(np.asarray(targets["presence"], np.float64).reshape(-1))
        if sum(len(k) for k in kept) < keep_images:
            kept.append(images)
    result = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}
    result["images"] = np.concatenate(kept)[:keep_images] if kept else np.zeros((0,))
    return result


def metrics_from_predictions(collected, **kwargs):
    """``landmark_metrics`` on the output of ``collect_predictions`` (kwargs passed on)."""
    return landmark_metrics(
        collected["pred_landmarks"],
        collected["true_landmarks"],
        collected["visibility"],
        collected["pred_presence"],
        collected["true_presence"],
        **kwargs,
    )
