"""Run directory: layout, config.json, resume by name, --resume rules, non-chief workers."""

import datetime
import json
import os
import time

import pytest

from zoo.training import create_run_dir, default_run_name, latest_run, load_run_config


def test_layout_and_config(tmp_path):
    run = create_run_dir(tmp_path, "exp", config={"flags": {"epochs": 3}, "config": {"width": 8}})
    assert run.path == tmp_path / "exp" and not run.resumed and run.chief
    assert run.checkpoints.is_dir() and run.logs.is_dir()
    assert run.backup == run.path / "backup"
    assert run.history_csv == run.path / "history.csv"
    assert run.best_checkpoint.name == "best.keras" and run.last_checkpoint.name == "last.keras"
    config = json.loads(run.config_json.read_text())
    assert config["flags"] == {"epochs": 3} and config["config"] == {"width": 8}
    assert config["name"] == "exp" and config["resumed_at"] == [] and "zoo_version" in config


def test_non_json_values_are_stringified(tmp_path):
    run = create_run_dir(tmp_path, "exp", config={"flags": {"path": tmp_path, "size": (2, 3)}})
    flags = load_run_config(run.path)["flags"]
    assert flags == {"path": str(tmp_path), "size": [2, 3]}


def test_same_name_resumes_and_keeps_created(tmp_path, caplog):
    first = create_run_dir(tmp_path, "exp", config={"flags": {"epochs": 3}})
    created = load_run_config(first.path)["created"]
    with caplog.at_level("WARNING"):
        again = create_run_dir(tmp_path, "exp", config={"flags": {"epochs": 5}})
    assert again.resumed and again.path == first.path
    config = load_run_config(again.path)
    assert config["created"] == created and len(config["resumed_at"]) == 1
    assert config["flags"] == {"epochs": 5}
    assert "epochs" in caplog.text  # the changed flag is reported


def test_generated_name(tmp_path):
    assert (
        default_run_name("yolo", datetime.datetime(2024, 5, 6, 7, 8, 9)) == "yolo-20240506-070809"
    )
    run = create_run_dir(tmp_path, prefix="yolo")
    assert run.name.startswith("yolo-") and run.path.is_dir()


def test_resume_rules(tmp_path):
    with pytest.raises(FileNotFoundError, match="'missing'"):
        create_run_dir(tmp_path, "missing", resume=True)
    with pytest.raises(FileNotFoundError, match="no run"):
        create_run_dir(tmp_path, resume=True)
    create_run_dir(tmp_path, "old")
    time.sleep(0.01)
    create_run_dir(tmp_path, "new")
    old_config = tmp_path / "old" / "config.json"
    os.utime(old_config, (time.time() - 100, time.time() - 100))
    assert latest_run(tmp_path) == "new"
    assert create_run_dir(tmp_path, resume=True).name == "new"
    assert latest_run(tmp_path / "nothing") is None


@pytest.mark.parametrize("bad", ["", "a/b", "..", "."])
def test_bad_names(tmp_path, bad):
    with pytest.raises(ValueError, match="name"):
        create_run_dir(tmp_path, bad)


def test_non_chief_writes_to_temp_dir(tmp_path):
    run = create_run_dir(tmp_path, "exp", config={"flags": {}}, chief=False, worker_index=1)
    assert not run.chief
    assert not str(run.path).startswith(str(tmp_path))
    assert run.checkpoints.is_dir()
    assert run.backup == tmp_path / "exp" / "backup-worker-1"
    assert not (tmp_path / "exp" / "config.json").exists()
