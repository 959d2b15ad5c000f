"""WeightEMA: the average follows the formula, training is untouched, validation sees the average."""

import math

import keras
import numpy as np
import pytest

from zoo.training import WeightEMA


class Recorder(keras.callbacks.Callback):
    """Live float weights after every training step, and the weights validation ran with."""

    def __init__(self):
        super().__init__()
        self.steps, self.validated = [], []

    def _float_weights(self):
        return [np.array(w.numpy()) for w in self.model.weights if "float" in str(w.dtype)]

    def on_train_begin(self, logs=None):
        self.initial = self._float_weights()

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self._float_weights())

    def on_test_begin(self, logs=None):
        self.validated.append(self._float_weights())


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.5)(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


def _fit(model, callbacks):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(x[:8], y[:8]),
        callbacks=callbacks,
    )


def test_average_matches_the_formula_and_training_is_unchanged():
    decay, warmup = 0.8, 3
    plain, averaged = _model(), _model()
    averaged.set_weights(plain.get_weights())
    rec_plain, rec_ema = Recorder(), Recorder()
    _fit(plain, [rec_plain])
    # the recorder comes first: it sees each step's live weights before the EMA update
    # ... and one after it sees what validation ran with
    rec_val = Recorder()
    _fit(averaged, [rec_ema, WeightEMA(decay, warmup), rec_val])
    assert len(rec_ema.steps) == 10
    for a, b in zip(rec_plain.steps, rec_ema.steps, strict=True):  # same live trajectory
        for wa, wb in zip(a, b, strict=True):
            np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    shadow = [w.copy() for w in rec_ema.initial]
    after_epoch = []
    for step, live in enumerate(rec_ema.steps, start=1):
        d = decay * (1.0 - math.exp(-step / warmup))
        shadow = [d * s + (1.0 - d) * w for s, w in zip(shadow, live, strict=True)]
        if step % 5 == 0:
            after_epoch.append([s.copy() for s in shadow])
    # BatchNorm moving statistics are averaged too: every float weight is checked
    final = [w.numpy() for w in averaged.weights if "float" in str(w.dtype)]
    assert len(final) == 8  # 2 Dense kernels + biases, BN gamma, beta, mean, variance
    for got, want in zip(final, shadow, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for validated, want in zip(rec_val.validated, after_epoch, strict=True):
        for got, w in zip(validated, want, strict=True):
            np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    # ... and differ from the live weights (the test could fail)
    assert not np.allclose(final[0], rec_ema.steps[-1][0])
    for got, live in zip([w.numpy() for w in plain.weights], rec_plain.steps[-1], strict=True):
        np.testing.assert_allclose(got, live)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"decay": 1.0}, "decay"), ({"warmup_steps": 0}, "warmup")]
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightEMA(**kwargs)
