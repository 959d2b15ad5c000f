"""Recipe scripts: every one answers --help, and the smoke runs train, export and verify."""

import json

import pytest
from recipe_runner import ROOT, run_recipe

RECIPES = sorted((ROOT / "recipes").glob("*.py"))


def test_there_are_recipes():
    assert RECIPES, "recipes/ holds no script"


@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.name)
def test_recipe_help(script, tmp_path):
    proc = run_recipe([str(script), "--help"], cwd=tmp_path)
    for flag in ("--epochs", "--batch-size", "--time-budget", "--smoke", "--output"):
        assert flag in proc.stdout, f"{script.name} --help lacks {flag}"


def test_yolo_flags_are_checked_and_reach_the_model_and_loss(capsys, load_script):
    recipe = load_script("recipes/train_yolo.py")
    with pytest.raises(SystemExit):
        recipe.parse_args(["--lambda-coord", "0"])
    assert "argument --lambda-coord: must be a number > 0 (got 0)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.parse_args(["--jit-compile"])
    assert "XLA recompiles the train step" in capsys.readouterr().err
    args = recipe.parse_args(["--lambda-coord", "7.5", "--grid-size", "32"])
    assert args.grid_size == 32  # darknet_nano at stride 4 for 128-pixel images
    loss = recipe.make_loss(args, 3, [(0.1, 0.1), (0.3, 0.2)])
    assert loss.lambda_coord == 7.5 and loss.grid_size == 32


@pytest.mark.slow
def test_shape_tagger_smoke_trains_exports_and_verifies(tmp_path):
    proc = run_recipe(
        [
            str(ROOT / "recipes" / "train_shape_tagger.py"),
            "--smoke",
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
    metrics = json.loads((tmp_path / "runs" / "smoke" / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    version = tmp_path / "models" / "shape_tagger" / "1"
    assert (version / "saved_model.pb").is_file()
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["class_names"] == ["circle", "rectangle", "triangle", "ellipse", "star"]
    for name in ("model_fp32.tflite", "model_int8.tflite"):
        assert (version / name).stat().st_size > 10_000
    assert (tmp_path / "runs" / "smoke" / "history.csv").is_file()


@pytest.mark.slow
def test_yolo_smoke_trains_evaluates_exports_and_verifies(tmp_path):
    proc = run_recipe(
        [
            str(ROOT / "recipes" / "train_yolo.py"),
            "--smoke",
            "--output",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "models"),
            "--name",
            "smoke",
            "--ema",  # the weight average swaps in for validation, checkpoints and export
            "0.9",
            "--head",  # the options beside the default head and augmentation, end to end
            "conv",
            "--mosaic",
            "1",
        ],
        cwd=tmp_path,
    )
    assert "verify_export passed" in proc.stdout
    run = tmp_path / "runs" / "smoke"
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["head"] == "conv" and config["flags"]["mosaic"] == 1.0
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("map", "map50", "map75", "mar_100", "per_class"):
        assert key in metrics
    for png in ("pr_curve.png", "val_detections.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG"
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"val_map", "val_map50", "val_loss"} <= set(header)  # the epoch-end COCO callback
    assert {"tflite_fp32_map50", "tflite_int8_map50", "int8_ok"} <= set(metrics)
    version = tmp_path / "models" / "yolo" / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["class_names"] == ["circle", "rectangle", "triangle", "ellipse", "star"]
    assert {"serving_default", "serving_bytes"} <= set(manifest["signatures"])
    outputs = manifest["signatures"]["serving_default"]["outputs"]
    assert {"detection_boxes", "detection_scores", "detection_classes", "num_detections"} <= set(
        outputs
    )
    for name in ("model_fp32.tflite", "model_int8.tflite"):
        assert (version / name).stat().st_size > 10_000


@pytest.mark.slow
def test_yolo_trains_on_four_images_laid_out_by_an_annotation_tool(tmp_path):
    """data/annotations.json with file_name "train/0000i.png" relative to the JSON, two usable
    boxes: the images resolve without --image-dir, the anchors shrink to the boxes there are,
    validation falls back to the training images, and the run ends cleanly."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            root / "train" / f"{i:05d}.png"
        )
        images.append({"id": i, "file_name": f"train/{i:05d}.png", "width": 64, "height": 48})
    for i, box in ((0, [4, 6, 20, 16]), (2, [30, 10, 12, 24])):
        annotations.append({"id": i, "image_id": i, "category_id": 3, "bbox": box})
    doc = {"images": images, "annotations": annotations, "categories": [{"id": 3, "name": "cat"}]}
    (root / "annotations.json").write_text(json.dumps(doc))
    proc = run_recipe(
        [
            str(ROOT / "recipes" / "train_yolo.py"),
            "--smoke",
            "--data",
            str(root / "annotations.json"),
            "--output",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "models"),
            "--name",
            "tiny",
        ],
        cwd=tmp_path,
    )
    log = proc.stdout + proc.stderr
    assert "cannot give k=5 anchors; fitting 2" in log
    assert "only 4 images; validating on the training images" in log
    metrics = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())
    assert "map50" in metrics
