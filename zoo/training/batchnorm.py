"""Precise BatchNorm statistics: re-estimate moving mean/variance after short training.

With few training steps (fine-tuning on 1 % of the labels is a few hundred steps) the moving
averages of ``BatchNormalization`` (momentum 0.99) still remember the starting point, so the
model evaluates with statistics that belong to other weights and accuracy can collapse. The fix
("precise BN", as in pycls/Detectron) is a pass over training images with the weights frozen
that sets each moving statistic to the average of the per-batch statistics.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["batchnorm_layers", "recalibrate_batchnorm"]


def batchnorm_layers(model):
    """Every ``keras.layers.BatchNormalization`` inside ``model``, nested models included."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        stack.extend(reversed(getattr(layer, "layers", [])))
    return found


def recalibrate_batchnorm(model, images, batch_size=256, max_images=4096, seed=0):
    """Set every BatchNorm's moving statistics to the mean of its batch statistics on ``images``.

    Only the moving mean and variance change; trainable weights do not. Layers run in training
    mode for the pass (so Dropout is active, as it was while the statistics were gathered).

    Args:
        model: a Keras model (BatchNorm layers anywhere inside it).
        images: array ``(N, ...)`` of model inputs.
        batch_size: images per forward pass (each pass's statistics are averaged with equal weight).
        max_images: at most this many images, drawn at random without replacement (seed).
        seed: which images when ``N > max_images``.

    Returns:
        The number of BatchNorm layers recalibrated (0: nothing to do, the model is unchanged).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    images = np.asarray(images)
    if len(images) == 0:
        raise ValueError("recalibrate_batchnorm needs at least one image. Received: 0 images")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if len(images) > max_images:
        images = images[np.random.default_rng(seed).choice(len(images), max_images, replace=False)]
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    try:
        for i, start in enumerate(range(0, len(images), batch_size)):
            for layer in layers:
                # running mean of the per-batch statistics: new = old * i/(i+1) + batch / (i+1)
                layer.momentum = i / (i + 1.0)
                layer.trainable = True
            model(images[start : start + batch_size].astype("float32"), training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved, strict=True):
            layer.momentum, layer.trainable = momentum, trainable
    return len(layers)
