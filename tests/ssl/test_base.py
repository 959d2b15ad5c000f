"""The shared base of SimCLR, the VAE and DeepCluster: unknown arguments are refused, and the
wrapped encoder comes back from a config."""

import pytest

from zoo import build_ssl_encoder
from zoo.ssl import VAE, DeepCluster, SimCLR


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (SimCLR, {}),
        (VAE, {"input_shape": (16, 16, 1)}),
        (DeepCluster, {"k": 3, "num_examples": 10}),
    ],
)
def test_unknown_arguments_are_refused_and_configs_round_trip(cls, kwargs):
    encoder = build_ssl_encoder((16, 16, 1), width=4)
    with pytest.raises(TypeError, match=f"Unknown arguments for {cls.__name__}: \\['nope'\\]"):
        cls(encoder, nope=1, **kwargs)
    model = cls(encoder, **kwargs)
    again = cls.from_config(model.get_config())
    assert type(again) is cls and again.encoder is not encoder
    assert again.encoder.get_config()["name"] == encoder.get_config()["name"]
