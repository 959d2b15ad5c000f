"""Nothing lost on interruption: a SIGKILLed run resumes exactly, one process per run folder,
early and one-line failures (unwritable --output, full disk, NaN loss), JSON without NaN, and
no Keras warning from the spine's own fit call."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.data import DataError
from zoo.training import (
    RunBackup,
    RunLock,
    TimeBudget,
    TrainingError,
    build_parser,
    create_run_dir,
    parse_flags,
    read_backup_state,
    repair_history,
    train,
    warmup_cosine,
    write_json,
)
from zoo.training.cli import run_cli

WORKER = Path(__file__).with_name("resume_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse", metrics=["mae"])
    return model


def _data(unknown_size=False):
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3)
    y = np.sin(x).sum(axis=1, keepdims=True)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if unknown_size:
        ds = ds.filter(lambda a, b: True)  # cardinality unknown: steps learnt in epoch 0
    return ds.batch(2)  # 4 steps


def _args(tmp_path, *extra):
    return parse_flags(build_parser(), ["--output", str(tmp_path), "--verbose", "0", *extra])


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _lrs(rows):
    return [float(r["learning_rate"]) for r in rows]


class Record(keras.callbacks.Callback):
    """Weights at the end of every epoch (extras run before the checkpoints)."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]


def _assert_same_weights(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


# --- 1. a SIGKILL in the middle of an epoch ---------------------------------------------------------


def _worker(tmp_path, name, epochs, step_sleep, *extra, **popen):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ZOO_DEBUG", None)
    cmd = [sys.executable, str(WORKER), str(tmp_path / "runs"), name, str(epochs)]
    return subprocess.Popen(
        [*cmd, str(step_sleep), *extra], cwd=str(tmp_path), env=env, text=True, **popen
    )


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_with_each_epoch_once(tmp_path):
    epochs, steps = 4, 32
    run = tmp_path / "runs" / "killed"
    log = open(tmp_path / "first.log", "w")
    first = _worker(tmp_path, "killed", epochs, 0.04, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            if (run / "history.csv").is_file() and len(_rows(run / "history.csv")) >= 1:
                break
            time.sleep(0.05)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
        time.sleep(0.5)  # epoch 1 (of 4) is under way: ~1.3 s per epoch
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=60)
        log.close()
    logged = len(_rows(run / "history.csv"))
    assert 1 <= logged < epochs  # killed in the middle of the run...
    state = read_backup_state(run / "backup")
    assert state is not None and 1 <= state["epoch"] <= logged  # ...with a whole backup
    assert (run / "backup" / "time_budget.json").is_file()
    spent = json.loads((run / "backup" / "time_budget.json").read_text())["elapsed_s"]
    assert spent > 0
    assert not (run / "metrics.json").exists()

    # Same --name again: the stale run.lock of the killed process does not block it.
    second = _worker(
        tmp_path, "killed", epochs, 0.0, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, err[-3000:]

    rows = _rows(run / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))  # each epoch exactly once
    # The LR schedule went on where it was: the value of the last step of each epoch of an
    # uninterrupted run (the time budget of 10 min is far from binding).
    expected = [
        warmup_cosine((e + (steps - 1) / steps) / epochs, base_lr=0.02, warmup=0.2)
        for e in range(epochs)
    ]
    np.testing.assert_allclose(_lrs(rows), expected, rtol=1e-6)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_this_attempt"] == epochs - state["epoch"]
    assert metrics["spent_before_s"] >= spent  # the budget counted the first attempt
    assert metrics["not_a_number"] is None and np.isfinite(metrics["final_loss"])
    for checkpoint in ("best.keras", "last.keras"):
        keras.models.load_model(run / "checkpoints" / checkpoint)
    assert not (run / "backup").exists()
    assert not [p for p in (run / "checkpoints").iterdir() if ".tmp" in p.name]
    assert len(json.loads((run / "config.json").read_text())["resumed_at"]) == 1


def test_an_epoch_logged_but_not_backed_up_is_trained_again_and_logged_once(tmp_path, monkeypatch):
    # A kill between history.csv's row and the backup's commit, made deterministic.
    reference = train(_model(), _data(True), _args(tmp_path, "--epochs", "4", "--name", "ref"))
    save = RunBackup.save

    def dies_at_epoch_2(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("killed")
        save(self, epoch, logs)

    monkeypatch.setattr(RunBackup, "save", dies_at_epoch_2)
    args = _args(tmp_path, "--epochs", "4", "--name", "exp")
    with pytest.raises(KeyboardInterrupt):
        train(_model(), _data(True), args)
    run = tmp_path / "exp"
    assert [r["epoch"] for r in _rows(run / "history.csv")] == ["0", "1", "2"]
    assert read_backup_state(run / "backup")["epoch"] == 2
    monkeypatch.setattr(RunBackup, "save", save)
    result = train(_model(seed=5), _data(True), args)
    rows = _rows(run / "history.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert len(result.history.history["loss"]) == 2
    # Unknown dataset size: the steps per epoch the schedule learnt were restored, so the LR
    # of the first resumed epoch is not computed as if the epoch had 0 steps.
    np.testing.assert_allclose(_lrs(rows), _lrs(_rows(reference.run.history_csv)), rtol=1e-6)
    _assert_same_weights(result.history.model.get_weights(), reference.history.model.get_weights())


def test_repair_history_keeps_each_backed_up_epoch_once(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,3.0\n1,2.0\n1,1.5\n3,1.0\n2,9.0\n")
    logged = [{"epoch": 0, "loss": 3.0}, {"epoch": 2, "loss": 1.2}, {"epoch": 3, "loss": 7.0}]
    assert repair_history(path, 4, logged) == 0
    assert [(r["epoch"], r["loss"]) for r in _rows(path)] == [
        ("0", "3.0"),
        ("1", "1.5"),  # the later row of a twice-logged epoch
        ("2", "9.0"),
        ("3", "1.0"),
    ]
    path.write_text("epoch,loss\n0,3.0\n2,1.0\n3,0.5\n")
    assert repair_history(path, 3, logged) == 1  # epoch 3 is not in the backup: dropped
    assert [r["epoch"] for r in _rows(path)] == ["0", "2"]
    logged.append({"epoch": 1, "loss": 2.5})
    repair_history(path, 3, logged)
    assert [(r["epoch"], r["loss"]) for r in _rows(path)] == [
        ("0", "3.0"),
        ("1", "2.5"),  # filled in from the backup's copy of the logs
        ("2", "1.0"),
    ]
    repair_history(path, 0)  # a fresh start: nothing of an earlier run is kept
    assert not path.exists()


def test_time_budget_counts_the_time_of_earlier_attempts(tmp_path):
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    class TenSecondSteps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            clock.now += 10.0

    clock = Clock()
    state = tmp_path / "time_budget.json"
    first = TimeBudget(minutes=1, clock=clock, state_file=state, save_every=15.0, verbose=0)
    model = _model()
    # 4 steps of 10 s: saved at 20 s (>= 15 s since the start) and at the epoch end (40 s).
    model.fit(_data(), epochs=1, callbacks=[TenSecondSteps(), first], verbose=0)
    assert json.loads(state.read_text()) == {"elapsed_s": 40.0}
    second = TimeBudget(minutes=1, clock=clock, state_file=state, verbose=0)
    model.fit(_data(), epochs=10, callbacks=[TenSecondSteps(), second], verbose=0)
    assert second.spent_before == 40.0 and second.stopped_early
    # 40 s spent + 10 s steps, 60 s budget: after one step 50 + 10 is not > 60, after the
    # second 60 + 10 > 60 stops (without the earlier 40 s it would run 5 steps).
    assert int(model.optimizer.iterations.numpy()) == 4 + 2
    assert "40.0 s in earlier attempts" in second.stop_reason


# --- 2. one process per run folder -------------------------------------------------------------


def test_a_second_open_of_the_run_folder_is_refused_until_released(tmp_path):
    args = _args(tmp_path, "--epochs", "1", "--name", "busy")
    holder = RunLock.acquire(tmp_path / "busy")  # another open file description of run.lock
    try:
        with pytest.raises(DataError) as info:
            train(_model(), _data(), args)
        message = str(info.value)
        assert str(tmp_path / "busy") in message and "--name" in message
        assert f"in use by process {os.getpid()}" in message
        assert not (tmp_path / "busy" / "config.json").exists()  # refused before writing
    finally:
        holder.release()
    result = train(_model(), _data(), args)
    assert not result.run.lock.held  # released when train() returns...
    again = RunLock.acquire(tmp_path / "busy")
    again.release()

    class Boom(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(_model(), _data(), args, callbacks=[Boom()])
    RunLock.acquire(tmp_path / "busy").release()  # ...and when it raises


@pytest.mark.slow
def test_a_second_process_with_the_same_name_is_refused_at_once(tmp_path):
    holder = RunLock.acquire(tmp_path / "runs" / "shared")  # this process trains there
    try:
        proc = _worker(tmp_path, "shared", 2, 0.0, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=240)
    finally:
        holder.release()
    assert proc.returncode == 2, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    assert (
        f"run folder {tmp_path / 'runs' / 'shared'} is in use by process {os.getpid()}"
        in (errors[0])
    )
    assert "--name" in errors[0]
    assert not (tmp_path / "runs" / "shared" / "history.csv").exists()


# --- 3. failing early and in one line ----------------------------------------------------------


def test_an_output_that_cannot_be_created_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for output in (tmp_path / "file", tmp_path / "file" / "runs", Path("/proc/zoo-runs")):
        args = parse_flags(build_parser(), ["--output", str(output), "--name", "x"])
        model = _model()
        with pytest.raises(DataError, match="--output") as info:
            train(model, _data(), args)
        assert str(output) in str(info.value)
        assert int(model.optimizer.iterations.numpy()) == 0
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "x").write_text("a file where the run folder goes")
    with pytest.raises(DataError, match="--name") as info:
        create_run_dir(tmp_path / "runs", "x")
    assert str(tmp_path / "runs" / "x") in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write in a read-only folder")
def test_a_read_only_output_fails_before_training(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(DataError, match="--output"):
        train(_model(), _data(), _args(tmp_path / "ro", "--name", "x"))


def test_a_full_disk_while_checkpointing_keeps_the_last_good_checkpoint(tmp_path, capsys):
    args = _args(tmp_path, "--epochs", "3", "--name", "full")
    model, record = _model(), Record()
    save, calls = model.save, []
    last = tmp_path / "full" / "checkpoints" / "last.keras"

    def fills_the_disk(path, *a, **k):
        calls.append(path)
        if "last" in Path(path).name and sum("last" in Path(p).name for p in calls) == 2:
            Path(path).write_bytes(b"half a zip")  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return save(path, *a, **k)

    model.save = fills_the_disk
    status = run_cli(lambda argv: train(model, _data(), args, callbacks=[record]), [])
    err = capsys.readouterr().err
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    assert f"could not write the checkpoint {last} at epoch 1" in errors[0]
    assert "No space left on device" in errors[0] and "previous one is kept" in errors[0]
    _assert_same_weights(keras.models.load_model(last).get_weights(), record.weights[0])
    assert not [p for p in last.parent.iterdir() if ".tmp" in p.name]
    assert read_backup_state(tmp_path / "full" / "backup")["epoch"] == 1  # resumable


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoints(tmp_path, capsys):
    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                kernel = self.model.layers[0].kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    args = _args(tmp_path, "--epochs", "3", "--name", "nan")
    record = Record()
    model = _model()
    with pytest.raises(TrainingError) as info:
        train(model, _data(), args, callbacks=[Poison(), record])
    message = str(info.value)
    assert "loss is nan at epoch 1, step 2" in message
    assert "loss=nan mae=nan" in message and "\n" not in message
    run = tmp_path / "nan"
    assert [r["epoch"] for r in _rows(run / "history.csv")] == ["0"]
    for name in ("best.keras", "last.keras"):
        weights = keras.models.load_model(run / "checkpoints" / name).get_weights()
        _assert_same_weights(weights, record.weights[0])
    assert read_backup_state(run / "backup")["epoch"] == 1
    RunLock.acquire(run).release()  # the lock was released on the way out

    status = run_cli(lambda argv: train(_model(), _data(), args, callbacks=[Poison()]), [])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert status == 1 and len(lines) == 1 and "is nan at epoch 1" in lines[0]


# --- 4. JSON without NaN -----------------------------------------------------------------------


def test_json_files_hold_null_for_nan_and_inf(tmp_path):
    path = write_json(
        tmp_path / "metrics.json",
        {"map": float("nan"), "loss": np.float32(0.5), "r": [np.inf, -np.inf, 1], "n": np.int64(3)},
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"map": None, "loss": 0.5, "r": [None, None, 1], "n": 3}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    run = create_run_dir(tmp_path, "cfg", config={"config": {"lr": float("nan")}})
    config = json.loads(run.config_json.read_text(), parse_constant=pytest.fail)
    assert config["config"] == {"lr": None}

    class NanMetric(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = float("nan")

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")

    args = _args(tmp_path, "--epochs", "2", "--name", "state")
    with pytest.raises(RuntimeError):
        train(_model(), _data(), args, callbacks=[NanMetric(), Crash()])
    state_text = (tmp_path / "state" / "backup" / "state.json").read_text()
    state = json.loads(state_text, parse_constant=pytest.fail)
    assert state["history"][0]["val_score"] is None


# --- 5. a clean console ------------------------------------------------------------------------


def test_train_on_a_dataset_emits_no_user_warning(tmp_path):
    args = _args(tmp_path, "--epochs", "2", "--name", "quiet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(_model(), _data(), args, validation_data=_data(), tensorboard=False)
    user = [w for w in caught if issubclass(w.category, UserWarning)]
    assert not user, [str(w.message) for w in user]


def test_arrays_are_still_shuffled(tmp_path, monkeypatch):
    seen = {}
    fit = keras.Model.fit

    def spy(self, *a, **k):
        seen["shuffle"] = k.get("shuffle", "default")
        return fit(self, *a, **k)

    monkeypatch.setattr(keras.Model, "fit", spy)
    x = np.zeros((8, 3), "float32")
    train(_model(), _data(), _args(tmp_path, "--epochs", "1", "--name", "ds"))
    assert seen["shuffle"] is False
    model = _model()
    train(model, x, _args(tmp_path, "--epochs", "1", "--name", "arr"), y=np.zeros((8, 1)))
    assert seen["shuffle"] == "default"  # fit's own default (True) for arrays


def test_the_backup_holds_the_training_weights_not_the_ema_average(tmp_path):
    from zoo.training import WeightEMA

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")

    live = Record()  # before WeightEMA in the list: sees the live weights at the epoch end
    args = _args(tmp_path, "--epochs", "2", "--name", "ema")
    with pytest.raises(RuntimeError):
        train(_model(), _data(), args, callbacks=[live, WeightEMA(0.9, 1), Crash()])
    state = read_backup_state(tmp_path / "ema" / "backup")
    restored = _model(seed=3)
    restored.load_weights(tmp_path / "ema" / "backup" / state["weights"])
    _assert_same_weights(restored.get_weights(), live.weights[0])
    last = keras.models.load_model(tmp_path / "ema" / "checkpoints" / "last.keras")
    assert not np.allclose(last.get_weights()[0], live.weights[0][0])  # the average
