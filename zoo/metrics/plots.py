"""Plots every family writes: training curves, grouped bars, and grids of images (PNG, Agg).

Example:
    >>> plot_history(history.history, "run/loss.png")
    >>> plot_bars({"linear": {"random": 0.81, "rotation": 0.86}}, "run/probes.png")
    >>> image_grid([[noisy, denoised, clean]], "run/samples.png", columns=["in", "out", "true"])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["image_grid", "plot_bars", "plot_history"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_history(history, path, keys=None, title="Training", xlabel="epoch"):
    """Line plot of per-epoch logs (one panel per key, ``val_<key>`` drawn with its key).

    Args:
        history: ``{name: [value per epoch]}`` or a ``keras.callbacks.History``.
        path: output PNG.
        keys: names to draw (default: every key without the ``val_`` prefix that holds numbers).
        title: figure title.
        xlabel: x-axis label.

    Returns:
        ``pathlib.Path`` of the PNG.
    """
    history = getattr(history, "history", history)
    keys = (
        list(keys)
        if keys is not None
        else [k for k, v in history.items() if not k.startswith("val_") and _numeric(v)]
    )
    if not keys:
        raise ValueError(
            f"nothing to plot: history has no numeric series. Received: {list(history)}"
        )
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name in (key, f"val_{key}"):
            if name in history and _numeric(history[name]):
                values = np.asarray(history[name], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
        ax.set_xlabel(xlabel)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_bars(groups, path, title="", ylabel="accuracy", ylim=None):
    """Grouped bar chart: ``{group: {series: value}}`` (e.g. probe → encoder → accuracy).

    Returns:
        ``pathlib.Path`` of the PNG.
    """
    if not groups:
        raise ValueError("plot_bars needs at least one group")
    series = list(dict.fromkeys(s for values in groups.values() for s in values))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(groups) * max(1, len(series)) / 2), 3.6))
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, name in enumerate(series):
        values = [groups[g].get(name, np.nan) for g in groups]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(x, list(groups))
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=min(4, len(series)))
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def image_grid(rows, path, columns=None, row_labels=None, title=""):
    """A grid of images: ``rows[i][j]`` is an ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array.

    Float images are taken as 0–1 when their maximum is ≤ 1, else 0–255.

    Returns:
        ``pathlib.Path`` of the PNG.
    """
    rows = [list(r) for r in rows]
    if not rows or not rows[0]:
        raise ValueError("image_grid needs at least one image")
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    plt = pyplot()
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(1.6 * n_cols, 1.6 * n_rows + 0.4), squeeze=False
    )
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.axis("off")
            if j >= len(row) or row[j] is None:
                continue
            image = _displayable(row[j])
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            if i == 0 and columns is not None and j < len(columns):
                ax.set_title(columns[j], fontsize=8)
            if j == 0 and row_labels is not None:
                ax.text(
                    -0.1,
                    0.5,
                    str(row_labels[i]),
                    transform=ax.transAxes,
                    ha="right",
                    va="center",
                    fontsize=7,
                )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def _displayable(image):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.max(initial=0.0) > 1.0:
        image = image / 255.0
    return np.clip(image, 0.0, 1.0)


def _numeric(values):
    try:
        np.asarray(values, dtype=float)
        return len(values) > 0
    except (TypeError, ValueError):
        return False


def save_figure(fig, path, dpi=None):
    """Write ``fig`` to ``path`` (parent folders created), close it, return the ``Path``.
    ``dpi=None`` keeps the figure's own."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **({} if dpi is None else {"dpi": dpi}))
    pyplot().close(fig)
    return path
