"""recipes/train_landmarks.py --smoke: trains, evaluates, plots, exports, verifies."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "recipes" / "train_landmarks.py"


def _run(args, cwd, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_help_lists_the_landmark_flags(tmp_path):
    proc = _run([str(SCRIPT), "--help"], cwd=tmp_path)
    for flag in ("--head", "--loss", "--num-landmarks", "--time-budget", "--smoke", "--data"):
        assert flag in proc.stdout


@pytest.mark.slow
def test_smoke_trains_plots_exports_and_verifies(tmp_path):
    proc = _run(
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
