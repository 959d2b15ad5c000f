"""Metric-learning recipes: --smoke trains, evaluates, plots, exports and verifies (CI)."""

import json

import numpy as np
import pytest
from recipe_runner import RECIPES, run_recipe

METRIC_KEYS = (
    "recall@1",
    "recall@8",
    "map@r",
    "verification_accuracy",
    "verification_roc_auc",
    "verification_val@far=0.001",
)


def smoke(name, tmp_path, *extra, timeout=400):
    args = [RECIPES / name, "--smoke", "--output", tmp_path / "runs", "--name", "smoke", *extra]
    return run_recipe(args, tmp_path, timeout=timeout), tmp_path / "runs" / "smoke"


def check_export(version_dir):
    assert (version_dir / "saved_model.pb").is_file()
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["signatures"]["serving_default"]["outputs"]["outputs"]["shape"] == [None, 64]
    assert manifest["config"]["embedding_dim"] == 64
    assert (version_dir / "model_fp32.tflite").stat().st_size > 10_000


@pytest.mark.slow
def test_triplet_smoke_with_holdout_classes(tmp_path):
    proc, run = smoke(
        "train_triplet.py",
        tmp_path,
        "--holdout-classes",
        "5,6,7,8,9",
        "--export-dir",
        str(tmp_path / "models"),
    )
    assert "verify_export passed" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"seen", "unseen"}
    assert list(metrics["unseen"]) == ["model", "readout", "raw_pixels"]
    for split in ("seen", "unseen"):
        for who in metrics[split]:
            for key in METRIC_KEYS:
                assert 0.0 <= metrics[split][who][key] <= 1.0, (split, who, key)
    assert (run / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    check_export(tmp_path / "models" / "triplet_embedding" / "1")
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["holdout_classes"] == [5, 6, 7, 8, 9]


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe, extra, mode",
    [
        ("train_triplet.py", ["--model", "triplet-inputs"], {"model": "triplet-inputs"}),
        ("train_siamese.py", ["--pairs", "explicit"], {"pairs": "explicit"}),
    ],
)
def test_explicit_pairs_and_triplets_smoke(tmp_path, recipe, extra, mode):
    """build_siamese / build_triplet on mined pairs / triplets: trains and evaluates."""
    proc, run = smoke(recipe, tmp_path, "--no-export", "--epochs", "2", *extra)
    metrics = json.loads((run / "metrics.json").read_text())
    assert all(np.isfinite(v) for v in metrics["all"]["model"].values())
    config = json.loads((run / "config.json").read_text())["config"]
    assert mode.items() <= config.items()
    assert config["hard_fraction"] == 0.5


@pytest.mark.slow
def test_siamese_smoke_in_batch_pairs(tmp_path):
    proc, run = smoke(
        "train_siamese.py",
        tmp_path,
        "--export-dir",
        str(tmp_path / "models"),
    )
    assert "verify_export passed" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"all"}
    assert all(np.isfinite(v) for v in metrics["all"]["model"].values())
    assert (run / "tsne.png").is_file()
    check_export(tmp_path / "models" / "siamese_embedding" / "1")


# Exported tower vs the Keras tower, largest absolute difference of a unit-norm embedding: the
# SavedModel runs the same TensorFlow ops (bit-exact in practice), the fp32 .tflite reorders
# float sums (~2e-7 seen); verify_export's float32 default is 1e-4 as well.
SAVED_MODEL_ATOL = 1e-5
TFLITE_ATOL = 1e-4


@pytest.mark.slow
def test_two_tower_smoke_exports_both_towers(tmp_path):
    import keras

    from zoo.export import run_saved_model_subprocess, run_tflite
    from zoo.metric_learning import edge_sketches

    models = tmp_path / "models"
    proc, run = smoke("train_two_tower.py", tmp_path, "--export-dir", str(models))
    metrics = json.loads((run / "metrics.json").read_text())
    for stage in ("untrained", "trained"):
        assert 0.0 <= metrics[stage]["instance_recall@1"] <= 1.0
        assert metrics[stage]["gallery_size"] == 200
    assert "instance_recall@1" in proc.stdout
    assert proc.stdout.count("verify_export passed") == 2
    assert "exports: two_tower_image -> " in proc.stdout

    # The Keras towers as trained: last.keras is the model after the last epoch, i.e. the one
    # the recipe exported (nothing changes its weights after training).
    model = keras.saving.load_model(run / "checkpoints" / "last.keras", compile=False)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (6, 28, 28, 1)).astype("float32")  # not the export's sample
    feeds = {
        "two_tower_image": ("tower_a", images, "images"),
        "two_tower_sketch": ("tower_b", edge_sketches(images), "features"),
    }
    for name, (tower_name, inputs, input_name) in feeds.items():
        version = models / name / "1"
        check_export(version)
        manifest = json.loads((version / "manifest.json").read_text())
        assert manifest["model"]["name"] == tower_name
        assert list(manifest["signatures"]["serving_default"]["inputs"]) == [input_name]
        assert ("serving_bytes" in manifest["signatures"]) == (name == "two_tower_image")
        assert manifest["metrics"] == metrics["trained"]

        want = np.asarray(model.get_layer(tower_name)(inputs))
        np.testing.assert_allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-5)
        outputs, meta = run_saved_model_subprocess(version, {input_name: inputs})
        assert meta["zoo_in_sys_modules"] is False and meta["inputs"] == [input_name]
        np.testing.assert_allclose(outputs["outputs"], want, rtol=0, atol=SAVED_MODEL_ATOL)
        (lite,) = run_tflite(version / "model_fp32.tflite", inputs).values()
        np.testing.assert_allclose(lite, want, rtol=0, atol=TFLITE_ATOL)


def test_triplet_flags_parse(load_script):
    train_triplet = load_script("recipes/train_triplet.py")
    args = train_triplet.parse_args(["--smoke", "--holdout-classes", "1,2", "--mining", "hard"])
    assert args.holdout_classes == [1, 2] and args.mining == "hard" and args.max_train == 600
    assert args.image_size is None and args.steps_per_epoch == 2 and args.augment
    args = train_triplet.parse_args(["--no-augment", "--k", "4"])
    assert not args.augment and args.k == 4 and args.steps_per_epoch == 200
    args = train_triplet.parse_args([])
    assert (args.batch_size, args.k, args.margin, args.distance) == (80, 8, 0.2, None)
    assert train_triplet.triplet_distance(args.mining, args.distance) == "squared_l2"
    assert train_triplet.triplet_distance("hard", None) == "l2"
    assert train_triplet.triplet_distance("hard", "cosine") == "cosine"
    assert args.mining == "semi-hard" and args.embedding_dim == 64 and args.epochs == 12
    assert args.holdout_classes == [] and args.eval_pairs == 20000
    assert args.model == "online"
    args = train_triplet.parse_args(["--model", "triplet-inputs", "--hard-fraction", "0.25"])
    assert args.model == "triplet-inputs" and args.hard_fraction == 0.25


def test_siamese_flags_parse(load_script):
    train_siamese = load_script("recipes/train_siamese.py")
    args = train_siamese.parse_args([])
    assert (args.batch_size, args.margin, args.distance, args.variant) == (80, 1.0, "l2", "squared")
    assert (args.pairs, args.k, args.average) == ("in-batch", 8, "active")
    assert (args.hard_fraction, args.mining_pool, args.shift) == (0.5, 4000, 0.0)
    args = train_siamese.parse_args(["--pairs", "explicit", "--average", "pairs"])
    assert (args.pairs, args.average) == ("explicit", "pairs")
    args = train_siamese.parse_args(["--smoke", "--variant", "hadsell"])
    assert args.epochs == 2 and args.eval_pairs == 400 and args.variant == "hadsell"
