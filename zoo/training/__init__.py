"""zoo.training: the recipe spine (flags, run directory, callbacks, tf.distribute strategy).

Every piece is usable on its own; ``train`` strings them together for recipes::

    parser = build_parser("Train YOLO on VOC.", defaults={"epochs": 30, "image_size": 448})
    args = parse_flags(parser)
    strategy = configure(args)                        # strategy, seed, mixed precision
    with strategy.scope():                            # the caller owns the scope
        model = build_model(...)
        model.compile(optimizer, loss, **compile_options(args))
    result = train(model, train_ds, args, recipe="yolo", validation_data=val_ds)
    write_json(result.run.path / "metrics.json", metrics)  # NaN -> null, atomic

A run killed at any point resumes from its last completed epoch when started again with the
same ``--name``; a second process with that name is refused while the first one trains.
"""

from zoo.training.batchnorm import recalibrate_batchnorm
from zoo.training.callbacks import (
    BudgetLRSchedule,
    RunBackup,
    SafeModelCheckpoint,
    StopOnNaN,
    TimeBudget,
    WeightEMA,
    best_logged_value,
    make_callbacks,
    read_backup_state,
    repair_history,
    resolve_monitor_mode,
    tensorboard_available,
    warmup_cosine,
)
from zoo.training.errors import TrainingError
from zoo.training.flags import (
    COMMON_DEFAULTS,
    SMOKE_OVERRIDES,
    STRATEGIES,
    add_common_flags,
    build_parser,
    compile_options,
    parse_flags,
    resolve_verbose,
)
from zoo.training.probes import fine_tune, knn_probe, label_fraction, linear_probe, probe_encoder
from zoo.training.run_dir import (
    RunDir,
    RunLock,
    create_run_dir,
    default_run_name,
    json_safe,
    latest_run,
    load_run_config,
    write_json,
)
from zoo.training.strategy import (
    StrategyError,
    distribute_dataset,
    get_strategy,
    global_batch_size,
    is_chief,
    parse_tf_config,
    set_mixed_precision,
    worker_index,
)
from zoo.training.train import TrainResult, configure, train

__all__ = [
    "fine_tune",
    "knn_probe",
    "label_fraction",
    "linear_probe",
    "probe_encoder",
    "recalibrate_batchnorm",
    "BudgetLRSchedule",
    "COMMON_DEFAULTS",
    "RunBackup",
    "RunDir",
    "RunLock",
    "SafeModelCheckpoint",
    "StopOnNaN",
    "TrainingError",
    "SMOKE_OVERRIDES",
    "STRATEGIES",
    "StrategyError",
    "TimeBudget",
    "WeightEMA",
    "TrainResult",
    "add_common_flags",
    "best_logged_value",
    "build_parser",
    "compile_options",
    "configure",
    "create_run_dir",
    "default_run_name",
    "distribute_dataset",
    "get_strategy",
    "global_batch_size",
    "is_chief",
    "json_safe",
    "latest_run",
    "load_run_config",
    "make_callbacks",
    "parse_flags",
    "parse_tf_config",
    "read_backup_state",
    "repair_history",
    "resolve_monitor_mode",
    "resolve_verbose",
    "set_mixed_precision",
    "tensorboard_available",
    "train",
    "warmup_cosine",
    "worker_index",
    "write_json",
]
