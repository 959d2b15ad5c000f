"""Callbacks: LR schedule golden values, TimeBudget with a fake clock, factory order."""

import csv
import json
import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.data import CloseMosaic, Mosaic
from zoo.training import (
    BudgetLRSchedule,
    TimeBudget,
    best_logged_value,
    create_run_dir,
    make_callbacks,
    resolve_monitor_mode,
    tensorboard_available,
    warmup_cosine,
)
from zoo.training import callbacks as callbacks_module


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Advance(keras.callbacks.Callback):
    """Makes every train step take `step` fake seconds and every epoch end `epoch_end`."""

    def __init__(self, clock, step, epoch_end=0.0):
        super().__init__()
        self.clock, self.step, self.epoch_end = clock, step, epoch_end

    def on_train_batch_end(self, batch, logs=None):
        self.clock.now += self.step

    def on_epoch_end(self, epoch, logs=None):
        self.clock.now += self.epoch_end


class RecordLR(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def _model(lr=0.1):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


def _data(n=8, batch=2):
    x = np.arange(n * 2, dtype="float32").reshape(n, 2) / (n * 2)
    y = x.sum(axis=1, keepdims=True)
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


# --- warmup_cosine -----------------------------------------------------------------------------


def test_warmup_cosine_golden_values():
    assert warmup_cosine(0.0, base_lr=0.1) == pytest.approx(0.1)
    assert warmup_cosine(0.5, base_lr=0.1) == pytest.approx(0.05)
    assert warmup_cosine(1.0, base_lr=0.1) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(1.0, base_lr=0.1, min_lr_ratio=0.1) == pytest.approx(0.01)
    # warmup 0.2: linear to base at 0.2, cosine midpoint at 0.6
    assert warmup_cosine(0.0, base_lr=0.1, warmup=0.2) == 0.0
    assert warmup_cosine(0.1, base_lr=0.1, warmup=0.2) == pytest.approx(0.05)
    assert warmup_cosine(0.2, base_lr=0.1, warmup=0.2) == pytest.approx(0.1)
    assert warmup_cosine(0.6, base_lr=0.1, warmup=0.2) == pytest.approx(0.05)
    # hand value: 0.01 + 0.09 * (1 + cos(pi / 4)) / 2 at a quarter of the decay
    expected = 0.01 + 0.09 * (1 + math.cos(math.pi / 4)) / 2
    assert warmup_cosine(0.25, base_lr=0.1, min_lr_ratio=0.1) == pytest.approx(expected)
    assert warmup_cosine(-1.0, base_lr=0.1) == warmup_cosine(0.0, base_lr=0.1)  # clamped
    assert warmup_cosine(2.0, base_lr=0.1) == warmup_cosine(1.0, base_lr=0.1)


@settings(max_examples=60, deadline=None)
@given(
    p=st.floats(0, 1),
    q=st.floats(0, 1),
    warmup=st.floats(0, 0.9),
    floor=st.floats(0, 1),
)
def test_warmup_cosine_properties(p, q, warmup, floor):
    lr = warmup_cosine(p, base_lr=2.0, warmup=warmup, min_lr_ratio=floor)
    assert 0.0 <= lr <= 2.0 + 1e-12
    lo, hi = sorted((p, q))
    if lo >= warmup:  # non-increasing after warmup
        assert (
            warmup_cosine(hi, base_lr=2.0, warmup=warmup, min_lr_ratio=floor)
            <= warmup_cosine(lo, base_lr=2.0, warmup=warmup, min_lr_ratio=floor) + 1e-12
        )
    if lo >= warmup:
        assert lr >= 2.0 * floor - 1e-12 or p < warmup


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"base_lr": 0}, "base_lr"),
        ({"base_lr": 1, "warmup": 1.0}, "warmup"),
        ({"base_lr": 1, "min_lr_ratio": 2}, "min_lr_ratio"),
    ],
)
def test_warmup_cosine_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        warmup_cosine(0.5, **kwargs)


# --- BudgetLRSchedule --------------------------------------------------------------------------


def test_lr_follows_steps_start_middle_end():
    model, record = _model(0.1), RecordLR()
    schedule = BudgetLRSchedule(min_lr_ratio=0.1)  # base LR read from the optimizer
    history = model.fit(_data(8, 2), epochs=2, callbacks=[schedule, record], verbose=0)
    progress = [(e + b / 4) / 2 for e in range(2) for b in range(4)]
    expected = [warmup_cosine(p, base_lr=0.1, min_lr_ratio=0.1) for p in progress]
    np.testing.assert_allclose(record.lrs, expected, rtol=1e-6)
    assert record.lrs[0] == pytest.approx(0.1)  # start: base
    assert record.lrs[4] == pytest.approx(0.055)  # middle: (base + floor) / 2
    assert record.lrs[-1] < 0.02  # near the floor at the end
    np.testing.assert_allclose(
        history.history["learning_rate"], [expected[3], expected[7]], rtol=1e-6
    )


def test_lr_follows_the_time_budget_and_reaches_floor_when_it_stops():
    clock, record = FakeClock(), RecordLR()
    budget = TimeBudget(minutes=1, clock=clock, verbose=0)
    schedule = BudgetLRSchedule(0.1, time_fraction=budget.progress)
    model = _model()
    # 1000 epochs: the step fraction stays ~0, the budget (6 steps of 10 s in 60 s) decides.
    model.fit(
        _data(200, 2),
        epochs=1000,
        callbacks=[schedule, Advance(clock, 10.0), budget, record],
        verbose=0,
    )
    assert budget.stopped_early
    assert len(record.lrs) == 6
    expected = [warmup_cosine(t / 60.0, base_lr=0.1) for t in (0, 10, 20, 30, 40, 50)]
    np.testing.assert_allclose(record.lrs, expected, rtol=1e-6)
    assert record.lrs[3] == pytest.approx(0.05)  # middle of the budget: half the LR


def test_lr_schedule_rejects_keras_schedule():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(
        keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)), "mse"
    )
    with pytest.raises(ValueError, match="LearningRateSchedule"):
        model.fit(_data(), epochs=1, callbacks=[BudgetLRSchedule()], verbose=0)


# --- TimeBudget ---------------------------------------------------------------------------------


def test_time_budget_stops_before_the_budget_is_exceeded():
    clock = FakeClock()
    budget = TimeBudget(minutes=1, clock=clock, verbose=0)
    model = _model()
    model.fit(_data(200, 2), epochs=3, callbacks=[Advance(clock, 10.0), budget], verbose=0)
    # Steps of 10 s in a 60 s budget: 6 steps end at exactly 60 s; a 7th would end at 70 s.
    assert int(model.optimizer.iterations.numpy()) == 6
    assert clock.now == 60.0
    assert budget.stopped_early and "time budget 1 min" in budget.stop_reason


def test_time_budget_reserves_end_of_epoch_work():
    clock = FakeClock()
    budget = TimeBudget(minutes=2, clock=clock, verbose=0)
    model = _model()
    # 3 steps of 10 s per epoch, then 15 s of "validation + checkpoints" per epoch.
    model.fit(
        _data(6, 2), epochs=50, callbacks=[Advance(clock, 10.0, epoch_end=15.0), budget], verbose=0
    )
    # t: epoch 0 ends at 45, epoch 1 at 90; epoch 2 step 0 ends at 100 and 100 + 10 + 15 > 120,
    # so training stops there and the epoch's end-of-epoch work ends at 115 <= 120.
    assert int(model.optimizer.iterations.numpy()) == 7
    assert clock.now == 115.0 <= budget.budget_s
    assert budget.epoch_overhead() == 15.0 and budget.step_time() == 10.0


def test_time_budget_does_not_stop_a_run_that_fits():
    clock = FakeClock()
    budget = TimeBudget(minutes=10, clock=clock, verbose=0)
    model = _model()
    history = model.fit(_data(8, 2), epochs=2, callbacks=[Advance(clock, 1.0), budget], verbose=0)
    assert not budget.stopped_early and len(history.history["loss"]) == 2


def test_time_budget_step_estimate_skips_the_first_step():
    clock = FakeClock()
    budget = TimeBudget(minutes=1, clock=clock)
    budget.set_model(_model())
    budget.on_train_begin()
    for duration in (30.0, 1.0, 3.0):  # first step includes tracing
        budget.on_train_batch_begin(0)
        clock.now += duration
        budget.on_train_batch_end(0)
    assert budget.step_time() == 2.0
    assert budget.progress() == pytest.approx(34.0 / 60.0)


@pytest.mark.parametrize("minutes", [0, -1, float("inf"), "5", True])
def test_time_budget_rejects_bad_minutes(minutes):
    with pytest.raises(ValueError, match="minutes"):
        TimeBudget(minutes)


# --- factory -------------------------------------------------------------------------------------


def test_make_callbacks_hands_the_time_budget_to_callbacks_that_follow_it(tmp_path):
    run = create_run_dir(tmp_path, "exp")
    run.backup.mkdir(parents=True, exist_ok=True)
    # a resumed run: 50 s of the 60 s budget went to an earlier attempt
    (run.backup / "time_budget.json").write_text(json.dumps({"elapsed_s": 50.0}))
    mosaic = Mosaic(1.0)
    follows = CloseMosaic(mosaic, at=0.8)
    own_clock = CloseMosaic(Mosaic(1.0), at=0.8, time_fraction=lambda: 0.0)
    callbacks = make_callbacks(
        run, time_budget=1, extra=[follows, own_clock], clock=lambda: 0.0, tensorboard=False
    )
    budget = next(cb for cb in callbacks if isinstance(cb, TimeBudget))
    assert follows.time_fraction == budget.progress
    assert own_clock.time_fraction() == 0.0
    budget.on_train_begin()
    follows.set_params({"epochs": 100})
    follows.on_epoch_begin(0)
    follows.on_train_batch_begin(0)
    assert mosaic.closed and follows.closed_at == (0, 0)  # 50 of 60 s: past 80 %
    without_budget = CloseMosaic(Mosaic(1.0))
    make_callbacks(run, extra=[without_budget], tensorboard=False)
    assert without_budget.time_fraction is None


def test_make_callbacks_order(tmp_path, monkeypatch):
    monkeypatch.setattr(callbacks_module, "tensorboard_available", lambda: True)
    run = create_run_dir(tmp_path, "exp")
    extra = keras.callbacks.LambdaCallback()
    callbacks = make_callbacks(run, time_budget=5, extra=[extra])
    names = [type(cb).__name__ for cb in callbacks]
    assert names == [
        "RunBackup",
        "StopOnNaN",
        "BudgetLRSchedule",
        "TimeBudget",
        "LambdaCallback",
        "HistoryCSVLogger",
        "TensorBoard",
        "SafeModelCheckpoint",
        "SafeModelCheckpoint",
        "_BackupSaver",
    ]
    # restore first, save last: an epoch is backed up once it is logged and checkpointed
    assert callbacks[-1] is callbacks[0].saver
    assert isinstance(callbacks[0], keras.callbacks.BackupAndRestore)
    assert callbacks[-3].filepath.endswith("best.keras") and callbacks[-3].save_best_only
    assert callbacks[-2].filepath.endswith("last.keras") and not callbacks[-2].save_best_only
    assert isinstance(callbacks[-2], keras.callbacks.ModelCheckpoint)
    assert callbacks[0].stateful == {"lr_schedule": callbacks[2]}
    assert callbacks[3].state_file == run.backup / "time_budget.json"
    minimal = make_callbacks(
        run, lr_schedule=False, backup=False, tensorboard=False, weights_only=True
    )
    assert [type(cb).__name__ for cb in minimal] == [
        "StopOnNaN",
        "HistoryCSVLogger",
        "SafeModelCheckpoint",
        "SafeModelCheckpoint",
    ]
    assert minimal[-1].filepath.endswith("last.weights.h5")


def test_tensorboard_skipped_with_warning_when_not_installed(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(callbacks_module, "tensorboard_available", lambda: False)
    run = create_run_dir(tmp_path, "exp")
    with caplog.at_level("WARNING"):
        names = [type(cb).__name__ for cb in make_callbacks(run)]
    assert "TensorBoard" not in names and "pip install tensorboard" in caplog.text
    with pytest.raises(ImportError, match="tensorboard"):
        make_callbacks(run, tensorboard=True)


class WriteMetric(keras.callbacks.Callback):
    """A metrics callback: writes a value into the epoch logs (like a COCO mAP callback)."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = [0.2, 0.9, 0.5][epoch]


def test_extra_callbacks_are_seen_by_loggers_and_checkpoints(tmp_path):
    run = create_run_dir(tmp_path, "exp")
    model = _model()
    callbacks = make_callbacks(run, monitor="val_score", extra=[WriteMetric()], verbose=0)
    model.fit(_data(), epochs=3, callbacks=callbacks, verbose=0)
    with open(run.history_csv) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_score"]) for r in rows] == [0.2, 0.9, 0.5]
    assert "learning_rate" in rows[0]  # written by BudgetLRSchedule, also before CSVLogger
    assert run.best_checkpoint.is_file() and run.last_checkpoint.is_file()
    # TensorBoard logs when the package is there (CI installs it; see the report).
    assert any(run.logs.rglob("events.out.tfevents.*")) == tensorboard_available()
    # best.keras is from epoch 1 (max val_score), last.keras from epoch 2: they differ.
    best = keras.models.load_model(run.best_checkpoint)
    last = keras.models.load_model(run.last_checkpoint)
    assert not np.allclose(best.get_weights()[0], last.get_weights()[0])
    np.testing.assert_allclose(last.get_weights()[0], model.get_weights()[0])


def test_resolve_monitor_mode():
    assert resolve_monitor_mode("val_loss") == "min"
    assert resolve_monitor_mode("val_nme") == "min"
    assert resolve_monitor_mode("val_map50") == "max"
    assert resolve_monitor_mode("val_accuracy") == "max"
    assert resolve_monitor_mode("heatmap_loss") == "min"
    assert resolve_monitor_mode("val_map", "min") == "min"
    with pytest.raises(ValueError, match="'best'"):
        resolve_monitor_mode("val_loss", "best")


def test_best_logged_value(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_map\n0,2.0,0.1\n1,1.0,0.4\n2,1.5,nan\n")
    assert best_logged_value(path, "loss", "min") == 1.0
    assert best_logged_value(path, "val_map", "max") == 0.4
    assert best_logged_value(path, "val_loss", "min") is None
    assert best_logged_value(tmp_path / "missing.csv", "loss", "min") is None


def test_lr_schedule_drives_a_loss_scale_optimizer():
    # --mixed-precision on GPU means mixed_float16, where Keras wraps the optimizer.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model(0.1)
        assert type(model.optimizer).__name__ == "LossScaleOptimizer"
        schedule = BudgetLRSchedule(min_lr_ratio=0.1)
        model.fit(_data(8, 2), epochs=2, callbacks=[schedule], verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    expected = warmup_cosine(7 / 8, base_lr=0.1, min_lr_ratio=0.1)
    assert schedule.base_lr == pytest.approx(0.1)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        expected, rel=1e-6
    )


def test_time_budget_says_why_it_stopped_when_verbose(capsys):
    clock = FakeClock()
    budget = TimeBudget(minutes=1, clock=clock, verbose=1)
    _model().fit(_data(200, 2), epochs=1000, callbacks=[Advance(clock, 10.0), budget], verbose=0)
    assert budget.stopped_early
    assert "TimeBudget: time budget 1 min: stopping" in capsys.readouterr().out


class SlowFirstStep(keras.callbacks.Callback):
    """The first train step takes `first` fake seconds, the others `step`."""

    def __init__(self, clock, first, step):
        super().__init__()
        self.clock, self.first, self.step, self.done = clock, first, step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.clock.now += self.first if self.done == 0 else self.step
        self.done += 1


@pytest.mark.parametrize("count_first_step, steps", [(True, 1), (False, 7)])
def test_time_budget_can_leave_the_first_step_out(count_first_step, steps):
    clock = FakeClock()
    budget = TimeBudget(minutes=1, clock=clock, count_first_step=count_first_step, verbose=0)
    model = _model()
    model.fit(
        _data(200, 2), epochs=3, callbacks=[SlowFirstStep(clock, 100.0, 10.0), budget], verbose=0
    )
    # a 100 s first step: charged, it ends the 60 s budget at once; left out, the 60 s start
    # after it and six more 10 s steps fit
    assert int(model.optimizer.iterations.numpy()) == steps
    assert budget.stopped_early


def test_history_csv_leaves_undefined_values_empty(tmp_path):
    """A NaN / inf metric (a mAP with no detections) is an empty cell, not the text 'nan'."""
    import csv

    from zoo.training.callbacks import HistoryCSVLogger

    path = tmp_path / "history.csv"
    logger = HistoryCSVLogger(str(path))
    logger.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "val_map": float("nan"), "val_ratio": float("inf")})
    logger.on_epoch_end(1, {"loss": 0.25, "val_map": 0.75, "val_ratio": 2.0})
    logger.on_train_end()
    rows = list(csv.DictReader(path.open(newline="")))
    assert rows[0] == {"epoch": "0", "loss": "0.5", "val_map": "", "val_ratio": ""}
    assert rows[1]["val_map"] == "0.75"
    assert "nan" not in path.read_text().lower()
