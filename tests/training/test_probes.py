"""Probes: label fractions, linear / k-NN probes vs brute force, the linear probe runs to
convergence quietly, fine-tuning leaves the encoder."""

import warnings

import keras
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from zoo.data.classification import ClassificationData, load_shapes_data
from zoo.ssl.model import build_ssl_encoder
from zoo.training.probes import (
    LINEAR_PROBE_MAX_ITER,
    features,
    fine_tune,
    knn_probe,
    label_fraction,
    linear_probe,
)


def _blobs(n_per_class=30, classes=3, dim=6, spread=0.3, seed=0):
    centres = np.random.default_rng(123).normal(size=(classes, dim)) * 3  # same for every split
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    points = centres[labels] + rng.normal(size=(len(labels), dim)) * spread
    return points.astype(np.float32), labels


def _data(images, labels, classes=3):
    images = np.asarray(images)
    if images.ndim == 2:  # feature vectors stand in for images: (N, D) -> (N, D, 1, 1)
        images = images[:, :, None, None]
    return ClassificationData(images, labels, tuple(str(i) for i in range(classes)))


def test_label_fraction_is_stratified_with_one_per_class_minimum():
    labels = np.repeat(np.arange(4), [100, 50, 10, 3])
    data = _data(np.zeros((len(labels), 2, 2, 1), np.uint8), labels, classes=4)
    few = label_fraction(data, 0.1, seed=1)
    assert np.bincount(few.labels, minlength=4).tolist() == [10, 5, 1, 1]
    assert label_fraction(data, 1.0) is data
    again = label_fraction(data, 0.1, seed=1)
    np.testing.assert_array_equal(few.images, again.images)
    with pytest.raises(ValueError, match="fraction=0"):
        label_fraction(data, 0)


def test_knn_probe_matches_brute_force_vote():
    x_train, y_train = _blobs(spread=2.5, seed=0)
    x_test, y_test = _blobs(n_per_class=10, spread=2.5, seed=1)
    k, t = 5, 0.1
    result = knn_probe(
        (x_train, x_test), _data(x_train, y_train), _data(x_test, y_test), k=k, temperature=t
    )
    a = x_train / np.linalg.norm(x_train, axis=1, keepdims=True)
    b = x_test / np.linalg.norm(x_test, axis=1, keepdims=True)
    sim = b @ a.T
    predictions = []
    for row in sim:
        top = np.argsort(-row)[:k]
        votes = np.zeros(3)
        for j in top:
            votes[y_train[j]] += np.exp(row[j] / t)
        predictions.append(np.argmax(votes))
    assert result["accuracy"] == pytest.approx(np.mean(np.array(predictions) == y_test))
    assert 0.3 < result["accuracy"] < 1.0  # overlapping blobs: neither trivial nor chance


def test_linear_probe_separates_blobs_and_fails_on_noise():
    x_train, y_train = _blobs(seed=0)
    x_test, y_test = _blobs(n_per_class=10, seed=1)
    good = linear_probe((x_train, x_test), _data(x_train, y_train), _data(x_test, y_test))
    assert good["accuracy"] == 1.0
    rng = np.random.default_rng(2)
    noise = rng.normal(size=x_test.shape).astype(np.float32)
    bad = linear_probe((x_train, noise), _data(x_train, y_train), _data(noise, y_test))
    assert bad["accuracy"] < 0.7


def test_probe_rejects_mismatched_features():
    x, y = _blobs()
    with pytest.raises(ValueError, match="differ in length"):
        linear_probe((x[:-1], x), _data(x, y), _data(x, y))


@pytest.fixture(scope="module")
def shape_features():
    """A small realistic probe: the 128-d features of a random-init zoo encoder on the
    synthetic shapes set (pooled ReLU features, strongly correlated, like the benchmark's).
    L-BFGS needs 257 iterations on them: more than the old default of 200."""
    keras.utils.set_random_seed(0)
    train, test = load_shapes_data(num_train=1000, num_test=300, seed=0)
    encoder = build_ssl_encoder(train.image_shape, width=32)
    return (features(encoder, train.images), features(encoder, test.images)), train, test


def _convergence_warnings(caught):
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_linear_probe_default_converges_without_a_warning(shape_features):
    pair, train, test = shape_features
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default = linear_probe(pair, train, test)
        doubled = linear_probe(pair, train, test, max_iter=2 * LINEAR_PROBE_MAX_ITER)
    assert not _convergence_warnings(caught)
    assert default["converged"] and doubled["converged"]
    assert 200 < default["iterations"] < LINEAR_PROBE_MAX_ITER
    # converged: more iterations change nothing
    assert doubled["iterations"] == default["iterations"]
    assert doubled["accuracy"] == default["accuracy"]
    assert doubled["train_accuracy"] == default["train_accuracy"]


def test_linear_probe_that_stops_short_says_so_in_its_result(shape_features):
    pair, train, test = shape_features
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short = linear_probe(pair, train, test, max_iter=5)
    assert not _convergence_warnings(caught)
    assert not short["converged"] and short["iterations"] == 5
    assert 0.0 <= short["accuracy"] <= 1.0
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_iter"):
            linear_probe(pair, train, test, max_iter=bad)


def _tiny_encoder():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x)


def _image_blobs(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(2), n // 2)
    images = rng.integers(0, 60, size=(n, 8, 8, 1))
    images[labels == 1, 2:6, 2:6] += 180  # a bright square marks class 1
    return _data(images.astype(np.uint8), labels, classes=2)


def test_fine_tune_learns_and_leaves_the_encoder_untouched():
    encoder = _tiny_encoder()
    before = [w.copy() for w in encoder.get_weights()]
    train, test = _image_blobs(64, 0), _image_blobs(32, 1)
    result = fine_tune(
        encoder, train, test, minutes=0.5, max_epochs=30, batch_size=16, learning_rate=1e-2
    )
    assert result["accuracy"] >= 0.9
    assert 1 <= result["epochs"] <= 30
    assert result["train_accuracy"] >= 0.9 and 0 <= result["train_loss"] < 0.7  # below ln 2
    for w0, w1 in zip(before, encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    f = features(encoder, test.images)
    assert f.shape == (32, 4) and f.dtype == np.float32
    with pytest.raises(ValueError, match="minutes=0"):
        fine_tune(encoder, train, test, minutes=0)


def test_probe_encoder_row_uses_the_same_label_subset():
    from zoo.training.probes import label_fraction_indices, probe_encoder

    train, test = _image_blobs(40, 0), _image_blobs(20, 1)
    keep = label_fraction_indices(train.labels, 0.1, seed=0)
    np.testing.assert_array_equal(label_fraction(train, 0.1, seed=0).labels, train.labels[keep])
    assert np.bincount(train.labels[keep]).tolist() == [2, 2]
    row = probe_encoder(_tiny_encoder(), train, test, fractions=(0.1,), finetune_minutes=0.05)
    assert set(row) == {"linear", "knn", "linear@10%", "finetune@10%"}
    assert all(0.0 <= v <= 1.0 for v in row.values())
    assert row["linear"] >= 0.9  # the bright square is linearly visible even in random features


def test_probe_encoder_repeats_fine_tuning_over_consecutive_seeds(monkeypatch):
    import zoo.training.probes as probes

    calls = []

    def fake_fine_tune(encoder, few, test, minutes, seed, head=None):
        calls.append((len(few), minutes, seed))
        heads.append(head)
        return {"accuracy": 0.5 + seed / 10}

    heads = []

    monkeypatch.setattr(probes, "fine_tune", fake_fine_tune)
    train, test = _image_blobs(40, 0), _image_blobs(20, 1)
    row = probes.probe_encoder(
        _tiny_encoder(), train, test, (0.1, 0.5), 0.05, seed=3, finetune_repeats=2
    )
    # the same label subset and budget each time; seeds 3 and 4 for each fraction
    assert calls == [(4, 0.05, 3), (4, 0.05, 4), (20, 0.05, 3), (20, 0.05, 4)]
    assert row["finetune@10%_runs"] == pytest.approx([0.8, 0.9])
    assert row["finetune@10%"] == pytest.approx(0.85)
    assert row["finetune@50%"] == pytest.approx(0.85)
    one = probes.probe_encoder(_tiny_encoder(), train, test, (0.1,), 0.05, seed=3)
    assert one["finetune@10%"] == pytest.approx(0.8) and "finetune@10%_runs" not in one
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match="finetune_repeats"):
            probes.probe_encoder(_tiny_encoder(), train, test, (0.1,), finetune_repeats=bad)
    assert all(head is None for head in heads)
    heads.clear()
    probes.probe_encoder(_tiny_encoder(), train, test, (0.5,), 0.05, lp_ft=True)
    assert [(kernel.shape, bias.shape) for kernel, bias in heads] == [((4, 2), (2,))]


def test_linear_probe_head_is_the_standardised_classifier_as_one_linear_layer():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    f_train, y_train = _blobs(seed=0)
    f_test, y_test = _blobs(seed=1)
    f_train[:, 2] = 5.0  # a constant feature: its scale stays 1
    train, test = _data(f_train, y_train), _data(f_test, y_test)
    probe = linear_probe((f_train, f_test), train, test, return_head=True)
    kernel, bias = probe["head"]
    scaler = StandardScaler().fit(f_train)
    clf = LogisticRegression(max_iter=1000).fit(scaler.transform(f_train), y_train)
    np.testing.assert_allclose(
        f_test @ kernel + bias, clf.decision_function(scaler.transform(f_test)), atol=1e-4
    )
    assert kernel.shape == (6, 3) and kernel.dtype == np.float32
    assert "head" not in linear_probe((f_train, f_test), train, test)


def test_lp_ft_fine_tuning_starts_from_the_linear_probe():
    encoder = _tiny_encoder()  # no BatchNormalization: features move only with the weights
    train, test = _image_blobs(64, 0), _image_blobs(32, 1)
    probe = linear_probe(encoder, train, test, return_head=True)  # two classes: one sklearn row
    kernel, bias = probe["head"]
    logits = features(encoder, test.images) @ kernel + bias
    assert np.mean(np.argmax(logits, 1) == test.labels) == pytest.approx(probe["accuracy"])
    # with a zero learning rate the fine-tuned model is the probe itself
    still = fine_tune(
        encoder, train, test, minutes=0.05, max_epochs=1, learning_rate=0.0, head=probe["head"]
    )
    assert still["accuracy"] == pytest.approx(probe["accuracy"])


@pytest.mark.parametrize(
    "recalibrate_bn, freeze, expected_calls", [(True, False, 1), (False, False, 0), (True, True, 0)]
)
def test_fine_tune_recalibrates_batchnorm_on_the_training_images(
    monkeypatch, recalibrate_bn, freeze, expected_calls
):
    import zoo.training.batchnorm as batchnorm

    calls = []
    real = batchnorm.recalibrate_batchnorm
    monkeypatch.setattr(
        batchnorm,
        "recalibrate_batchnorm",
        lambda model, images, **kw: calls.append(np.asarray(images)) or real(model, images, **kw),
    )
    train, test = _image_blobs(16, 0), _image_blobs(8, 1)
    fine_tune(
        _tiny_encoder(),
        train,
        test,
        minutes=0.1,
        max_epochs=1,
        batch_size=8,
        recalibrate_bn=recalibrate_bn,
        freeze_encoder=freeze,
    )
    assert len(calls) == expected_calls
    if calls:
        np.testing.assert_array_equal(calls[0], train.images)
