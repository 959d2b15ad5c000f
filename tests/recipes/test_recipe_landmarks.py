"""recipes/train_landmarks.py --smoke: trains, evaluates, plots, exports, verifies."""

import json

import pytest
from recipe_runner import ROOT, run_recipe

SCRIPT = ROOT / "recipes" / "train_landmarks.py"


@pytest.mark.slow
def test_help_lists_the_landmark_flags(tmp_path):
    proc = run_recipe([str(SCRIPT), "--help"], cwd=tmp_path)
    for flag in ("--head", "--loss", "--num-landmarks", "--time-budget", "--smoke", "--data"):
        assert flag in proc.stdout


@pytest.mark.slow
def test_smoke_trains_plots_exports_and_verifies(tmp_path):
    proc = run_recipe(
        [
            str(SCRIPT),
            "--smoke",
            "--head",
            "heatmap",
            "--output",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "models"),
            "--name",
            "smoke",
        ],
        cwd=tmp_path,
    )
    assert "verify_export passed" in proc.stdout
    run = tmp_path / "runs" / "smoke"
    metrics = json.loads((run / "metrics.json").read_text())
    for kind in ("keras", "tflite_fp32", "tflite_int8"):
        assert set(metrics[kind]) >= {"nme", "failure_rate", "auc", "presence_accuracy"}
        assert 0.0 <= metrics[kind]["presence_accuracy"] <= 1.0
    assert abs(metrics["int8_nme_minus_fp32"]) < 1.0
    for png in ("ced.png", "val_predictions.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG"
    version = tmp_path / "models" / "landmarks" / "1"
    assert (version / "saved_model.pb").is_file()
    manifest = json.loads((version / "manifest.json").read_text())
    outputs = manifest["signatures"]["serving_default"]["outputs"]
    assert set(outputs) == {"presence", "landmarks"}
    assert outputs["landmarks"]["shape"] == [None, 5, 2] and outputs["presence"]["shape"] == [None]
    for name in ("model_fp32.tflite", "model_int8.tflite"):
        assert (version / name).stat().st_size > 50_000
