"""Strategy selection, TF_CONFIG errors, batch scaling, sharding options, mixed precision."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.training import (
    StrategyError,
    build_parser,
    configure,
    distribute_dataset,
    get_strategy,
    global_batch_size,
    is_chief,
    parse_flags,
    parse_tf_config,
    set_mixed_precision,
    worker_index,
)

GOOD = {
    "cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
    "task": {"type": "worker", "index": 1},
}


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_default_and_mirrored():
    assert get_strategy("default") is tf.distribute.get_strategy()
    mirrored = get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync >= 1


def test_unknown_strategy_echoes_name():
    with pytest.raises(StrategyError, match="'tpu'"):
        get_strategy("tpu")


def test_multi_worker_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StrategyError, match="TF_CONFIG.*not set"):
        get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "   ")
    with pytest.raises(StrategyError, match="not set"):
        get_strategy("multi_worker")


@pytest.mark.parametrize(
    "raw, why",
    [
        ('{"cluster": {"worker": ["h:1"]}, "task": ', "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "'cluster'"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "host:port"),
        (
            '{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}',
            "host:port",
        ),
        ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "'worker'"),
        ('{"cluster": {"worker": ["h:1"]}}', "'task'"),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}',
            "task.type='chief'",
        ),
        (
            '{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}',
            "task.index=2",
        ),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}',
            "task.index='0'",
        ),
    ],
)
def test_malformed_tf_config_is_echoed(monkeypatch, raw, why):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(StrategyError) as excinfo:
        get_strategy("multi_worker")
    message = str(excinfo.value)
    assert why in message
    assert repr(raw) in message  # the whole TF_CONFIG is echoed


def test_parse_tf_config_accepts_text_dict_and_env(monkeypatch):
    assert parse_tf_config(json.dumps(GOOD)) == GOOD
    assert parse_tf_config(GOOD) == GOOD
    monkeypatch.setenv("TF_CONFIG", json.dumps(GOOD))
    assert parse_tf_config() == GOOD


def test_chief_and_worker_index(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief() and worker_index() == 0
    worker1 = GOOD
    worker0 = {**GOOD, "task": {"type": "worker", "index": 0}}
    with_chief = {
        "cluster": {"chief": ["h:1"], "worker": ["h:2"]},
        "task": {"type": "worker", "index": 0},
    }
    chief = {**with_chief, "task": {"type": "chief", "index": 0}}
    assert not is_chief(worker1) and worker_index(worker1) == 1
    assert is_chief(worker0)
    assert not is_chief(with_chief)
    assert is_chief(chief)
    monkeypatch.setenv("TF_CONFIG", json.dumps(worker1))
    assert not is_chief() and worker_index() == 1


def test_global_batch_size():
    assert global_batch_size(8) == 8
    assert (
        global_batch_size(8, get_strategy("mirrored"))
        == 8 * get_strategy("mirrored").num_replicas_in_sync
    )

    class FourReplicas:
        num_replicas_in_sync = 4

    assert global_batch_size(8, FourReplicas()) == 32
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=repr(bad)):
            global_batch_size(bad)


def test_distribute_dataset_sets_policy():
    dataset = tf.data.Dataset.range(4)
    policy = distribute_dataset(dataset).options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
    off = distribute_dataset(dataset, "OFF").options().experimental_distribute.auto_shard_policy
    assert off == tf.data.experimental.AutoShardPolicy.OFF
    assert list(distribute_dataset(dataset).as_numpy_iterator()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="'rows'"):
        distribute_dataset(dataset, "rows")


def test_mixed_precision_policies():
    assert set_mixed_precision(False) == "float32"
    assert set_mixed_precision(True, gpu=True) == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert set_mixed_precision(True, gpu=False) == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert set_mixed_precision(True) == "mixed_bfloat16"  # this CPU-only test machine


def test_mixed_bfloat16_trains_on_cpu():
    set_mixed_precision(True, gpu=False)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    assert model.layers[0].compute_dtype == "bfloat16"
    assert model.layers[0].kernel.dtype == "float32"  # variables stay float32
    x = np.ones((8, 4), "float32")
    history = model.fit(x, np.ones((8, 1), "float32"), epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][1] < history.history["loss"][0]


def test_configure_sets_seed_policy_and_strategy():
    args = parse_flags(build_parser(), ["--seed", "3", "--mixed-precision"])
    strategy = configure(args)
    assert strategy is tf.distribute.get_strategy()
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    first = np.random.rand()
    configure(args)
    assert np.random.rand() == first  # same seed, same draws
