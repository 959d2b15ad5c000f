"""Embedding collapse: the spread measure and the monitor that reports a collapse."""

import warnings

import keras
import numpy as np
import pytest

from zoo.metric_learning.collapse import CollapseMonitor, embedding_spread
from zoo.metric_learning.loss import TripletLoss
from zoo.metric_learning.model import build_embedding_model
from zoo.training.errors import TrainingError


def test_spread_is_half_mean_pairwise_squared_distance_over_mean_squared_norm():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(50, 8)) + 3.0
    d2 = np.sum((e[:, None] - e[None]) ** 2, axis=-1)
    expected = 0.5 * d2.mean() / np.mean(np.sum(e**2, axis=1))
    assert embedding_spread(e) == pytest.approx(expected, rel=1e-9)
    assert embedding_spread(10.0 * e) == pytest.approx(expected, rel=1e-9)  # scale-free
    assert embedding_spread(np.tile(e[:1], (20, 1))) == pytest.approx(0.0, abs=1e-12)
    assert embedding_spread(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(1.0)
    assert embedding_spread(np.zeros((4, 3))) == 0.0


def _collapsed_tower():
    """Every input maps to one unit vector: a fixed point of the triplet loss (zero gradient)."""
    keras.utils.set_random_seed(0)
    tower = build_embedding_model((8, 8, 1), embedding_dim=4, width=4)
    layer = tower.get_layer("embedding")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.ones_like(bias)])
    return tower


def _data(n=64):
    rng = np.random.default_rng(1)
    return rng.uniform(0, 255, (n, 8, 8, 1)).astype("float32"), np.repeat(np.arange(8), n // 8)


def test_batch_hard_collapse_is_reported_not_trained_through():
    x, y = _data()
    tower = _collapsed_tower()
    tower.compile(keras.optimizers.Adam(1e-3), TripletLoss(0.2, "hard"))
    monitor = CollapseMonitor(x, margin=0.2, patience=2)
    with pytest.raises(TrainingError, match="embedding collapse at epoch 1: the embeddings shrank"):
        tower.fit(x, y, batch_size=32, epochs=5, shuffle=False, verbose=0, callbacks=[monitor])
    assert monitor.spreads[-1] < 1e-6


def test_loss_stuck_at_margin_is_reported_after_patience_epochs():
    x, _ = _data(16)
    tower = build_embedding_model((8, 8, 1), embedding_dim=4, width=4)
    monitor = CollapseMonitor(x, margin=0.2, min_spread=0.0, patience=3, on_collapse="stop")
    monitor.set_model(tower)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.on_epoch_end(0, {"loss": 0.2001})
        monitor.on_epoch_end(1, {"loss": 0.15})  # away from the margin: the count restarts
        monitor.on_epoch_end(2, {"loss": 0.1999})
        monitor.on_epoch_end(3, {"loss": 0.2})
        assert monitor.collapsed is None
        monitor.on_epoch_end(4, {"loss": 0.2})
    assert "stuck at the margin" in monitor.collapsed
    assert tower.stop_training
    assert any("embedding collapse at epoch 5" in str(w.message) for w in caught)


def test_healthy_training_is_not_reported():
    x, y = _data()
    keras.utils.set_random_seed(0)
    tower = build_embedding_model((8, 8, 1), embedding_dim=4, width=4)
    tower.compile(keras.optimizers.Adam(1e-3), TripletLoss(0.2, "semi-hard"))
    monitor = CollapseMonitor(x, margin=0.2)
    history = tower.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[monitor])
    assert monitor.collapsed is None
    assert min(history.history["embedding_spread"]) > 1e-3


def test_monitor_argument_check():
    with pytest.raises(ValueError, match="on_collapse"):
        CollapseMonitor(np.zeros((2, 8, 8, 1)), on_collapse="ignore")
