"""The base of the self-supervised methods that train an encoder inside a model of their own
(SimCLR, the VAE, DeepCluster): argument checking and ``.keras`` loading of the wrapped encoder."""

from __future__ import annotations

import keras

__all__ = ["EncoderTaskModel"]


class EncoderTaskModel(keras.Model):
    """A ``keras.Model`` that wraps an ``encoder`` and stores it in its config.

    Subclasses keep every constructor argument as an attribute, return them (with the encoder
    serialized) from ``get_config``, and get ``from_config`` from here.
    """

    def __init__(self, name, **kwargs):
        unknown = sorted(set(kwargs) - {"trainable", "dtype"})
        if unknown:
            raise TypeError(f"Unknown arguments for {type(self).__name__}: {unknown}")
        super().__init__(name=name, **kwargs)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
