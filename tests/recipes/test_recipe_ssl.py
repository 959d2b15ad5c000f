"""recipes/pretrain_ssl.py --smoke for every method: metrics, plots, encoder, export."""

import json

import pytest
from recipe_runner import RECIPES, run_recipe

from zoo.ssl.pretrain import SSL_METHODS

RECIPE = RECIPES / "pretrain_ssl.py"


def test_help_lists_every_task(tmp_path):
    out = run_recipe([RECIPE, "--help"], tmp_path, timeout=120).stdout
    for method in SSL_METHODS:
        assert method in out
    assert "--label-fractions" in out and "--option" in out


@pytest.mark.slow
@pytest.mark.parametrize("task", SSL_METHODS)
def test_smoke_run_writes_everything(tmp_path, task):
    export = task == "rotation"  # the encoder is the same network for every task: export once
    args = [RECIPE, "--task", task, "--smoke", "--output", tmp_path / "runs", "--name", "r"]
    args += ["--export-dir", tmp_path / "saved"] if export else ["--no-export"]
    if task == "deepcluster":
        args += ["--option", "k=8", "pca_dim=16"]
    if task == "inpainting":  # a stream augmentation given on the command line, as JSON
        args += ["--option", 'augment={"flip": true, "max_shift": 0.2}']
    run_recipe(args, tmp_path, timeout=300)
    run = tmp_path / "runs" / "r"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["pretrain_steps"] >= 1
    if task == "inpainting":
        assert metrics["options"]["augment"] == {"flip": True, "max_shift": 0.2}
    for name in ("pretrained", "random_init"):
        assert {"linear", "knn", "linear@10%", "finetune@10%"} <= set(metrics[name])
        assert all(0.0 <= v <= 1.0 for v in metrics[name].values())
    for png in ("probes.png", "samples.png"):
        assert (run / png).stat().st_size > 1000
    assert (run / "encoder.keras").is_file()
    if export:
        assert (tmp_path / "saved" / "ssl_rotation" / "1" / "model_fp32.tflite").is_file()
