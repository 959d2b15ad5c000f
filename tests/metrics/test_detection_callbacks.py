"""DetectionMetricsCallback: values reach History and CSVLogger during a real fit."""

import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.metrics import COCO_METRIC_NAMES, DetectionMetricsCallback, coco_map

N_IMAGES, SIZE, MAX_BOXES = 6, 16, 3


def make_validation_set():
    """Images filled with their index (so predict_fn can tell them apart), padded boxes."""
    rng = np.random.default_rng(0)
    images = np.stack([np.full((SIZE, SIZE, 3), i, np.uint8) for i in range(N_IMAGES)])
    boxes = np.zeros((N_IMAGES, MAX_BOXES, 4), np.float32)
    labels = -np.ones((N_IMAGES, MAX_BOXES), np.int32)
    gt, dt = [], []
    for i in range(N_IMAGES):
        n = i % (MAX_BOXES + 1)  # 0..3 boxes, image 0 and 4 have none
        xy = rng.uniform(0, 8, size=(n, 2)).astype(np.float32)
        b = np.concatenate([xy, xy + rng.uniform(3, 8, size=(n, 2)).astype(np.float32)], 1)
        c = rng.integers(0, 2, size=n).astype(np.int32)
        boxes[i, :n], labels[i, :n] = b, c
        gt.append({"boxes": b, "classes": c})
        noisy = b + rng.normal(0, 0.7, size=b.shape).astype(np.float32)
        noisy[:, 2:] = np.maximum(noisy[:, 2:], noisy[:, :2] + 0.5)
        fp = np.array([[0.0, 0.0, 4.0, 4.0]], np.float32)
        dt.append(
            {
                "boxes": np.concatenate([noisy, fp]),
                "classes": np.concatenate([c, [1]]).astype(np.int32),
                "scores": rng.uniform(0.1, 1.0, size=n + 1).astype(np.float32),
            }
        )
    ds = tf.data.Dataset.from_tensor_slices(
        {"images": images, "bounding_boxes": {"boxes": boxes, "labels": labels}}
    ).batch(4)  # batches of 4 and 2
    return ds, gt, dt


def tiny_model():
    model = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def make_predict_fn(dt, seen):
    def predict_fn(model, images):
        seen.append((model, images.shape, images.dtype))
        model.predict_on_batch(images.astype("float32"))  # the model is usable here
        return [dt[int(image[0, 0, 0])] for image in images]

    return predict_fn


def test_values_reach_history_and_csv_logger(tmp_path):
    ds, gt, dt = make_validation_set()
    expected = coco_map(gt, dt, class_names=["a", "b"])
    assert 0.0 < expected["map"] < 1.0
    model, seen = tiny_model(), []
    cb = DetectionMetricsCallback(
        ds, make_predict_fn(dt, seen), class_names=["a", "b"], log_per_class=True
    )
    csv_path = tmp_path / "log.csv"
    x = np.zeros((8, SIZE, SIZE, 3), np.float32)
    y = np.zeros((8, 1), np.float32)
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=[cb, keras.callbacks.CSVLogger(str(csv_path))],
    )
    assert len(seen) == 4 and all(m is model for m, _, _ in seen)  # 2 batches x 2 epochs
    assert seen[0][1] == (4, SIZE, SIZE, 3) and seen[0][2] == np.uint8
    for name in COCO_METRIC_NAMES:
        values = history.history["val_" + name]
        assert len(values) == 2
        for v in values:
            assert v == expected[name] or (math.isnan(v) and math.isnan(expected[name])), name
    assert history.history["val_ap_b"] == [expected["per_class"]["b"]] * 2
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for row in rows:
        assert float(row["val_map"]) == expected["map"]
        assert float(row["val_map50"]) == expected["map50"]
        assert float(row["val_mar_100"]) == expected["mar_100"]
        assert "loss" in row


def test_every_n_epochs_writes_nan_between_evaluations():
    ds, gt, dt = make_validation_set()
    expected = coco_map(gt, dt)
    model, seen = tiny_model(), []
    cb = DetectionMetricsCallback(ds, make_predict_fn(dt, seen), every=2, prefix="eval_", steps=1)
    x = np.zeros((4, SIZE, SIZE, 3), np.float32)
    history = model.fit(x, np.zeros((4, 1)), epochs=3, verbose=0, callbacks=[cb])
    # epoch 0 skipped, epoch 1 = 2nd epoch, epoch 2 = last epoch; steps=1 -> first batch only
    values = history.history["eval_map"]
    assert len(values) == 3 and math.isnan(values[0])
    first_batch = coco_map(gt[:4], dt[:4])
    assert values[1] == values[2] == first_batch["map"] != expected["map"]
    assert len(seen) == 2


def test_callbacks_before_it_do_not_see_the_values(tmp_path):
    ds, gt, dt = make_validation_set()
    csv_path = tmp_path / "log.csv"
    cb = DetectionMetricsCallback(ds, make_predict_fn(dt, []))
    history = tiny_model().fit(
        np.zeros((4, SIZE, SIZE, 3)),
        np.zeros((4, 1)),
        epochs=1,
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(csv_path)), cb],  # wrong order
    )
    with open(csv_path) as f:
        header = next(csv.reader(f))
    assert "val_map" not in header  # CSVLogger ran before the values were written
    assert "val_map" in history.history  # History is appended by fit, so it always sees them


def test_batched_dict_predictions_and_tuple_batches():
    ds, gt, dt = make_validation_set()
    expected = coco_map(gt, dt)

    def batched_predict_fn(model, images):
        out = {
            "boxes": np.zeros((len(images), 5, 4), np.float32),
            "confidence": np.zeros((len(images), 5), np.float32),
            "classes": -np.ones((len(images), 5), np.int32),
        }
        for b, image in enumerate(images):
            d = dt[int(image[0, 0, 0])]
            n = len(d["scores"])
            out["boxes"][b, :n], out["confidence"][b, :n] = d["boxes"], d["scores"]
            out["classes"][b, :n] = d["classes"]
        return out

    tuples = ds.map(lambda e: (e["images"], e["bounding_boxes"]))
    for data in (ds, tuples):
        cb = DetectionMetricsCallback(data, batched_predict_fn)
        cb.set_model(tiny_model())
        out = cb.evaluate()
        for name in COCO_METRIC_NAMES:
            assert out[name] == pytest.approx(expected[name], abs=1e-15, nan_ok=True), name
    logs = {"loss": 1.0}
    cb.on_epoch_end(0, logs)
    assert logs["val_map"] == pytest.approx(expected["map"]) and logs["loss"] == 1.0


def test_rejects_bad_arguments_and_bad_predictions():
    ds, gt, dt = make_validation_set()
    with pytest.raises(ValueError, match=r"every = 0"):
        DetectionMetricsCallback(ds, lambda m, x: [], every=0)
    with pytest.raises(ValueError, match=r"predict_fn = 3"):
        DetectionMetricsCallback(ds, 3)
    cb = DetectionMetricsCallback(ds, lambda m, x: [])
    cb.set_model(tiny_model())
    with pytest.raises(
        ValueError, match=r"predict_fn returned 0 detection entries for a batch of 4"
    ):
        cb.evaluate()
    bad = DetectionMetricsCallback([{"pixels": np.zeros((1, 4, 4, 3))}], lambda m, x: [])
    with pytest.raises(ValueError, match=r"got dict with keys \['pixels'\]"):
        bad.evaluate()
