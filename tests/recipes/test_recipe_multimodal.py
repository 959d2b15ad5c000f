"""recipes/train_multimodal.py --smoke for each pair: trains, evaluates, plots, exports (CI)."""

import json

import pytest
from recipe_runner import RECIPES, run_recipe

RECIPE = RECIPES / "train_multimodal.py"


def smoke(pair, tmp_path, *extra):
    args = [RECIPE, "--smoke", "--pair", pair, "--output", tmp_path / "runs", "--name", "smoke"]
    return run_recipe([*args, *extra], tmp_path, timeout=300), tmp_path / "runs" / "smoke"


def check_metrics(run, pair):
    metrics = json.loads((run / "metrics.json").read_text())
    a, b = pair.split("-")
    assert metrics["pair"] == pair and metrics["num_test"] == 48
    for direction in (f"{a}_to_{b}", f"{b}_to_{a}"):
        for k in ("recall@1", "recall@5"):
            assert 0.0 <= metrics["retrieval"][direction][k] <= 1.0
            assert 0.0 <= metrics["retrieval"]["instance"][direction][k] <= 1.0
        # a scene-level hit includes the instance hit
        assert (
            metrics["retrieval"][direction]["recall@1"]
            >= metrics["retrieval"]["instance"][direction]["recall@1"]
        )
    assert 0.0 <= metrics["zero_shot"]["accuracy"] <= 1.0
    assert 0.0 <= metrics["supervised"]["accuracy"] <= 1.0
    assert metrics["supervised"]["modality"] == metrics["zero_shot"]["modality"]
    assert 0.0 < metrics["temperature"] < 1.0
    assert (run / "similarity.png").read_bytes()[:4] == b"\x89PNG"
    return metrics


@pytest.mark.slow
def test_image_text_smoke_exports_both_towers(tmp_path):
    proc, run = smoke("image-text", tmp_path)
    metrics = check_metrics(run, "image-text")
    assert "text prompts" in metrics["zero_shot"]["method"]
    assert proc.stdout.count("verify_export passed") == 2
    root = run / "saved_models"
    for modality in ("image", "text"):
        version = root / f"image_text_{modality}_tower" / "1"
        assert (version / "saved_model.pb").is_file()
        assert (version / "model_fp32.tflite").stat().st_size > 10_000
        manifest = json.loads((version / "manifest.json").read_text())
        outputs = manifest["signatures"]["serving_default"]["outputs"]["outputs"]
        assert outputs["shape"] == [None, 64]
    text = json.loads((root / "image_text_text_tower" / "1" / "manifest.json").read_text())
    assert text["preprocessing"]["vocabulary"][:2] == ["[PAD]", "[UNK]"]
    image = json.loads((root / "image_text_image_tower" / "1" / "manifest.json").read_text())
    assert "serving_bytes" in image["signatures"]


@pytest.mark.slow
@pytest.mark.parametrize("pair", ["image-audio", "audio-text"])
def test_audio_pairs_smoke(pair, tmp_path):
    # export of an audio tower is what image-text does for its towers; it is left out here to
    # keep CI short (tests/models/test_clip_models.py covers tower export round trips)
    proc, run = smoke(pair, tmp_path, "--no-export")
    metrics = check_metrics(run, pair)
    expected = "audio class prototypes" if pair == "image-audio" else "text prompts"
    assert expected in metrics["zero_shot"]["method"]
    assert "recall@1=" in proc.stdout


@pytest.mark.slow
def test_help_lists_the_pairs(tmp_path):
    proc = run_recipe([RECIPE, "--help"], tmp_path, timeout=120)
    assert "image-text,image-audio,audio-text" in proc.stdout
