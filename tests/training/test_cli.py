"""A user's input error ends in one line and exit status 2; --debug / ZOO_DEBUG=1 show the
traceback; bugs keep theirs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.data import DataError
from zoo.training import TrainingError
from zoo.training.cli import TRAINING_ERROR_STATUS, run_cli

ROOT = Path(__file__).resolve().parents[2]


def _bad(argv):
    raise DataError(
        "unknown category", file="ann.json", field="annotations[3].category_id", value=9
    )


def test_a_data_error_is_one_line_and_status_2(capsys, monkeypatch):
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    assert run_cli(_bad, []) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "error: ann.json: annotations[3].category_id = 9: unknown category"
    )
    assert "Traceback" not in err and "--debug" in err


def test_a_training_error_is_one_line_and_status_1(capsys, monkeypatch):
    monkeypatch.delenv("ZOO_DEBUG", raising=False)

    def fails(argv):
        raise TrainingError("loss is nan at epoch 3, step 17 (...): loss=nan box=0.3 obj=nan")

    assert run_cli(fails, []) == TRAINING_ERROR_STATUS == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "error: loss is nan at epoch 3, step 17 (...): loss=nan box=0.3 obj=nan"
    )
    assert "Traceback" not in err
    with pytest.raises(TrainingError):
        run_cli(fails, ["--debug"])


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how, monkeypatch):
    monkeypatch.setenv("ZOO_DEBUG", "1" if how == "env" else "0")
    with pytest.raises(DataError, match="unknown category"):
        run_cli(_bad, ["--debug"] if how == "flag" else [])


def test_main_gets_the_arguments_without_debug_and_bugs_keep_their_traceback(monkeypatch):
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    seen = []
    assert run_cli(seen.append, ["--epochs", "3", "--debug"]) == 0
    assert seen == [["--epochs", "3"]]
    with pytest.raises(ZeroDivisionError):
        run_cli(lambda argv: 1 / 0, [])


@pytest.mark.slow
def test_a_recipe_with_missing_images_ends_in_one_clean_line(tmp_path):
    doc = {
        "images": [{"id": 1, "file_name": "train/a.png", "width": 8, "height": 8}],
        "annotations": [],
        "categories": [{"id": 1, "name": "cat"}],
    }
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "annotations.json").write_text(json.dumps(doc))
    env = {k: v for k, v in os.environ.items() if k != "ZOO_DEBUG"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "train_yolo.py"),
            "--smoke",
            "--data",
            "data/annotations.json",
            "--output",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "images[0].file_name = 'train/a.png': image not found" in errors[0]
    assert "--image-dir" in errors[0]
