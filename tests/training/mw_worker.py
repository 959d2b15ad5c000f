"""One worker of the multi-worker test (started by test_multi_worker.py; not a test itself).

Usage: python mw_worker.py INDEX PORTS OUTPUT_ROOT RESULT_NPZ
Sets TF_CONFIG for worker INDEX of a cluster on 127.0.0.1:PORTS (comma-separated), parses the
common flags with ``--strategy multi_worker`` and calls zoo.training.configure (which builds the
MultiWorkerMirroredStrategy before any other TF op), trains a tiny classifier for a few steps
on a deterministic dataset with zoo.training.train, and saves the initial and final weights to
RESULT_NPZ.
"""

import json
import os
import sys

os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"


def main(index, ports, output_root, result_path):
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports.split(",")]},
            "task": {"type": "worker", "index": int(index)},
        }
    )
    from zoo import training

    argv = ["--strategy", "multi_worker", "--epochs", "2", "--batch-size", "4"]
    argv += ["--output", output_root, "--name", "mw", "--verbose", "2"]
    # Different seeds per worker: identical results prove the strategy syncs the variables.
    argv += ["--seed", str(100 + int(index))]
    args = training.parse_flags(training.build_parser("multi-worker test"), argv)
    strategy = training.configure(args)  # builds the strategy first, then seeds

    import keras
    import numpy as np
    import tensorflow as tf

    batch = training.global_batch_size(args.batch_size, strategy)
    x = np.linspace(-1.0, 1.0, 32 * 3, dtype="float32").reshape(32, 3)
    y = (x.sum(axis=1) > 0).astype("int32")
    dataset = training.distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch))
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
        )
        model.compile(
            keras.optimizers.SGD(0.5),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    initial = [w.copy() for w in model.get_weights()]
    result = training.train(model, dataset, args, recipe="mw-test", tensorboard=False)
    final = model.get_weights()
    np.savez(
        result_path,
        replicas=np.array(strategy.num_replicas_in_sync),
        global_batch=np.array(batch),
        run_path=np.array(str(result.run.path)),
        chief=np.array(result.run.chief),
        epochs_run=np.array(len(result.history.history["loss"])),
        **{f"initial_{i}": w for i, w in enumerate(initial)},
        **{f"final_{i}": w for i, w in enumerate(final)},
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
