"""Callbacks of the recipe spine: time budget, budget-aware LR schedule and the factory.

``make_callbacks`` returns, in this order (the order matters, see its docstring)::

    RunBackup, StopOnNaN, BudgetLRSchedule, TimeBudget, *extra,
    CSVLogger, TensorBoard, SafeModelCheckpoint(best), SafeModelCheckpoint(last),
    RunBackup.saver

Nothing is lost when a run is killed: ``RunBackup`` commits each epoch atomically after it is
logged and checkpointed, ``SafeModelCheckpoint`` replaces checkpoints atomically, and
``StopOnNaN`` ends a run whose loss went NaN before the broken weights reach a checkpoint.

Example:
    >>> run = create_run_dir("runs", "demo")                           # doctest: +SKIP
    >>> callbacks = make_callbacks(run, monitor="val_loss", time_budget=30)  # doctest: +SKIP
    >>> model.fit(train, validation_data=val, epochs=10, callbacks=callbacks)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import keras

from zoo.training.errors import TrainingError
from zoo.training.run_dir import atomic_write_text, json_safe, write_json

_log = logging.getLogger(__name__)

__all__ = [
    "RunBackup",
    "SafeModelCheckpoint",
    "StopOnNaN",
    "read_backup_state",
    "repair_history",
    "tensorboard_available",
    "warmup_cosine",
    "BudgetLRSchedule",
    "TimeBudget",
    "WeightEMA",
    "make_callbacks",
    "resolve_monitor_mode",
    "best_logged_value",
    "HistoryCSVLogger",
]


def warmup_cosine(
    progress: float,
    *,
    base_lr: float,
    warmup: float = 0.0,
    min_lr_ratio: float = 0.0,
) -> float:
    """Learning rate at ``progress`` in [0, 1]: linear warmup, then cosine decay to a floor.

    ``lr = base_lr * progress / warmup`` while ``progress < warmup``, then
    ``floor + (base_lr - floor) * (1 + cos(pi * (progress - warmup) / (1 - warmup))) / 2``
    with ``floor = min_lr_ratio * base_lr``. ``progress`` is clamped to [0, 1].

    Args:
        progress: fraction of training done (steps or wall clock, see ``BudgetLRSchedule``).
        base_lr: peak learning rate (> 0).
        warmup: fraction of training spent warming up, in [0, 1).
        min_lr_ratio: floor as a fraction of ``base_lr``, in [0, 1].

    Returns:
        The learning rate (a Python float).

    Example:
        >>> warmup_cosine(0.5, base_lr=0.1), warmup_cosine(1.0, base_lr=0.1, min_lr_ratio=0.1)
        (0.05, 0.01)
    """
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0. Received: base_lr={base_lr!r}")
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be in [0, 1). Received: warmup={warmup!r}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1]. Received: min_lr_ratio={min_lr_ratio!r}")
    p = min(max(float(progress), 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return float(base_lr * p / warmup)
    floor = min_lr_ratio * base_lr
    t = (p - warmup) / (1.0 - warmup)
    return float(floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * t)))


class TimeBudget(keras.callbacks.Callback):
    """Stop training before a wall-clock budget is exceeded.

    After every batch the callback predicts when the *next* step would end, plus the
    end-of-epoch work that follows when training stops (validation, checkpoints, logs;
    measured as the gap between the last batch of an epoch and the first of the next). If that
    is past the budget it sets ``model.stop_training``; Keras then finishes the epoch (runs
    validation and the epoch-end callbacks) and returns. Step time is the mean of the last
    ``window`` steps, leaving out the first step of the run (tracing/compilation) once others
    exist. Time counts from ``on_train_begin`` of this ``fit`` call, or, with
    ``count_first_step=False``, from the end of the first training step, so that tracing,
    compilation or a stall in that step is not charged to the budget.

    With ``state_file`` the budget spans restarts: the seconds used so far are written there
    (atomically) at every epoch end and at least every ``save_every`` seconds, and a later
    ``fit`` (a run resumed after a crash or a kill) starts from them, so ``--time-budget`` is
    the time of all attempts together, the part of an epoch that was lost included.
    ``make_callbacks`` puts it in the run's ``backup/`` folder, deleted when the run ends.

    In multi-worker training each worker decides with its own clock; keep budgets for
    single-worker runs, or make sure workers stop at the same step.

    Args:
        minutes: the budget in minutes (> 0).
        clock: function returning seconds (default ``time.monotonic``); inject a fake clock
            in tests.
        window: number of recent steps averaged for the step-time estimate.
        count_first_step: charge the first step (tracing, compilation) to the budget. False
            for comparisons that must give every run the same training time: a first step
            that took longer than a whole 30 s budget once left a fine-tune with one step.
        verbose: print a line when the budget stops training.
        state_file: JSON file holding the seconds used by earlier attempts, or None.
        save_every: seconds between writes of ``state_file`` within an epoch.

    Attributes:
        stopped_early: True once the budget stopped training.
        stop_reason: human-readable reason (or None).
        spent_before: seconds used by earlier attempts (read from ``state_file``).

    Example:
        >>> budget = TimeBudget(minutes=30)
        >>> model.fit(data, epochs=1000, callbacks=[budget])  # doctest: +SKIP
    """

    def __init__(
        self,
        minutes: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: int = 20,
        count_first_step: bool = True,
        verbose: int = 1,
        state_file=None,
        save_every: float = 10.0,
    ):
        super().__init__()
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, (int, float))
            or not minutes > 0
            or not math.isfinite(minutes)
        ):
            raise ValueError(f"minutes must be a finite number > 0. Received: minutes={minutes!r}")
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1. Received: window={window!r}")
        self.minutes = float(minutes)
        self.budget_s = 60.0 * float(minutes)
        self.clock = clock
        self.window = window
        self.count_first_step = bool(count_first_step)
        self.verbose = verbose
        self.state_file = None if state_file is None else Path(state_file)
        self.save_every = float(save_every)
        self._reset()

    def _reset(self):
        self._start = None
        self.spent_before = 0.0
        self._last_save = None
        self._step_times: list[float] = []
        self._batch_start = None
        self._last_batch_end = None
        self._overhead = 0.0
        self.stopped_early = False
        self.stop_reason = None

    # --- estimates ---
    def elapsed(self) -> float:
        """Seconds of training so far, earlier attempts included (0 before the first)."""
        if self._start is None:
            return self.spent_before
        return self.spent_before + self.clock() - self._start

    # --- state across restarts ---
    def _read_state(self) -> float:
        if self.state_file is None or not self.state_file.is_file():
            return 0.0
        try:
            spent = float(json.loads(self.state_file.read_text())["elapsed_s"])
        except (OSError, ValueError, KeyError, TypeError):
            _log.warning("TimeBudget: unreadable %s; counting from 0 s", self.state_file)
            return 0.0
        return spent if math.isfinite(spent) and spent > 0 else 0.0

    def _save_state(self, now=None) -> None:
        if self.state_file is None or self._start is None:
            return
        now = self.clock() if now is None else now
        self._last_save = now
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.state_file, {"elapsed_s": self.spent_before + now - self._start})
        except OSError as error:  # the budget still holds for this attempt
            _log.warning("TimeBudget: could not write %s (%s)", self.state_file, error)

    def step_time(self) -> float:
        """Estimated seconds per training step (0 before the first step)."""
        times = self._step_times
        if not times:
            return 0.0
        recent = times[1:] if len(times) > 1 else times
        recent = recent[-self.window :]
        return sum(recent) / len(recent)

    def epoch_overhead(self) -> float:
        """Estimated seconds of end-of-epoch work (validation, checkpoints); 0 until measured."""
        return self._overhead

    def progress(self) -> float:
        """Fraction of the budget used, counting the reserved end-of-epoch work, in [0, 1].

        ``BudgetLRSchedule`` uses this so the LR reaches its floor when the budget stops
        training.
        """
        if self._start is None:
            return 0.0
        return min(1.0, max(0.0, (self.elapsed() + self._overhead) / self.budget_s))

    # --- Keras hooks ---
    def on_train_begin(self, logs=None):
        self._reset()
        self.spent_before = self._read_state()
        self._start = self.clock()
        self._last_save = self._start

    def on_epoch_begin(self, epoch, logs=None):
        if self._last_batch_end is not None:
            self._overhead = max(0.0, self.clock() - self._last_batch_end)

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        if self._batch_start is not None:
            self._step_times.append(max(0.0, now - self._batch_start))
        self._last_batch_end = now
        if not self.count_first_step and len(self._step_times) == 1:
            self._start = now  # the budget starts after the first step
            return
        if self.state_file is not None and now - self._last_save >= self.save_every:
            self._save_state(now)
        projected = self.spent_before + (now - self._start) + self.step_time() + self._overhead
        if projected > self.budget_s:
            self._stop(f"batch {batch}", now, projected)

    def on_epoch_end(self, epoch, logs=None):
        self._save_state()
        if self._last_batch_end is None or self.model.stop_training:
            return
        now = self.clock()
        left_this_epoch = max(0.0, self._overhead - (now - self._last_batch_end))
        projected = (
            self.spent_before
            + (now - self._start)
            + left_this_epoch
            + self.step_time()
            + self._overhead
        )
        if projected > self.budget_s:
            self._stop(f"end of epoch {epoch}", now, projected)

    def _stop(self, where, now, projected):
        self.model.stop_training = True
        if self.stopped_early:
            return
        self.stopped_early = True
        self.stop_reason = (
            f"time budget {self.minutes:g} min: stopping at {where} after "
            f"{self.spent_before + now - self._start:.1f} s"
            + (f" ({self.spent_before:.1f} s in earlier attempts)" if self.spent_before else "")
            + f"; one more step would end at ~{projected:.1f} s "
            f"(step {self.step_time():.3f} s, end-of-epoch work {self._overhead:.2f} s) "
            f"> budget {self.budget_s:.1f} s"
        )
        if self.verbose:
            print(f"\nTimeBudget: {self.stop_reason}", flush=True)


class BudgetLRSchedule(keras.callbacks.Callback):
    """Set the optimizer's learning rate before every step from a warmup + cosine schedule.

    ``progress = max(step fraction, time fraction)``: the step fraction is
    ``(epoch + batch / steps_per_epoch) / epochs``; the time fraction comes from
    ``time_fraction()`` (e.g. ``TimeBudget.progress``), so with a time budget the LR reaches
    its floor when the budget ends, and otherwise when the last epoch ends. After a resume
    (``BackupAndRestore``) the epoch number continues, so the schedule does too. The LR used
    in an epoch's last step is written to the epoch logs as ``learning_rate``. What it learns
    on the way (the steps per epoch of a dataset of unknown size) is in ``get_state()``, which
    ``RunBackup`` saves and restores, so a resumed run continues the same schedule.

    The optimizer must have been compiled with a float learning rate (not a
    ``LearningRateSchedule``).

    Args:
        base_lr: peak LR; ``None`` reads the optimizer's learning rate when the callback is
            attached to the model (before ``BackupAndRestore`` restores anything).
        warmup: warmup fraction, in [0, 1).
        min_lr_ratio: floor as a fraction of ``base_lr``.
        time_fraction: function returning the fraction of the time budget used, or None.

    Example:
        >>> budget = TimeBudget(minutes=60)
        >>> schedule = BudgetLRSchedule(warmup=0.05, time_fraction=budget.progress)
        >>> model.fit(data, epochs=100, callbacks=[schedule, budget])  # doctest: +SKIP
    """

    def __init__(
        self,
        base_lr: float | None = None,
        *,
        warmup: float = 0.0,
        min_lr_ratio: float = 0.0,
        time_fraction: Callable[[], float] | None = None,
    ):
        super().__init__()
        if base_lr is not None:
            warmup_cosine(0.0, base_lr=base_lr, warmup=warmup, min_lr_ratio=min_lr_ratio)
        else:
            warmup_cosine(0.0, base_lr=1.0, warmup=warmup, min_lr_ratio=min_lr_ratio)
        self.base_lr = None if base_lr is None else float(base_lr)
        self.warmup = float(warmup)
        self.min_lr_ratio = float(min_lr_ratio)
        self.time_fraction = time_fraction
        self._epoch = 0
        self._steps = None
        self._seen_in_epoch = 0
        self.last_lr = None
        self.last_progress = None

    def set_model(self, model):
        super().set_model(model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "BudgetLRSchedule needs a compiled model (model.optimizer is None). "
                "Compile the model before fit."
            )
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if isinstance(
            getattr(inner, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule
        ):
            raise ValueError(
                "BudgetLRSchedule sets the learning rate itself, but the optimizer was compiled "
                f"with a LearningRateSchedule ({inner._learning_rate!r}). Compile with a float "
                "learning rate, or turn the schedule off (make_callbacks(lr_schedule=False))."
            )
        if self.base_lr is None:
            self.base_lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    def progress(self, batch: int) -> float:
        """Training progress in [0, 1] at ``batch`` of the current epoch."""
        epochs = max(1, int(self.params.get("epochs") or 1))
        steps = self.params.get("steps") or self._steps
        within = batch / steps if steps else 0.0
        fraction = (self._epoch + min(within, 1.0)) / epochs
        if self.time_fraction is not None:
            fraction = max(fraction, float(self.time_fraction()))
        return min(max(fraction, 0.0), 1.0)

    def get_state(self) -> dict:
        """What a resumed run needs to continue the schedule (JSON-able)."""
        return {"steps": self._steps}

    def set_state(self, state: dict) -> None:
        """Restore ``get_state()`` of an earlier attempt (before training starts)."""
        if state.get("steps"):
            self._steps = int(state["steps"])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._seen_in_epoch = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.last_progress = self.progress(batch)
        self.last_lr = warmup_cosine(
            self.last_progress,
            base_lr=self.base_lr,
            warmup=self.warmup,
            min_lr_ratio=self.min_lr_ratio,
        )
        self.model.optimizer.learning_rate = self.last_lr
        self._seen_in_epoch = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        if self._seen_in_epoch and not self.params.get("steps"):
            self._steps = self._seen_in_epoch  # unknown cardinality: learn it from epoch 1
        if logs is not None and self.last_lr is not None:
            logs["learning_rate"] = self.last_lr


# --- failures and restarts -----------------------------------------------------------------------


def _format_logs(logs) -> str:
    """``loss=nan box=0.3 obj=nan``: every scalar in ``logs``, in order."""
    parts = []
    for key, value in (logs or {}).items():
        try:
            parts.append(f"{key}={float(value):.6g}")
        except (TypeError, ValueError):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _is_loss_key(key: str) -> bool:
    return key == "loss" or (key.endswith("_loss") and not key.startswith("val_"))


class StopOnNaN(keras.callbacks.Callback):
    """Stop training with a ``TrainingError`` at the first step whose loss is NaN or inf.

    Replaces ``keras.callbacks.TerminateOnNaN``, which ends ``fit`` normally, so that the epoch
    end still ran: the loggers and checkpoints after it saved the broken weights over
    ``last.keras``. Raising at the step instead ends ``fit`` before the epoch end: the
    checkpoints and the backup stay those of the last completed epoch, and the run ends with
    one line (``zoo.training.cli.run_cli``: exit status 1) naming the epoch, the step and every
    value of the step's ``logs``::

        loss is nan at epoch 3, step 17 (epochs from 0, as in history.csv):
        loss=nan box=0.3 obj=nan; ...

    The training ``loss`` and every other ``*_loss`` entry (not ``val_*``) are checked, after
    each step and at the epoch end.

    Args:
        where: folder whose checkpoints are kept, named in the message (or None).
    """

    def __init__(self, where=None):
        super().__init__()
        self.where = where
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, step):
        bad = []
        for key, value in (logs or {}).items():
            if not _is_loss_key(key):
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                bad.append((key, value))
        if not bad:
            return
        key, value = bad[0]
        if self.where is not None and any(Path(self.where).glob("*")):
            kept = f"the checkpoints of the last completed epoch are kept in {self.where}"
        else:
            kept = "nothing was saved since no epoch completed"
        raise TrainingError(
            f"{key} is {value} at epoch {self._epoch}, {step} (epochs from 0, as in "
            f"history.csv): {_format_logs(logs)}; training stopped and {kept}. Lower the "
            "learning rate or check the data (the same --name resumes from the last "
            "completed epoch)"
        )

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"step {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch
        self._check(logs, "epoch end")


def read_backup_state(backup_dir) -> dict | None:
    """The ``state.json`` of a ``RunBackup`` folder, or None (no backup, or an unreadable one)."""
    path = Path(backup_dir) / RunBackup.STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        _log.warning("Unreadable backup state %s: starting from epoch 0", path)
        return None
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        return None
    return state


def _history_epoch(row) -> int | None:
    try:
        return int(row.get("epoch", ""))
    except (TypeError, ValueError):
        return None


def repair_history(history_csv, epoch: int, logged=()) -> int:
    """Make ``history.csv`` hold epochs ``0 .. epoch - 1`` exactly once, before a (re)start.

    A run killed after its CSV row but before its backup of an epoch is resumed from the
    backup, which trains that epoch again: its first row goes. Rows are kept by epoch (the
    last one when an epoch appears twice), in order; an epoch missing from the file but in
    ``logged`` (the backup's copy of the epoch logs) is filled in from there.

    Args:
        history_csv: the CSVLogger file (nothing happens when it is absent).
        epoch: the first epoch the next ``fit`` trains (the backup's epoch; 0 without one).
        logged: dicts ``{"epoch": e, **logs}`` saved with the backup.

    Returns:
        The number of rows dropped.
    """
    path = Path(history_csv)
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    by_epoch = {}
    for row in rows:
        e = _history_epoch(row)
        if e is not None and 0 <= e < epoch:
            by_epoch[e] = row
    if fields:
        for entry in logged:
            e = entry.get("epoch")
            if isinstance(e, int) and 0 <= e < epoch and e not in by_epoch:
                by_epoch[e] = {k: ("NA" if entry.get(k) is None else entry[k]) for k in fields}
    kept = [by_epoch[e] for e in sorted(by_epoch)]
    dropped = len(rows) - len([r for r in rows if _history_epoch(r) in by_epoch])
    if kept == rows:
        return 0
    if not kept:
        path.unlink()
    else:
        import io

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(path, text.getvalue())
    if dropped:
        _log.warning(
            "%s: dropped %d row(s) of epochs >= %d, which the backup does not hold (they are "
            "trained again)",
            path,
            dropped,
            epoch,
        )
    return dropped


class RunBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose backup is never half-written, with the callbacks' state.

    Keras's callback writes ``latest.weights.h5`` over the previous one, then the epoch in a
    second file: a kill between the two, or in the middle of the first, leaves weights and
    epoch that disagree, or no usable backup. Here each backup is a new weights file
    (``epoch-<n>.weights.h5``, model + optimizer) and ``state.json``, written atomically last,
    is the commit: it names the weights, the next epoch, the state of the ``stateful``
    callbacks (``get_state`` / ``set_state``, e.g. ``BudgetLRSchedule``) and every epoch's
    logs. A kill at any instant leaves the previous backup whole.

    Restoring happens in ``on_train_begin``, so this callback goes first in the list. Saving
    happens in ``saver``, a second callback that goes last, after the loggers and
    checkpoints: an epoch is in the backup only once it is in history.csv and the
    checkpoints (``repair_history`` removes an epoch logged but not backed up). The folder is
    deleted when ``fit`` ends normally. A backup written by Keras's own
    ``BackupAndRestore`` (``training_metadata.json``) is still restored.

    Args:
        backup_dir: the folder (``RunDir.backup``), used by nothing else.
        stateful: ``{name: callback}`` whose ``get_state()`` is saved and ``set_state()``
            restored.
        live_weights: callbacks with a ``live_weights()`` context (``WeightEMA``): the
            backup is saved inside it, with the training weights rather than the averaged.
        delete_checkpoint: delete the folder when training ends.
    """

    STATE_FILE = "state.json"

    def __init__(
        self, backup_dir, *, stateful=None, live_weights=(), delete_checkpoint: bool = True
    ):
        super().__init__(str(backup_dir), delete_checkpoint=delete_checkpoint)
        self.stateful = dict(stateful or {})
        self.live_weights = list(live_weights)
        self.saver = _BackupSaver(self)
        self.restored_epoch = 0
        self._history: list[dict] = []

    @property
    def _dir(self) -> Path:
        return Path(self.backup_dir)

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        state = read_backup_state(self._dir)
        self._history = []
        self.restored_epoch = 0
        if state is None:
            super()._load_model()  # a backup in Keras's own format, if any
            self.restored_epoch = int(getattr(self.model, "_initial_epoch", None) or 0)
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(self._dir / state["weights"]))
        self.model._initial_epoch = state["epoch"]
        self.restored_epoch = state["epoch"]
        self._history = list(state.get("history", []))
        for name, callback in self.stateful.items():
            saved = state.get("callbacks", {}).get(name)
            if saved is not None:
                callback.set_state(saved)

    def on_epoch_end(self, epoch, logs=None):
        """Nothing: ``saver`` (last in the list) saves after the loggers and checkpoints."""

    def save(self, epoch: int, logs=None) -> None:
        """Back up the state at the end of ``epoch`` (called by ``saver``)."""
        self._current_epoch = epoch + 1
        folder = self._dir
        weights = f"epoch-{epoch + 1:05d}.weights.h5"
        entry = {"epoch": epoch, **json_safe(dict(logs or {}))}
        history = [h for h in self._history if h.get("epoch") != epoch] + [entry]
        state = {
            "format": 1,
            "epoch": epoch + 1,
            "weights": weights,
            "callbacks": {name: cb.get_state() for name, cb in self.stateful.items()},
            "history": history,
        }
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with contextlib.ExitStack() as stack:
                for callback in self.live_weights:
                    stack.enter_context(callback.live_weights())
                self.model.save_weights(str(folder / weights), overwrite=True)
            _fsync(folder / weights)
            write_json(folder / self.STATE_FILE, state)  # the commit
        except OSError as error:
            raise TrainingError(
                f"could not write the backup {folder / weights} at the end of epoch {epoch} "
                f"({error.strerror or error}); the previous backup is kept. Free disk space "
                "and run again with the same --name to resume"
            ) from error
        self._history = history
        for old in folder.iterdir():  # earlier backups, and Keras's own format
            if old.name != weights and (
                old.name.startswith("epoch-")
                or old.name.startswith("latest.weights.h5")
                or old.name.startswith("training_metadata.json")
            ):
                old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and self._dir.exists():
            shutil.rmtree(self._dir, ignore_errors=True)


class _BackupSaver(keras.callbacks.Callback):
    """The saving half of ``RunBackup`` (last in the callback list)."""

    def __init__(self, backup: RunBackup):
        super().__init__()
        self.backup = backup

    def on_epoch_end(self, epoch, logs=None):
        self.backup.save(epoch, logs)


def _fsync(path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class SafeModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that never leaves a broken file where the last good one was.

    The model is saved under a temporary name in the same folder and renamed over the
    checkpoint (``os.replace``), so a failed write (a full disk, a kill) keeps the previous
    checkpoint whole. An ``OSError`` while saving ends training with a ``TrainingError``
    naming the checkpoint (one ``error:`` line through ``run_cli``). Same arguments as
    ``keras.callbacks.ModelCheckpoint``.
    """

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        path = Path(filepath)
        suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
        stem = path.name[: len(path.name) - len(suffix)]
        tmp = path.with_name(f".{stem}.tmp-{os.getpid()}{suffix}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.save_weights_only:
                self.model.save_weights(str(tmp), overwrite=True)
            else:
                self.model.save(str(tmp), overwrite=True)
            _fsync(tmp)
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            kept = "the previous one is kept" if path.exists() else "there is no earlier one"
            raise TrainingError(
                f"could not write the checkpoint {path} at epoch {epoch} "
                f"({error.strerror or error}); {kept}. Free disk space (or fix the folder) "
                "and run again with the same --name to resume from the last completed epoch"
            ) from error
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {path}", flush=True)


# --- factory -------------------------------------------------------------------------------------

_MAX_TOKENS = {
    "acc",
    "accuracy",
    "auc",
    "map",
    "map50",
    "map75",
    "precision",
    "recall",
    "f1",
    "top1",
    "top5",
}


class WeightEMA(keras.callbacks.Callback):
    """Exponential moving average of the model's weights, used for validation and at the end.

    After every training step, ``shadow = d * shadow + (1 - d) * weight`` for every float weight
    of the model, the BatchNorm moving statistics included (Keras's ``use_ema`` optimizer
    option averages the trainable weights only, so its BatchNorm statistics belong to other
    weights). ``d = decay * (1 - exp(-step / warmup_steps))`` ramps up so that the first steps'
    random weights fade out fast (the YOLOv5 / timm ``ModelEMA`` rule).

    The averaged weights are swapped in for validation and stay in from the end of an epoch
    (so metrics callbacks, loggers and checkpoints after this one in the list see them) until
    the next epoch's training starts; they are in the model when ``fit`` returns. A run resumed
    by ``BackupAndRestore`` restarts the average from the restored weights.

    Args:
        decay: the final decay (0.998: an average over about the last 500 steps).
        warmup_steps: the ramp's time constant in steps.

    Example:
        >>> model.fit(ds, epochs=10, callbacks=[WeightEMA(0.998)])  # doctest: +SKIP
    """

    def __init__(self, decay: float = 0.998, warmup_steps: int = 500):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1). Received: decay={decay}")
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1. Received: warmup_steps={warmup_steps}")
        self.decay = float(decay)
        self.warmup_steps = int(warmup_steps)
        self._shadow = None
        self._swapped = False

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        weights = [w for w in self.model.weights if "float" in str(w.dtype)]
        self._weights = weights
        self._shadow = [tf.Variable(w.value, trainable=False) for w in weights]
        self._updates = tf.Variable(0.0, trainable=False)

        @tf.function
        def update():
            self._updates.assign_add(1.0)
            d = self.decay * (1.0 - tf.exp(-self._updates / float(self.warmup_steps)))
            for shadow, w in zip(self._shadow, self._weights, strict=True):
                shadow.assign(d * shadow + (1.0 - d) * tf.cast(w.value, shadow.dtype))

        @tf.function
        def swap():
            for shadow, w in zip(self._shadow, self._weights, strict=True):
                live = tf.identity(w.value)
                w.assign(shadow)
                shadow.assign(live)

        self._update, self._swap = update, swap
        self._swapped = False

    def _set(self, averaged: bool):
        if self._shadow is not None and self._swapped != averaged:
            self._swap()
            self._swapped = averaged

    @contextlib.contextmanager
    def live_weights(self):
        """The training (not averaged) weights in the model inside the block; ``RunBackup``
        backs those up, so a resumed run trains on from them."""
        averaged = self._swapped
        self._set(False)
        try:
            yield
        finally:
            self._set(averaged)

    def on_train_batch_end(self, batch, logs=None):
        if self._shadow is not None and not self._swapped:
            self._update()

    def on_epoch_begin(self, epoch, logs=None):
        self._set(False)

    def on_test_begin(self, logs=None):
        self._set(True)

    def on_epoch_end(self, epoch, logs=None):
        self._set(True)

    def on_train_end(self, logs=None):
        self._set(True)


def resolve_monitor_mode(monitor: str, mode: str = "auto") -> str:
    """``"min"`` or ``"max"`` for ``monitor``: ``mode`` unless it is ``"auto"``.

    Auto: names containing ``loss``, ``error`` or ``nme`` are minimised; names with a token
    (split on ``_``) such as ``acc``, ``auc``, ``map``, ``map50``, ``recall``, ``precision``,
    ``f1`` are maximised; anything else is minimised.
    """
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    name = monitor.lower()
    if any(word in name for word in ("loss", "error", "nme")):
        return "min"
    return "max" if _MAX_TOKENS & set(name.split("_")) else "min"


class HistoryCSVLogger(keras.callbacks.CSVLogger):
    """``CSVLogger`` that leaves a cell empty where a value is NaN or inf (undefined, e.g. a
    mAP with no detections), so csv readers and spreadsheets see a missing value, not ``nan``."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, {key: _finite_or_empty(v) for key, v in (logs or {}).items()})


def _finite_or_empty(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return value if math.isfinite(number) else ""


def best_logged_value(history_csv, monitor: str, mode: str) -> float | None:
    """Best value of ``monitor`` in a CSVLogger file (None if absent or empty).

    Used on resume so ``ModelCheckpoint(save_best_only=True)`` doesn't overwrite the best
    checkpoint with a worse model in the first epoch after the restart.
    """
    try:
        with open(history_csv, newline="") as f:
            values = [
                float(row[monitor])
                for row in csv.DictReader(f)
                if row.get(monitor) not in (None, "")
            ]
    except (OSError, ValueError, KeyError):
        return None
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (which ``tf.summary`` needs to write) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def make_callbacks(
    run,
    *,
    monitor: str = "val_loss",
    mode: str = "auto",
    time_budget: float | None = None,
    lr_schedule: bool = True,
    base_lr: float | None = None,
    warmup: float = 0.0,
    min_lr_ratio: float = 0.0,
    extra=(),
    backup: bool = True,
    tensorboard: bool | None = None,
    weights_only: bool = False,
    clock: Callable[[], float] = time.monotonic,
    verbose: int = 1,
) -> list:
    """The standard callback list for a run directory.

    Order (each entry sees what the ones before it wrote into ``logs``)::

        RunBackup          first: restores weights, optimizer, epoch and callback state
        StopOnNaN          a NaN/inf loss ends the run before its epoch end saves anything
        BudgetLRSchedule   (lr_schedule) writes ``learning_rate`` into the epoch logs
        TimeBudget         (time_budget) counts the time of earlier attempts too
        *extra             e.g. a metrics callback that adds ``val_map`` to ``logs``
        CSVLogger          history.csv (appends on resume)
        TensorBoard        logs/
        SafeModelCheckpoint  checkpoints/best.keras (monitor, save_best_only)
        SafeModelCheckpoint  checkpoints/last.keras (every epoch)
        RunBackup.saver    last: an epoch is backed up once it is logged and checkpointed

    Keras passes one ``logs`` dict through the list in order, so ``extra`` callbacks that add
    metrics must come before the loggers and checkpoints, which is where they go here.

    A run killed at any instant and started again resumes from its last backed-up epoch:
    ``history.csv`` is cut back to the epochs the backup holds (``repair_history``; each epoch
    appears once), the LR schedule and the time budget continue, and the checkpoints are the
    last ones written whole (``SafeModelCheckpoint``).

    Args:
        run: a ``RunDir`` (see ``create_run_dir``).
        monitor: the value that picks the best checkpoint (``"val_loss"``, ``"val_map"``...).
            Use ``"loss"`` when there is no validation data.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (see ``resolve_monitor_mode``).
        time_budget: minutes of wall clock (``--time-budget``), or None.
        lr_schedule: add ``BudgetLRSchedule`` (warmup + cosine over epochs and budget).
        base_lr, warmup, min_lr_ratio: passed to ``BudgetLRSchedule``.
        extra: more callbacks, inserted before the loggers and checkpoints. With a time budget,
            those with a ``time_fraction`` attribute set to None (``CloseMosaic``) get the
            budget's ``progress``.
        backup: add ``RunBackup`` (needs a built model).
        tensorboard: add ``TensorBoard``. ``None`` (default): add it when the
            ``tensorboard`` package is installed, else log a warning and skip it (TF's
            ``tf.summary`` can't write without it). ``True`` requires the package.
        weights_only: checkpoints as ``best.weights.h5`` / ``last.weights.h5`` instead of
            ``.keras`` (for models whose config can't be serialized).
        clock: clock for ``TimeBudget`` (tests inject a fake one).
        verbose: print messages from ``TimeBudget`` and ``ModelCheckpoint``.

    Returns:
        A list of callbacks for ``model.fit(callbacks=...)``.
    """
    mode = resolve_monitor_mode(monitor, mode)
    run.path.mkdir(parents=True, exist_ok=True)
    callbacks = []
    restore = None
    if backup:
        restore = RunBackup(run.backup)
        callbacks.append(restore)
        state = read_backup_state(run.backup)
        start = 0 if state is None else state["epoch"]
        repair_history(run.history_csv, start, () if state is None else state.get("history", ()))
    callbacks.append(StopOnNaN(run.checkpoints))
    budget = None
    if time_budget is not None:
        budget = TimeBudget(
            time_budget,
            clock=clock,
            verbose=verbose,
            state_file=None if restore is None else run.backup / "time_budget.json",
        )
    if lr_schedule:
        schedule = BudgetLRSchedule(
            base_lr,
            warmup=warmup,
            min_lr_ratio=min_lr_ratio,
            time_fraction=None if budget is None else budget.progress,
        )
        callbacks.append(schedule)
        if restore is not None:
            restore.stateful["lr_schedule"] = schedule
    if budget is not None:
        callbacks.append(budget)
        for callback in extra:
            # callbacks that follow the budget without a clock of their own (CloseMosaic) read
            # this one's, which counts earlier attempts of a resumed run
            if hasattr(callback, "time_fraction") and callback.time_fraction is None:
                callback.time_fraction = budget.progress
    callbacks.extend(extra)
    if restore is not None:
        restore.live_weights = [cb for cb in extra if hasattr(cb, "live_weights")]
    callbacks.append(HistoryCSVLogger(str(run.history_csv), append=True))
    if tensorboard is None:
        tensorboard = tensorboard_available()
        if not tensorboard:
            _log.warning(
                "The 'tensorboard' package is not installed: no TensorBoard logs in %s "
                "(pip install tensorboard).",
                run.logs,
            )
    elif tensorboard and not tensorboard_available():
        raise ImportError(
            "make_callbacks(tensorboard=True) needs the 'tensorboard' package "
            "(pip install tensorboard), which tf.summary uses to write logs."
        )
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False))
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if weights_only else ".keras"
    best = best_logged_value(run.history_csv, monitor, mode) if run.history_csv.is_file() else None
    callbacks.append(
        SafeModelCheckpoint(
            str(run.checkpoints / f"best{suffix}"),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=weights_only,
            initial_value_threshold=best,
            verbose=verbose,
        )
    )
    callbacks.append(
        SafeModelCheckpoint(
            str(run.checkpoints / f"last{suffix}"),
            save_best_only=False,
            save_weights_only=weights_only,
        )
    )
    if restore is not None:
        callbacks.append(restore.saver)
    return callbacks
