"""zoo.training: the recipe spine (flags, run directory, callbacks, tf.distribute strategy).

Every piece is usable on its own; ``train`` strings them together for recipes::

    parser = build_parser("Train YOLO on VOC.", defaults={"epochs": 30, "image_size": 448})
    args = parse_flags(parser)
    strategy = configure(args)                        # strategy, seed, mixed precision
    with strategy.scope():                            # the caller owns the scope
        model = build_model(...)
        model.compile(optimizer, loss, **compile_options(args))
    result = train(model, train_ds, args, recipe="yolo", validation_data=val_ds)
"""

from zoo.training.batchnorm import recalibrate_batchnorm
from zoo.training.callbacks import (
    BudgetLRSchedule,
    TimeBudget,
    WeightEMA,
    best_logged_value,
    make_callbacks,
    resolve_monitor_mode,
    tensorboard_available,
    warmup_cosine,
)
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
    create_run_dir,
    default_run_name,
    latest_run,
    load_run_config,
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
    "RunDir",
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
    "latest_run",
    "load_run_config",
    "make_callbacks",
    "parse_flags",
    "parse_tf_config",
    "resolve_monitor_mode",
    "resolve_verbose",
    "set_mixed_precision",
    "tensorboard_available",
    "train",
    "warmup_cosine",
    "worker_index",
]
