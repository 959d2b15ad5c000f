"""zoo.metric_learning.workflow: recipe defaults, holdout splits, evaluation against pixels."""

import json

import numpy as np

from zoo.data.classification import ClassificationData
from zoo.metric_learning.workflow import (
    METRIC_KEYS,
    SIAMESE_DEFAULTS,
    SMOKE_SUBSETS,
    TRIPLET_DEFAULTS,
    evaluate_against_pixels,
    holdout_splits,
    metric_learning_parser,
    metrics_table,
    parse_class_list,
    raw_pixels,
    write_metrics,
)
from zoo.training import parse_flags


def toy(n_per_class=8, classes=4, seed=0, size=6):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    images = rng.integers(0, 40, (len(labels), size, size, 1)).astype(np.uint8)
    images[:, 2:4, 2:4, 0] = (labels * 60)[:, None, None]  # the class is in the pixels
    return ClassificationData(images, labels, [f"c{i}" for i in range(classes)], "toy")


def test_parser_defaults_are_the_defaults_dicts():
    for defaults in (TRIPLET_DEFAULTS, SIAMESE_DEFAULTS):
        args = parse_flags(metric_learning_parser("x", defaults), [])
        for key, value in defaults.items():
            if key in vars(args):
                want = list(value) if isinstance(value, tuple) else value
                assert getattr(args, key) == want, key
    assert TRIPLET_DEFAULTS["batch_size"] // TRIPLET_DEFAULTS["k"] == 10  # P = 10
    assert (TRIPLET_DEFAULTS["margin"], SIAMESE_DEFAULTS["margin"]) == (0.2, 1.0)
    smoke = {"epochs": 1, **SMOKE_SUBSETS}
    args = parse_flags(metric_learning_parser("x", TRIPLET_DEFAULTS, smoke), ["--smoke"])
    assert args.max_train == 600 and args.epochs == 1
    assert parse_class_list("5, 6,7") == [5, 6, 7] and parse_class_list("") == []


def test_holdout_splits():
    train, test = toy(), toy(seed=1)
    assert set(holdout_splits(train, test)) == {"all"}
    parts = holdout_splits(train, test, [2, 3])
    assert set(parts) == {"seen", "unseen"}
    assert set(parts["seen"][0].labels) == {0, 1} and set(parts["unseen"][1].labels) == {2, 3}


def test_evaluate_against_pixels_table_and_json(tmp_path):
    train, test = toy(), toy(seed=1)
    parts = holdout_splits(train, test, [2, 3])
    results = evaluate_against_pixels(raw_pixels, parts, num_pairs=40, seed=0)
    assert set(results) == {"seen", "unseen"}
    for entry in results.values():
        assert set(entry) == {"model", "raw_pixels"}
        assert entry["model"] == entry["raw_pixels"]  # the same embedding twice
        assert entry["model"]["recall@1"] == 1.0  # the class pixels decide the neighbour
    lines = metrics_table(results).splitlines()
    assert len(lines) == 5 and "ver_accuracy" in lines[0]
    assert len(lines[1].split()) == 2 + len(METRIC_KEYS)
    path = write_metrics(results, tmp_path / "run" / "metrics.json")
    assert json.loads(path.read_text())["unseen"]["model"]["recall@1"] == 1.0


def test_unseen_classes_get_the_readout_row_and_only_they():
    from zoo.metric_learning import build_embedding_model, feature_readout

    train, test = toy(size=16), toy(seed=1, size=16)  # 16 px: small_cnn has its second block
    parts = holdout_splits(train, test, [2, 3])
    encoder = build_embedding_model((16, 16, 1), embedding_dim=8, width=4)
    results = evaluate_against_pixels(encoder, parts, num_pairs=40, seed=0)
    assert list(results["unseen"]) == ["model", "readout", "raw_pixels"]
    assert list(results["seen"]) == ["model", "raw_pixels"]
    unseen_train, unseen_test = parts["unseen"]
    want = evaluate_against_pixels(
        feature_readout(encoder), {"all": parts["unseen"]}, num_pairs=40, seed=0
    )["all"]["model"]
    assert results["unseen"]["readout"] == want
    assert len(metrics_table(results).splitlines()) == 6
    # None, or a function without layers, leaves the row out
    assert (
        "readout"
        not in evaluate_against_pixels(encoder, parts, num_pairs=40, readout_layer=None)["unseen"]
    )
