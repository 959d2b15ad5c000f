"""The conv-BN-ReLU unit every small CNN of the zoo is built from."""

import keras
import numpy as np
import pytest

from zoo.backbones.cnn import conv_bn_relu


@pytest.mark.parametrize(("stride", "momentum"), [(1, 0.99), (2, 0.97)])
def test_conv_bn_relu_layers_names_and_settings(stride, momentum):
    inputs = keras.Input((8, 8, 3))
    outputs = conv_bn_relu(inputs, 4, "cnn", suffix="0_1", stride=stride, bn_momentum=momentum)
    model = keras.Model(inputs, outputs)
    conv, bn, relu = (model.get_layer(f"cnn_{kind}0_1") for kind in ("conv", "bn", "relu"))
    assert conv.strides == (stride, stride) and conv.kernel_size == (3, 3) and not conv.use_bias
    assert bn.momentum == momentum and bn.epsilon == pytest.approx(1e-3)
    assert model.output_shape == (None, 8 // stride, 8 // stride, 4)
    out = model(np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32"))
    assert float(np.min(out)) >= 0.0  # ReLU
