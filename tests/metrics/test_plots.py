"""Shared plots write real PNGs and reject empty input."""

import numpy as np
import pytest
from PIL import Image

from zoo.metrics.plots import image_grid, plot_bars, plot_history


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_plot_history_draws_numeric_keys(tmp_path):
    path = plot_history(
        {"loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2], "note": ["a"]}, tmp_path / "h.png"
    )
    width, height = _png_size(path)
    assert width > 200 and height > 200
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_history({"note": ["a"]}, tmp_path / "x.png")


def test_bars_and_grid(tmp_path):
    bars = plot_bars(
        {"linear": {"random": 0.8, "rotation": 0.85}, "knn": {"random": 0.7}}, tmp_path / "b.png"
    )
    assert _png_size(bars)[0] > 200
    gray = np.zeros((8, 8, 1), np.uint8)
    rgb = np.full((8, 8, 3), 0.5, np.float32)
    grid = image_grid(
        [[gray, rgb], [rgb, None]], tmp_path / "g.png", columns=["a", "b"], row_labels=["r1", "r2"]
    )
    assert _png_size(grid)[0] > 100
    with pytest.raises(ValueError, match="at least one image"):
        image_grid([], tmp_path / "e.png")
