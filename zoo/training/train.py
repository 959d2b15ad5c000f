"""``train``: the convenience recipes call, and ``configure`` for the process-wide flags.

``train`` creates the run directory (checked writable, and locked against a second process
with the same ``--output``/``--name`` for as long as it trains), builds the callbacks and calls
``model.fit``; nothing else. A run killed at any point and started again with the same
``--name`` resumes from its last completed epoch (see ``make_callbacks``). It compiles nothing (models and losses come from the families) and does not enter a
strategy scope: the caller builds and compiles the model inside ``strategy.scope()``. Every
piece it uses (``create_run_dir``, ``make_callbacks``, ``TimeBudget``...) works on its own.

Example:
    >>> parser = build_parser("Train a tiny model.", defaults={"epochs": 3})
    >>> args = parse_flags(parser, ["--output", "/tmp/runs", "--name", "demo"])
    >>> strategy = configure(args)                       # seed, precision, strategy
    >>> with strategy.scope():                             # doctest: +SKIP
    ...     model = build_model(); model.compile("adam", "mse", **compile_options(args))
    >>> result = train(model, dataset, args, recipe="demo")  # doctest: +SKIP
    >>> result.run.history_csv, result.history.history["loss"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import time
import types
from typing import NamedTuple

from zoo.training.callbacks import TimeBudget, make_callbacks
from zoo.training.flags import resolve_verbose
from zoo.training.run_dir import RunDir, create_run_dir
from zoo.training.strategy import get_strategy, is_chief, set_mixed_precision, worker_index

__all__ = ["TrainResult", "train", "configure"]

_log = logging.getLogger(__name__)


class TrainResult(NamedTuple):
    """What ``train`` returns: the Keras ``History``, the ``RunDir`` and the ``TimeBudget``
    callback (None without ``--time-budget``; ``.stopped_early`` says whether it stopped)."""

    history: object
    run: RunDir
    time_budget: TimeBudget | None = None


def configure(args):
    """Apply the process-wide flags and return the strategy.

    In order: build the strategy (``--strategy``; MultiWorkerMirroredStrategy must exist
    before other TF ops run), seed Python/NumPy/TF/Keras (``--seed``), set the dtype policy
    (``--mixed-precision``: mixed_float16 on GPU, mixed_bfloat16 on CPU).

    Args:
        args: parsed flags (``parse_flags``).

    Returns:
        The ``tf.distribute.Strategy``; build and compile the model inside its scope.
    """
    import keras

    strategy = get_strategy(getattr(args, "strategy", "default"))
    keras.utils.set_random_seed(int(getattr(args, "seed", 0)))
    set_mixed_precision(bool(getattr(args, "mixed_precision", False)))
    return strategy


def _flag(args, name, default=None):
    if isinstance(args, dict):
        return args.get(name, default)
    return getattr(args, name, default)


def _is_arrays(x) -> bool:
    """Whether ``fit`` can shuffle ``x``: arrays/tensors (or lists, tuples, dicts of them)
    and finite ``keras.utils.PyDataset``s; not a ``tf.data.Dataset`` or a generator."""
    import keras

    if isinstance(x, keras.utils.PyDataset):
        return getattr(x, "num_batches", None) is not None
    if isinstance(x, (list, tuple)):
        return bool(x) and all(_is_arrays(item) for item in x)
    if isinstance(x, dict):
        return bool(x) and all(_is_arrays(item) for item in x.values())
    if isinstance(x, types.GeneratorType) or hasattr(x, "element_spec"):
        return False
    return hasattr(x, "shape") and hasattr(x, "dtype")


def train(
    model,
    train_data,
    args,
    *,
    recipe: str = "run",
    validation_data=None,
    callbacks=(),
    config: dict | None = None,
    monitor: str | None = None,
    mode: str = "auto",
    lr_schedule: bool = True,
    base_lr: float | None = None,
    warmup: float = 0.0,
    min_lr_ratio: float = 0.0,
    tensorboard: bool | None = None,
    weights_only: bool = False,
    clock=time.monotonic,
    **fit_kwargs,
) -> TrainResult:
    """Create the run directory and fit ``model`` with the standard callbacks.

    Args:
        model: a built and compiled ``keras.Model`` (compiled in the strategy scope when a
            strategy is used). ``train`` never compiles.
        train_data: what ``model.fit`` takes as ``x`` (usually a batched ``tf.data.Dataset``).
        args: parsed flags (``argparse.Namespace`` or dict) with ``epochs``, ``output``,
            ``name``, ``resume``, ``time_budget``, ``steps_per_epoch``, ``verbose``,
            ``strategy``; missing ones take the common defaults.
        recipe: prefix of generated run names, and stored in config.json.
        validation_data: passed to ``fit``.
        callbacks: extra callbacks (e.g. a metrics callback writing ``val_map`` into
            ``logs``), inserted before CSVLogger/TensorBoard/ModelCheckpoint.
        config: extra JSON-able config for config.json (e.g. model hyperparameters).
        monitor: value picking the best checkpoint; default ``"val_loss"`` with validation
            data, else ``"loss"``.
        mode, lr_schedule, base_lr, warmup, min_lr_ratio, tensorboard, weights_only, clock:
            see ``make_callbacks``.
        **fit_kwargs: more ``model.fit`` arguments (``validation_freq``, ``class_weight``...).
            ``shuffle`` is passed only when ``train_data`` is arrays (Keras ignores it, with a
            warning, for a ``tf.data.Dataset``, which shuffles itself).

    Returns:
        ``TrainResult(history, run, time_budget)``.

    Raises:
        ValueError: the model is not compiled or not built.
        DataError: ``--output`` can't be created or written, or another process trains in
            the same run folder (before anything is trained).
        TrainingError: a NaN/inf loss, or a checkpoint or backup that could not be written
            (the last good ones are kept; the same ``--name`` resumes).
    """
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError(
            "train() does not compile: compile the model first (inside strategy.scope() when "
            f"using a strategy). Received an uncompiled model: {model.name!r}"
        )
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} is not built; build it first (keras.Input or "
            "model.build(shape)) so an interrupted run can be restored."
        )
    strategy_name = _flag(args, "strategy", "default")
    multi = strategy_name == "multi_worker"
    chief = is_chief() if multi else True
    index = worker_index() if multi else 0
    flags = dict(args) if isinstance(args, dict) else dict(vars(args))
    run = create_run_dir(
        _flag(args, "output", "runs"),
        _flag(args, "name"),
        config={"recipe": recipe, "flags": flags, "config": dict(config or {})},
        resume=bool(_flag(args, "resume", False)),
        prefix=recipe,
        chief=chief,
        worker_index=index,
        lock=chief,
    )
    try:
        time_budget = _flag(args, "time_budget")
        if multi and time_budget is not None:
            _log.warning(
                "--time-budget with multi_worker: each worker stops by its own clock; if they "
                "disagree on the last step the collective ops hang. Prefer --epochs."
            )
        if monitor is None:
            monitor = "val_loss" if validation_data is not None else "loss"
        verbose = resolve_verbose(_flag(args, "verbose", "auto"))
        cbs = make_callbacks(
            run,
            monitor=monitor,
            mode=mode,
            time_budget=time_budget,
            lr_schedule=lr_schedule,
            base_lr=base_lr,
            warmup=warmup,
            min_lr_ratio=min_lr_ratio,
            extra=list(callbacks),
            tensorboard=tensorboard,
            weights_only=weights_only,
            clock=clock,
            verbose=1 if verbose else 0,
        )
        budget = next((cb for cb in cbs if isinstance(cb, TimeBudget)), None)
        fit_kwargs.setdefault("steps_per_epoch", _flag(args, "steps_per_epoch"))
        if "shuffle" not in fit_kwargs and not _is_arrays(train_data):
            fit_kwargs["shuffle"] = False  # a dataset shuffles itself; Keras warns otherwise
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=int(_flag(args, "epochs", 10)),
            callbacks=cbs,
            verbose=verbose,
            **fit_kwargs,
        )
        if not run.chief:  # the non-chief's checkpoints/logs were throw-away copies
            shutil.rmtree(run.path.parent, ignore_errors=True)
    finally:
        run.release()  # the OS releases it too if the process dies
    return TrainResult(history=history, run=run, time_budget=budget)
