"""Detect an embedding collapse while a tower trains, instead of training through it silently.

A metric-learning tower *collapses* when it maps every input to (nearly) the same point: all
distances go to zero, so a triplet loss sits exactly at its margin (``max(0, m + 0 − 0) = m``)
and the gradients that would separate the classes vanish. Batch-hard mining on an untrained
network is the classic way in (Hermans et al. 2017, section 4).

``embedding_spread(embeddings)`` measures how far a batch of embeddings is from a point, whatever
their scale: ``1 − ‖mean e‖² / mean ‖e‖²``, i.e. half the mean squared pairwise distance over the
mean squared norm. It is 0 for a collapse and 1 for embeddings centred on the origin; an
untrained tower's unit-norm embeddings of Fashion-MNIST already sit in a narrow cone (about 0.01:
its ReLU features share one direction), and training spreads them.

``CollapseMonitor`` embeds a fixed probe batch after every epoch and reports a collapse when

- the spread is below ``min_spread`` (the embeddings shrank to a point), or
- the epoch's loss was within ``tolerance`` of ``margin`` for ``patience`` epochs in a row (the
  loss is stuck at the margin).

It then raises ``zoo.training.TrainingError`` (``on_collapse="raise"``: recipes print one line
and exit 1), or warns and stops (``"stop"``) or only warns (``"warn"``); ``collapsed`` holds the
message either way.

Example:
    >>> monitor = CollapseMonitor(test.images[:256], margin=0.2)
    >>> encoder.fit(ds, epochs=12, steps_per_epoch=200, callbacks=[monitor])
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from zoo.training.errors import TrainingError

__all__ = ["COLLAPSE_ACTIONS", "CollapseMonitor", "embedding_spread"]

COLLAPSE_ACTIONS = ("raise", "stop", "warn")


def embedding_spread(embeddings):
    """``1 − ‖mean e‖² / mean ‖e‖²`` of ``(N, D)`` embeddings: 0 for a point, ~1 when spread.

    Equal to half the mean squared pairwise distance divided by the mean squared norm, so it does
    not depend on the embeddings' scale (normalised or not).
    """
    e = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    power = float(np.mean(np.sum(e * e, axis=1)))
    if power <= 1e-24:
        return 0.0
    mean = e.mean(axis=0)
    return float(max(0.0, 1.0 - float(mean @ mean) / power))


class CollapseMonitor(keras.callbacks.Callback):
    """Report an embedding collapse (see the module docstring) at the end of an epoch.

    Args:
        probe_images: a fixed batch of inputs (a few hundred, several classes) embedded each epoch.
        margin: the loss's margin (``None``: only the spread is checked). Give it for losses
            averaged over every anchor or pair (batch-hard, semi-hard): a loss averaged over
            its non-zero terms only (batch-all, ``average="active"``) sits near the margin
            while it trains.
        min_spread: spread below which the embeddings count as collapsed.
        tolerance: ``|loss − margin| <= tolerance · max(margin, 1e-3)`` counts as "at the margin".
        patience: epochs in a row at the margin before reporting.
        on_collapse: ``"raise"`` (``TrainingError``), ``"stop"`` (warn, stop training) or ``"warn"``.
        encoder: the tower to probe (default: the model being trained).
    """

    def __init__(
        self,
        probe_images,
        margin=None,
        min_spread=1e-3,
        tolerance=0.002,
        patience=3,
        on_collapse="raise",
        encoder=None,
    ):
        super().__init__()
        if on_collapse not in COLLAPSE_ACTIONS:
            raise ValueError(
                f"on_collapse must be one of {COLLAPSE_ACTIONS}. Received: {on_collapse!r}"
            )
        self.probe = np.asarray(probe_images, dtype=np.float32)
        self.margin = None if margin is None else float(margin)
        self.min_spread = float(min_spread)
        self.tolerance = float(tolerance)
        self.patience = int(patience)
        self.on_collapse = on_collapse
        self.encoder = encoder
        self.at_margin = 0
        self.spreads = []
        self.collapsed = None

    def on_epoch_end(self, epoch, logs=None):
        encoder = self.encoder if self.encoder is not None else self.model
        spread = embedding_spread(encoder.predict(self.probe, batch_size=256, verbose=0))
        self.spreads.append(spread)
        if logs is not None:
            logs["embedding_spread"] = spread
        loss = None if logs is None else logs.get("loss")
        reasons = []
        if spread < self.min_spread:
            reasons.append(
                f"the embeddings shrank to a point (spread {spread:.4f} < {self.min_spread:g})"
            )
        if self.margin is not None and loss is not None:
            near = abs(float(loss) - self.margin) <= self.tolerance * max(self.margin, 1e-3)
            self.at_margin = self.at_margin + 1 if near else 0
            if self.at_margin >= self.patience:
                reasons.append(
                    f"the loss is stuck at the margin ({float(loss):.4f} vs {self.margin:g}, "
                    f"{self.at_margin} epochs)"
                )
        if not reasons:
            return
        self.collapsed = (
            f"embedding collapse at epoch {epoch + 1}: {'; '.join(reasons)}. Lower the learning "
            "rate, or warm up on semi-hard mining (TripletLoss(warmup_steps=...))."
        )
        if self.on_collapse == "raise":
            raise TrainingError(self.collapsed)
        warnings.warn(self.collapsed, RuntimeWarning, stacklevel=2)
        if self.on_collapse == "stop":
            self.model.stop_training = True
