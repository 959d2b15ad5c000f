"""recipes/train_multimodal.py --smoke for each pair: trains, evaluates, plots, exports (CI)."""

import json
import shutil

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


def tiny_folder(root, rows=24, test_rows=8):
    """(image, tone WAV, caption) triples of the generated scenes, written without espeak-ng."""
    import csv

    import numpy as np
    import tensorflow as tf

    from zoo.multimodal.captions import scene_captions
    from zoo.multimodal.scenes import render_scene, sample_scenes, scene_keys

    attributes = sample_scenes(rows, seed=1)
    captions = scene_captions(attributes, seed=1)
    (root / "audio").mkdir(parents=True)
    lines = []
    for i in range(rows):
        image = root / f"{i}.png"
        tf.io.write_file(str(image), tf.io.encode_png(render_scene(attributes[i], i, 1)))
        t = np.arange(4410) / 22050
        tone = 0.3 * np.sin(2 * np.pi * (150 + 100 * attributes[i, 0, 0]) * t)
        wav = tf.audio.encode_wav(tone.astype(np.float32)[:, None], 22050)
        (root / "audio" / f"{i}.wav").write_bytes(wav.numpy())
        split = "test" if i >= rows - test_rows else "train"
        lines.append([f"{i}.png", f"audio/{i}.wav", captions[i], attributes[i, 0, 0], split])
        lines[-1].append(int(scene_keys(attributes[i : i + 1])[0]))
    with open(root / "pairs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "audio", "text", "label", "split", "key"])
        writer.writerows(lines)
    return root


@pytest.mark.slow
def test_data_folder_trains_and_evaluates(tmp_path):
    folder = tiny_folder(tmp_path / "triples")
    proc, run = smoke("image-audio", tmp_path, "--data", folder, "--no-export", "--spec-augment")
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "config.json").read_text())["config"]["spec_augment"]
    assert metrics["data"]["audio"] == "folder" and metrics["num_test"] == 8
    assert metrics["data"]["num_train"] == 16 and metrics["data"]["num_test"] == 8
    for direction in ("image_to_audio", "audio_to_image"):
        assert 0.0 <= metrics["retrieval"][direction]["recall@1"] <= 1.0
    assert "audio class prototypes" in metrics["zero_shot"]["method"]
    assert "recall@1=" in proc.stdout


def test_data_folder_error_is_one_line(tmp_path, capsys, load_script):
    import csv

    from zoo.training.cli import USAGE_ERROR_STATUS, run_cli

    folder = tiny_folder(tmp_path / "triples", rows=4, test_rows=2)
    with open(folder / "pairs.csv", newline="") as f:
        rows = list(csv.reader(f))
    rows[2][2] = ""  # the caption of the second triple
    with open(folder / "pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    recipe = load_script("recipes/train_multimodal.py")
    argv = ["--smoke", "--data", str(folder), "--output", str(tmp_path / "runs")]
    assert run_cli(recipe.main, argv) == USAGE_ERROR_STATUS
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == [f"error: {folder / 'pairs.csv'}: line 3: text = '': missing caption"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speech_smoke_writes_a_reusable_folder(tmp_path):
    speech_dir = tmp_path / "speech"
    extra = ["--audio", "speech", "--speech-dir", speech_dir, "--no-export", "--no-supervised"]
    extra += ["--num-train", "12", "--num-test", "6"]
    proc, run = smoke("image-audio", tmp_path, *extra)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["audio"] == "speech" and metrics["data"]["num_test"] == 6
    assert metrics["data"]["speech"]["synthesis"]["requested"] == 12 * 2 + 6
    assert (speech_dir / "pairs.csv").is_file() and "captions synthesised" in proc.stdout
    config = json.loads((run / "config.json").read_text())["config"]
    assert not config["spec_augment"] and not config["audio_normalize"]  # the speech defaults
