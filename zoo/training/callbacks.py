"""Callbacks of the recipe spine: time budget, budget-aware LR schedule and the factory.

``make_callbacks`` returns, in this order (the order matters, see its docstring)::

    BackupAndRestore, TerminateOnNaN, BudgetLRSchedule, TimeBudget, *extra,
    CSVLogger, TensorBoard, ModelCheckpoint(best), ModelCheckpoint(last)

Example:
    >>> run = create_run_dir("runs", "demo")                           # doctest: +SKIP
    >>> callbacks = make_callbacks(run, monitor="val_loss", time_budget=30)  # doctest: +SKIP
    >>> model.fit(train, validation_data=val, epochs=10, callbacks=callbacks)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import time
from collections.abc import Callable

import keras

_log = logging.getLogger(__name__)

__all__ = [
    "tensorboard_available",
    "warmup_cosine",
    "BudgetLRSchedule",
    "TimeBudget",
    "WeightEMA",
    "make_callbacks",
    "resolve_monitor_mode",
    "best_logged_value",
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

    Attributes:
        stopped_early: True once the budget stopped training.
        stop_reason: human-readable reason (or None).

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
        self._reset()

    def _reset(self):
        self._start = None
        self._step_times: list[float] = []
        self._batch_start = None
        self._last_batch_end = None
        self._overhead = 0.0
        self.stopped_early = False
        self.stop_reason = None

    # --- estimates ---
    def elapsed(self) -> float:
        """Seconds since training began (0 before)."""
        return 0.0 if self._start is None else self.clock() - self._start

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
        self._start = self.clock()

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
        projected = (now - self._start) + self.step_time() + self._overhead
        if projected > self.budget_s:
            self._stop(f"batch {batch}", now, projected)

    def on_epoch_end(self, epoch, logs=None):
        if self._last_batch_end is None or self.model.stop_training:
            return
        now = self.clock()
        left_this_epoch = max(0.0, self._overhead - (now - self._last_batch_end))
        projected = (now - self._start) + left_this_epoch + self.step_time() + self._overhead
        if projected > self.budget_s:
            self._stop(f"end of epoch {epoch}", now, projected)

    def _stop(self, where, now, projected):
        self.model.stop_training = True
        if self.stopped_early:
            return
        self.stopped_early = True
        self.stop_reason = (
            f"time budget {self.minutes:g} min: stopping at {where} after "
            f"{now - self._start:.1f} s; one more step would end at ~{projected:.1f} s "
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
    in an epoch's last step is written to the epoch logs as ``learning_rate``.

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

        BackupAndRestore   first: restores weights and epoch before anything else starts
        TerminateOnNaN
        BudgetLRSchedule   (lr_schedule) writes ``learning_rate`` into the epoch logs
        TimeBudget         (time_budget)
        *extra             e.g. a metrics callback that adds ``val_map`` to ``logs``
        CSVLogger          history.csv (appends on resume)
        TensorBoard        logs/
        ModelCheckpoint    checkpoints/best.keras (monitor, save_best_only)
        ModelCheckpoint    checkpoints/last.keras (every epoch)

    Keras passes one ``logs`` dict through the list in order, so ``extra`` callbacks that add
    metrics must come before the loggers and checkpoints, which is where they go here.

    Args:
        run: a ``RunDir`` (see ``create_run_dir``).
        monitor: the value that picks the best checkpoint (``"val_loss"``, ``"val_map"``...).
            Use ``"loss"`` when there is no validation data.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (see ``resolve_monitor_mode``).
        time_budget: minutes of wall clock (``--time-budget``), or None.
        lr_schedule: add ``BudgetLRSchedule`` (warmup + cosine over epochs and budget).
        base_lr, warmup, min_lr_ratio: passed to ``BudgetLRSchedule``.
        extra: more callbacks, inserted before the loggers and checkpoints.
        backup: add ``BackupAndRestore`` (needs a built model).
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
    callbacks = []
    if backup:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir=str(run.backup)))
    callbacks.append(keras.callbacks.TerminateOnNaN())
    budget = None
    if time_budget is not None:
        budget = TimeBudget(time_budget, clock=clock, verbose=verbose)
    if lr_schedule:
        callbacks.append(
            BudgetLRSchedule(
                base_lr,
                warmup=warmup,
                min_lr_ratio=min_lr_ratio,
                time_fraction=None if budget is None else budget.progress,
            )
        )
    if budget is not None:
        callbacks.append(budget)
    callbacks.extend(extra)
    run.path.mkdir(parents=True, exist_ok=True)
    callbacks.append(keras.callbacks.CSVLogger(str(run.history_csv), append=True))
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
        keras.callbacks.ModelCheckpoint(
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
        keras.callbacks.ModelCheckpoint(
            str(run.checkpoints / f"last{suffix}"),
            save_best_only=False,
            save_weights_only=weights_only,
        )
    )
    return callbacks
