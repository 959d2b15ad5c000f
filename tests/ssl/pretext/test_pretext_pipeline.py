"""Pretext pipelines: tf.data placement, in-model placement (PretextLayer, OnDevicePretext), equal
labels in both, determinism, save/load, errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.ssl import (
    TASKS,
    OnDevicePretext,
    PretextLayer,
    batch_seed,
    make_pretext_dataset,
    pretext_transform,
)

N, SIZE, BATCH = 20, 12, 4


def _images(n=N, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, c)).astype(np.uint8)


def _as_numpy(batches):
    return [tuple(t.numpy() for t in batch) for batch in batches]


def _assert_same(first, second):
    """Integer labels bit for bit; float pixels to float32 rounding (the same maths may round
    differently by an ulp in a tf.data graph, a tf.function and eagerly). ``atol`` is a few
    ulps of 255 (1.5e-5 each): where ``x + 25 z`` cancels to near 0, a multiply-add fused by
    XLA or not differs by about one ulp of ``x``, which is not small relative to the result."""
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=False):
        for u, v in zip(a, b, strict=False):
            assert u.dtype == v.dtype and u.shape == v.shape
            if u.dtype.kind == "f":
                np.testing.assert_allclose(u, v, rtol=1e-6, atol=4e-5)
            else:
                np.testing.assert_array_equal(u, v)


CASES = [
    ("rotation", {}),
    ("jigsaw", {"num_permutations": 24}),
    ("colorization", {}),
    ("colorization", {"mode": "quantized"}),
    ("inpainting", {}),
    ("inpainting", {"mask": "irregular", "fill": "mean"}),
    ("denoising", {}),
    ("denoising", {"noise": "salt_pepper"}),
]


@pytest.mark.parametrize("task, options", CASES)
def test_both_placements_give_identical_inputs_and_targets(task, options):
    x = _images()
    ds = make_pretext_dataset(
        tf.data.Dataset.from_tensor_slices(x), task, BATCH, seed=11, **options
    )
    layer = PretextLayer(task, seed=11, **options)
    step = tf.function(lambda images: layer(images, training=True))  # as in a train step
    from_layer = [step(x[i : i + BATCH]) for i in range(0, N, BATCH)]
    _assert_same(_as_numpy(ds), _as_numpy(from_layer))
    assert int(layer.step.numpy()) == N // BATCH


def test_batch_i_uses_the_contract_seed_and_the_stream_is_deterministic():
    x = _images()
    source = tf.data.Dataset.from_tensor_slices(x)
    ds = make_pretext_dataset(source, "inpainting", BATCH, seed=5, num_parallel_calls=4)
    batches = _as_numpy(ds)
    assert len(batches) == N // BATCH
    want = []
    for i in range(len(batches)):
        seed = tf.random.experimental.stateless_fold_in(
            tf.constant([5, 0], tf.int64), tf.constant(i, tf.int64)
        )
        labelled = pretext_transform("inpainting", x[i * BATCH : (i + 1) * BATCH], seed)
        want.append(tuple(t.numpy() for t in labelled))
    _assert_same(batches, want)  # XLA-compiled arithmetic: equal up to float rounding
    _assert_same(
        _as_numpy(make_pretext_dataset(source, "inpainting", BATCH, seed=5, jit_compile=False)),
        want,
    )
    _assert_same(batches, _as_numpy(ds))  # iterating again: the same stream
    other = _as_numpy(make_pretext_dataset(source, "inpainting", BATCH, seed=6))
    assert not np.array_equal(other[0][1], batches[0][1])


def test_images_taken_from_tuples_dicts_and_prebatched_datasets():
    x = _images()
    want = _as_numpy(make_pretext_dataset(tf.data.Dataset.from_tensor_slices(x), "rotation", 5))
    labels = np.arange(N)
    for source, batch in [
        (tf.data.Dataset.from_tensor_slices((x, labels)), 5),
        (tf.data.Dataset.from_tensor_slices({"images": x, "labels": labels}), 5),
        (tf.data.Dataset.from_tensor_slices(x).batch(5), None),
    ]:
        _assert_same(_as_numpy(make_pretext_dataset(source, "rotation", batch)), want)


@pytest.mark.parametrize("task", TASKS)
def test_element_spec_static_batch(task):
    channels = 3 if task == "colorization" else 1
    ds = make_pretext_dataset(
        tf.data.Dataset.from_tensor_slices(_images(c=channels)), task, BATCH, drop_remainder=True
    )
    inputs, targets = ds.element_spec
    assert inputs.shape[0] == BATCH and targets.shape[0] == BATCH
    assert inputs.dtype == tf.float32


def test_partial_last_batch_kept_without_drop_remainder():
    ds = make_pretext_dataset(
        tf.data.Dataset.from_tensor_slices(_images(n=10)), "denoising", 4, drop_remainder=False
    )
    assert [b[0].shape[0] for b in _as_numpy(ds)] == [4, 4, 2]


def test_pipeline_errors_echo_the_value():
    rgb = tf.data.Dataset.from_tensor_slices(_images())
    gray = tf.data.Dataset.from_tensor_slices(_images(c=1))
    with pytest.raises(ValueError, match=r"RGB.*\(12, 12, 1\)"):
        make_pretext_dataset(gray, "colorization", BATCH)
    with pytest.raises(ValueError, match="task='colour'"):
        make_pretext_dataset(rgb, "colour", BATCH)
    with pytest.raises(ValueError, match="tile=True"):
        make_pretext_dataset(rgb, "jigsaw", BATCH, tile=True)
    with pytest.raises(ValueError, match=r"keys \['image'\]"):
        make_pretext_dataset(
            tf.data.Dataset.from_tensor_slices({"image": _images()}), "rotation", 2
        )
    with pytest.raises(ValueError, match="rank 3"):
        make_pretext_dataset(rgb.batch(2), "rotation", 2)
    with pytest.raises(ValueError, match="batch_size=0"):
        make_pretext_dataset(rgb, "rotation", 0)
    with pytest.raises(ValueError, match="mask='circle'"):
        PretextLayer("inpainting", mask="circle")
    with pytest.raises(ValueError, match="seed=1.5"):
        PretextLayer("rotation", seed=1.5)


def test_layer_evaluation_stream_leaves_the_training_sequence():
    x = _images(n=BATCH)
    layer = PretextLayer("rotation", seed=2)
    first = layer(x, training=True)[1].numpy()
    evaluation = [layer(x, training=False)[1].numpy() for _ in range(2)]
    assert int(layer.step.numpy()) == 1 and int(layer.eval_step.numpy()) == 2
    want = pretext_transform("rotation", x, batch_seed(2, 1))[1].numpy()
    np.testing.assert_array_equal(layer(x)[1].numpy(), want)  # training=None counts as training
    np.testing.assert_array_equal(
        evaluation[1], pretext_transform("rotation", x, batch_seed(2, 1, stream=1))[1].numpy()
    )
    layer.reset_counters()
    np.testing.assert_array_equal(layer(x, training=True)[1].numpy(), first)


def test_layer_config_round_trip():
    layer = PretextLayer("denoising", seed=4, noise="masking", fraction=0.3, name="noise")
    config = layer.get_config()
    assert config["task"] == "denoising" and config["fraction"] == 0.3 and config["seed"] == 4
    again = PretextLayer.from_config(config)
    assert json.dumps(again.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)


def _rotation_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    h = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(4)(h))


def _compile(model, jit_compile=False):
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def test_on_device_training_equals_training_on_the_pretext_dataset():
    x = _images()
    raw = tf.data.Dataset.from_tensor_slices(x)
    on_device = _compile(OnDevicePretext(_rotation_model(), "rotation", seed=3))
    history = on_device.fit(raw.batch(BATCH, drop_remainder=True), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(on_device.pretext.step.numpy()) == N // BATCH
    in_data = _compile(_rotation_model())
    in_data.fit(make_pretext_dataset(raw, "rotation", BATCH, seed=3), epochs=1, verbose=0)
    for a, b in zip(on_device.model.get_weights(), in_data.get_weights(), strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_on_device_evaluation_is_the_same_every_time():
    x = _images()
    model = _compile(OnDevicePretext(_rotation_model(), "rotation", seed=3))
    model.fit(x, batch_size=BATCH, epochs=1, verbose=0)  # an array with batch_size works too
    first = model.evaluate(x, batch_size=BATCH, verbose=0, return_dict=True)
    second = model.evaluate(x, batch_size=BATCH, verbose=0, return_dict=True)
    assert first == second and int(model.pretext.step.numpy()) == N // BATCH


def test_on_device_pretext_saves_and_loads(tmp_path):
    x = _images()
    model = _compile(OnDevicePretext(_rotation_model(), "rotation", seed=9, name="wrapped"))
    model.fit(tf.data.Dataset.from_tensor_slices((x, np.zeros(N))).batch(BATCH), verbose=0)
    path = tmp_path / "rotation.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, OnDevicePretext) and loaded.task == "rotation" and loaded.seed == 9
    assert int(loaded.pretext.step.numpy()) == N // BATCH  # the seed sequence resumes
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    loaded.fit(x, batch_size=BATCH, verbose=0)
    assert int(loaded.pretext.step.numpy()) == 2 * N // BATCH


@pytest.mark.slow
def test_jit_compiled_on_device_training_equals_the_dataset():
    x = _images()
    raw = tf.data.Dataset.from_tensor_slices(x)
    on_device = _compile(OnDevicePretext(_rotation_model(), "rotation", seed=3), jit_compile=True)
    on_device.fit(raw.batch(BATCH), epochs=1, verbose=0)
    in_data = _compile(_rotation_model())
    in_data.fit(make_pretext_dataset(raw, "rotation", BATCH, seed=3), epochs=1, verbose=0)
    for a, b in zip(on_device.model.get_weights(), in_data.get_weights(), strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
