"""train(): run directory end to end, interruption + resume, time budget, argument errors."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.training import build_parser, parse_flags, train, warmup_cosine
from zoo.training.train import TrainResult


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash at the start of epoch `at`."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError(f"interrupted at epoch {epoch}")


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse")
    return model


def _data():
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3)
    y = np.sin(x).sum(axis=1, keepdims=True)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


def _args(tmp_path, *extra):
    return parse_flags(build_parser(), ["--output", str(tmp_path), "--verbose", "0", *extra])


def _rows(run):
    with open(run.history_csv) as f:
        return list(csv.DictReader(f))


def test_train_writes_the_run_directory(tmp_path):
    args = _args(tmp_path, "--epochs", "2", "--name", "exp")
    result = train(
        _model(), _data(), args, recipe="demo", validation_data=_data(), config={"width": 4}
    )
    assert isinstance(result, TrainResult) and result.time_budget is None
    run = result.run
    assert run.path == tmp_path / "exp"
    assert len(result.history.history["loss"]) == 2
    assert [r["epoch"] for r in _rows(run)] == ["0", "1"]
    assert {"loss", "val_loss", "learning_rate"} <= set(_rows(run)[0])
    assert run.best_checkpoint.is_file() and run.last_checkpoint.is_file()
    assert not run.backup.exists()  # BackupAndRestore removes its state when a run completes
    config = json.loads(run.config_json.read_text())
    assert config["recipe"] == "demo" and config["config"] == {"width": 4}
    assert config["flags"]["epochs"] == 2 and config["flags"]["output"] == str(tmp_path)
    reloaded = keras.models.load_model(run.last_checkpoint)
    np.testing.assert_allclose(
        reloaded.predict(_data(), verbose=0),
        result.history.model.predict(_data(), verbose=0),
        rtol=1e-6,
    )


def test_generated_name_and_smoke(tmp_path):
    args = _args(tmp_path, "--smoke")
    result = train(_model(), _data().repeat(), args, recipe="demo")
    assert result.run.name.startswith("demo-")
    assert len(result.history.history["loss"]) == 1  # --smoke: 1 epoch
    assert int(result.history.model.optimizer.iterations.numpy()) == 2  # --smoke: 2 steps


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    # Reference: 4 uninterrupted epochs.
    reference = train(_model(), _data(), _args(tmp_path, "--epochs", "4", "--name", "ref"))
    # Same run, crashing at the start of epoch 2 (of 4)...
    args = _args(tmp_path, "--epochs", "4", "--name", "exp")
    with pytest.raises(RuntimeError, match="interrupted at epoch 2"):
        train(_model(), _data(), args, callbacks=[Interrupt(2)])
    run = tmp_path / "exp"
    assert (run / "backup").is_dir()
    assert len(list(csv.DictReader(open(run / "history.csv")))) == 2
    # ...then run again with the same name: a fresh process would build a new model.
    result = train(_model(seed=123), _data(), args)
    assert result.run.resumed
    assert len(result.history.history["loss"]) == 2  # only epochs 2 and 3 ran
    rows = _rows(result.run)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]  # same number of epochs
    assert not (run / "backup").exists()
    # Weights, optimizer state (momentum) and the LR schedule were restored: same result.
    for got, want in zip(
        result.history.model.get_weights(), reference.history.model.get_weights(), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        [float(r["learning_rate"]) for r in rows],
        [float(r["learning_rate"]) for r in _rows(reference.run)],
        rtol=1e-6,
    )
    assert len(json.loads((run / "config.json").read_text())["resumed_at"]) == 1


def test_time_budget_flag_stops_training(tmp_path):
    clock = FakeClock()

    class TenSecondSteps(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            clock.now += 10.0

    args = _args(tmp_path, "--epochs", "100", "--time-budget", "0.5", "--name", "budget")
    # Extra callbacks come after TimeBudget in the list, so advancing the clock in their
    # batch-begin lands between TimeBudget's batch-begin and batch-end: steps "take" 10 s.
    result = train(
        _model(), _data(), args, callbacks=[TenSecondSteps()], clock=clock, tensorboard=False
    )
    assert result.time_budget.stopped_early
    # 30 s budget, 2 steps per epoch: steps end at 10, 20 (20 + 10 = 30 is not > 30, go on)
    # and 30, where 30 + 10 > 30 stops training.
    assert int(result.history.model.optimizer.iterations.numpy()) == 3
    assert clock.now <= 30.0
    # The LR follows the budget: the last step started at 20 s of 30 s.
    lr = float(_rows(result.run)[-1]["learning_rate"])
    assert lr == pytest.approx(warmup_cosine(20.0 / 30.0, base_lr=0.05), rel=1e-6)


def test_train_rejects_uncompiled_and_unbuilt_models(tmp_path):
    args = _args(tmp_path, "--epochs", "1")
    uncompiled = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile"):
        train(uncompiled, _data(), args)
    unbuilt = keras.Sequential([keras.layers.Dense(1)])
    unbuilt.compile("sgd", "mse")
    with pytest.raises(ValueError, match="not built"):
        train(unbuilt, _data(), args)


def test_train_accepts_a_plain_dict(tmp_path):
    result = train(
        _model(), _data(), {"epochs": 1, "output": str(tmp_path), "name": "d", "verbose": 0}
    )
    assert result.run.path == tmp_path / "d" and len(result.history.history["loss"]) == 1
