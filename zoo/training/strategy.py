"""tf.distribute strategies, batch-size scaling and distribution-friendly datasets.

The caller owns the strategy scope: build and compile the model inside
``with strategy.scope():``, then call ``zoo.training.train`` (or ``model.fit``) outside it.

Example:
    >>> strategy = get_strategy("mirrored")
    >>> batch = global_batch_size(32, strategy)      # 32 per replica
    >>> dataset = distribute_dataset(dataset)          # auto-shard by DATA  # doctest: +SKIP
    >>> with strategy.scope():                          # doctest: +SKIP
    ...     model = build_model(...); model.compile(...)
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

__all__ = [
    "StrategyError",
    "parse_tf_config",
    "get_strategy",
    "is_chief",
    "worker_index",
    "global_batch_size",
    "distribute_dataset",
    "set_mixed_precision",
]

_log = logging.getLogger(__name__)


class StrategyError(ValueError):
    """A strategy can't be built from the given name / TF_CONFIG."""


_TF_CONFIG_HELP = (
    'TF_CONFIG must be a JSON object like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def parse_tf_config(raw: str | dict | None = None) -> dict:
    """Read and check a TF_CONFIG (``raw``, or the ``TF_CONFIG`` environment variable).

    Args:
        raw: JSON text or an already-parsed dict; ``None`` reads ``os.environ["TF_CONFIG"]``.

    Returns:
        The parsed dict, with ``cluster`` (job name -> list of "host:port") and ``task``
        (``type`` naming a cluster job, ``index`` within that job).

    Raises:
        StrategyError: TF_CONFIG missing, not JSON, or inconsistent; the message echoes it.
    """
    source = "TF_CONFIG"
    if raw is None:
        raw = os.environ.get("TF_CONFIG")
        if raw is None or not raw.strip():
            raise StrategyError(
                "--strategy multi_worker needs the TF_CONFIG environment variable, which is "
                f"not set (TF_CONFIG={raw!r}). {_TF_CONFIG_HELP}"
            )
    if isinstance(raw, dict):
        config, text = raw, json.dumps(raw)
    else:
        text = str(raw)
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise StrategyError(
                f"{source} is not valid JSON ({error}). Received: {text!r}"
            ) from None

    def fail(why):
        raise StrategyError(f"{source}: {why}. Received: {text!r}. {_TF_CONFIG_HELP}")

    if not isinstance(config, dict):
        fail("must be a JSON object")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        fail("'cluster' must be a non-empty object of job name -> list of 'host:port'")
    for job, addresses in cluster.items():
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and ":" in a for a in addresses)
        ):
            fail(f"cluster[{job!r}] must be a non-empty list of 'host:port' strings")
    if "worker" not in cluster and "chief" not in cluster:
        fail("'cluster' needs a 'worker' (or 'chief') job")
    task = config.get("task")
    if not isinstance(task, dict):
        fail("'task' must be an object with 'type' and 'index'")
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in cluster:
        fail(f"task.type={task_type!r} is not a job of the cluster {sorted(cluster)}")
    if (
        isinstance(index, bool)
        or not isinstance(index, int)
        or not 0 <= index < len(cluster[task_type])
    ):
        fail(f"task.index={index!r} is not in [0, {len(cluster[task_type])})")
    return config


def is_chief(tf_config: str | dict | None = None) -> bool:
    """True on the worker that writes checkpoints and logs.

    Without TF_CONFIG (single process) this is True. In a cluster the chief is task ``chief``,
    or ``worker`` 0 when the cluster has no ``chief`` job.
    """
    if tf_config is None and not os.environ.get("TF_CONFIG"):
        return True
    config = parse_tf_config(tf_config)
    task_type, index = config["task"]["type"], config["task"].get("index", 0)
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in config["cluster"]


def worker_index(tf_config: str | dict | None = None) -> int:
    """This task's index from TF_CONFIG (0 without TF_CONFIG)."""
    if tf_config is None and not os.environ.get("TF_CONFIG"):
        return 0
    return int(parse_tf_config(tf_config)["task"].get("index", 0))


class _KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy with ``reduce`` fixed for Keras 3's ``fit``.

    Keras 3 (checked with 3.15 / TF 2.21; keras-team/keras#20585) calls
    ``strategy.reduce("MEAN", batch, axis=None)`` on a whole ``(x, y)`` structure and
    ``strategy.reduce("MEAN", loss, axis=0)`` on scalar losses; the collective implementation
    accepts neither. This subclass reduces structures leaf by leaf and treats ``axis`` on a
    scalar as ``None``; everything else is the stock strategy.
    """

    def reduce(self, reduce_op, value, axis=None):
        if isinstance(value, (tuple, list, dict)):
            import keras

            return keras.tree.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        if axis is not None:
            local = self.experimental_local_results(value)[0]
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                axis = None
        return super().reduce(reduce_op, value, axis)


def get_strategy(name: str = "default", *, tf_config: str | dict | None = None):
    """Build a ``tf.distribute.Strategy`` from the ``--strategy`` flag.

    Args:
        name: ``"default"`` (the default strategy, one device), ``"mirrored"``
            (``MirroredStrategy`` over the local GPUs, or the CPU when there are none) or
            ``"multi_worker"`` (``MultiWorkerMirroredStrategy``; cluster from TF_CONFIG).
        tf_config: TF_CONFIG to use instead of the environment variable (JSON text or dict).

    Returns:
        The strategy. For ``multi_worker`` it must be created at program start-up, before
        other TensorFlow ops run (a TensorFlow rule for collective ops).

    Raises:
        StrategyError: unknown name, or TF_CONFIG missing/malformed (echoed in the message).

    Example:
        >>> get_strategy("default").num_replicas_in_sync
        1
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        config = parse_tf_config(tf_config)
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(config["cluster"]),
            task_type=config["task"]["type"],
            task_id=int(config["task"].get("index", 0)),
            rpc_layer=config.get("rpc_layer", "grpc"),
        )
        return _KerasMultiWorkerMirroredStrategy(cluster_resolver=resolver)
    raise StrategyError(
        f"Unknown strategy. Expected one of ('default', 'mirrored', 'multi_worker'). "
        f"Received: name={name!r}"
    )


def global_batch_size(per_replica_batch_size: int, strategy=None) -> int:
    """Global batch size = per-replica batch size x replicas in sync.

    Args:
        per_replica_batch_size: ``--batch-size``.
        strategy: the strategy (default: the current one).

    Returns:
        The batch size to ``batch()`` the dataset with before ``fit``.
    """
    if isinstance(per_replica_batch_size, bool) or not isinstance(per_replica_batch_size, int):
        raise ValueError(
            f"per_replica_batch_size must be an int >= 1. Received: {per_replica_batch_size!r}"
        )
    if per_replica_batch_size < 1:
        raise ValueError(
            f"per_replica_batch_size must be an int >= 1. Received: {per_replica_batch_size!r}"
        )
    strategy = strategy or tf.distribute.get_strategy()
    return per_replica_batch_size * int(strategy.num_replicas_in_sync)


_SHARD_POLICIES = {
    "auto": tf.data.experimental.AutoShardPolicy.AUTO,
    "data": tf.data.experimental.AutoShardPolicy.DATA,
    "file": tf.data.experimental.AutoShardPolicy.FILE,
    "hint": tf.data.experimental.AutoShardPolicy.HINT,
    "off": tf.data.experimental.AutoShardPolicy.OFF,
}


def distribute_dataset(dataset: tf.data.Dataset, policy="data") -> tf.data.Dataset:
    """Set the auto-shard policy that multi-worker training uses for ``dataset``.

    ``"data"`` (the default) suits synthetic and in-memory datasets: every worker builds the
    whole dataset and keeps its share of the elements (the ``"auto"`` policy would try to
    shard by files and warn when there are none). Use ``"file"`` for large file-based
    datasets with at least as many files as workers.

    Args:
        dataset: a ``tf.data.Dataset`` (batched with the global batch size).
        policy: ``"data"``, ``"file"``, ``"auto"``, ``"hint"``, ``"off"`` or an
            ``AutoShardPolicy``.

    Returns:
        The dataset with the options set.
    """
    if isinstance(policy, str):
        if policy.lower() not in _SHARD_POLICIES:
            raise ValueError(
                f"Unknown auto-shard policy. Expected one of {sorted(_SHARD_POLICIES)}. "
                f"Received: policy={policy!r}"
            )
        policy = _SHARD_POLICIES[policy.lower()]
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def set_mixed_precision(enabled: bool, *, gpu: bool | None = None) -> str:
    """Set Keras's global dtype policy for ``--mixed-precision``.

    On GPU this is ``"mixed_float16"`` (Keras wraps the optimizer in a LossScaleOptimizer at
    compile time). On CPU it is ``"mixed_bfloat16"``: bfloat16 keeps float32's exponent range,
    needs no loss scaling, and runs fast on CPUs with AVX512-BF16/AMX (float16 on CPU is
    emulated and slower than float32).

    Args:
        enabled: the flag; False restores ``"float32"``.
        gpu: whether a GPU is used (default: whether TensorFlow sees one).

    Returns:
        The policy name that is now global.
    """
    import keras

    if not enabled:
        policy = "float32"
    else:
        if gpu is None:
            gpu = bool(tf.config.list_physical_devices("GPU"))
        policy = "mixed_float16" if gpu else "mixed_bfloat16"
        if not gpu:
            _log.info("--mixed-precision on CPU: using mixed_bfloat16 (float16 is slow on CPU).")
    keras.mixed_precision.set_global_policy(policy)
    return policy
