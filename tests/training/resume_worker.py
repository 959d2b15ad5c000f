"""A small training run for test_interruption.py (started as a subprocess; not a test itself).

Usage: python resume_worker.py OUTPUT NAME EPOCHS STEP_SLEEP_S [more flags]
Trains a tiny Dense model on seeded random data with zoo.training.train (32 steps per epoch,
warmup + cosine LR, a 10-minute --time-budget), sleeping STEP_SLEEP_S after every step so a
test can kill it in the middle of an epoch, then writes metrics.json with write_json.
Exit status through run_cli: 0, 1 (TrainingError) or 2 (DataError).
"""

import os
import sys
import time

os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

STEPS, BATCH, BASE_LR, WARMUP = 32, 2, 0.02, 0.2


def main(argv):
    output, name, epochs, step_sleep, *extra = argv
    from zoo import training

    argv = ["--output", output, "--name", name, "--epochs", epochs, "--verbose", "0"]
    argv += ["--time-budget", "10", *extra]
    args = training.parse_flags(training.build_parser("interruption test"), argv)
    training.configure(args)

    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * BATCH, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1)) / 4).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(BASE_LR, momentum=0.9), "mse", metrics=["mae"])

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(float(step_sleep))

    result = training.train(
        model, data, args, recipe="resume", callbacks=[Slow()], warmup=WARMUP, tensorboard=False
    )
    metrics = {
        "final_loss": result.history.history["loss"][-1],
        "epochs_this_attempt": len(result.history.history["loss"]),
        "spent_before_s": result.time_budget.spent_before,
        "not_a_number": float("nan"),
    }
    training.write_json(result.run.path / "metrics.json", metrics)
    print("done", flush=True)


if __name__ == "__main__":
    from zoo.training.cli import run_cli

    sys.exit(run_cli(main))
