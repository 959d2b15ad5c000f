"""``python -m zoo predict``: tiny exported models of three families run on folders of PNGs.

The images (80 x 50, 50 x 90) differ from the model sizes (64 x 64, 32 x 32), so every check of
boxes and points in image pixels also checks the rescaling.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from zoo import build_embedding_model, build_landmark_model, build_yolo
from zoo.detection.decode import detection_model
from zoo.export import export_saved_model, export_tflite
from zoo.landmarks.model import serving_outputs_fn

ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = ["circle", "square", "triangle"]
SIZES = ((50, 80), (90, 50))  # (height, width) of the test images


def run_zoo(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("ZOO_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "zoo", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd or ROOT,
        env=env,
    )


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of PNGs (one in a subfolder) and a file that is not an image."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir()
    paths = [folder / "a.png", folder / "sub" / "b.png"]
    for path, (h, w) in zip(paths, SIZES, strict=True):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pixels[h // 4 : h // 2, w // 4 : w // 2] = (250, 20, 20)
        Image.fromarray(pixels).save(path)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def yolo_export(tmp_path_factory):
    """A tiny YOLO exported as export_yolo does (detections with NMS in the graph), with a low
    score threshold so the untrained model returns boxes."""
    keras.utils.set_random_seed(0)
    model = build_yolo(
        3, (64, 64, 3), grid_size=4, anchors=[[0.2, 0.3], [0.5, 0.4]], width_multiplier=0.125
    )
    detector = detection_model(model, score_threshold=0.01, max_detections=8)
    root = tmp_path_factory.mktemp("yolo")
    saved = export_saved_model(detector, root, "yolo", version=1, class_names=CLASS_NAMES)
    tflite = export_tflite(detector, saved / "model_fp32.tflite")
    return saved, tflite


def read_outputs(out, names):
    return {name: json.loads((out / f"{name}.json").read_text()) for name in names}


def check_detections(record, size):
    height, width = size
    assert record["family"] == "detection"
    assert record["image_size"] == {"width": width, "height": height}
    assert record["model_input_size"] == {"width": 64, "height": 64}
    assert record["results"], "the low in-graph threshold gives detections"
    for det in record["results"]:
        x0, y0, x1, y1 = det["box_xyxy"]
        assert -1e-3 <= x0 <= x1 <= width + 1e-3 and -1e-3 <= y0 <= y1 <= height + 1e-3
        assert 0.01 < det["score"] <= 1.0
        assert det["class_name"] == CLASS_NAMES[det["class_id"]]


@pytest.mark.slow
def test_detection_saved_model_and_tflite(yolo_export, images, tmp_path):
    saved, tflite = yolo_export
    out = tmp_path / "out"
    proc = run_zoo("predict", saved, images, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "predicted 2 images" in proc.stdout and str(out) in proc.stdout
    records = read_outputs(out, ["a", "sub/b"])
    for name, size in zip(["a", "sub/b"], SIZES, strict=True):
        check_detections(records[name], size)
        assert records[name]["format"] == "saved_model"
        assert (out / f"{name}.png").is_file()
        assert Image.open(out / f"{name}.png").size == (size[1], size[0])
    assert not (out / "notes.json").exists()

    # the command equals the loaded SavedModel on the same resized image, boxes rescaled
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    for name, (h, w) in zip(["a", "sub/b"], SIZES, strict=True):
        pixels = np.asarray(Image.open(images / f"{name}.png").convert("RGB"), np.float32)
        resized = tf.image.resize(pixels, (64, 64), method="bilinear")[None]
        direct = {k: v.numpy()[0] for k, v in signature(images=resized).items()}
        n = int(direct["num_detections"])
        ymin, xmin, ymax, xmax = direct["detection_boxes"][:n].T
        expected = np.stack([xmin * w, ymin * h, xmax * w, ymax * h], axis=1)
        got = np.array([d["box_xyxy"] for d in records[name]["results"]])
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(
            [d["score"] for d in records[name]["results"]],
            direct["detection_scores"][:n],
            rtol=1e-3,
        )

    # the fp32 .tflite (manifest beside it: class names) gives the same boxes; a threshold
    # drops the weaker ones
    out_tflite = tmp_path / "tflite"
    threshold = float(np.median([d["score"] for d in records["a"]["results"]]))
    proc = run_zoo(
        "predict", tflite, images / "a.png", "--out", out_tflite, "--score-threshold", threshold
    )
    assert proc.returncode == 0, proc.stderr
    record = read_outputs(out_tflite, ["a"])["a"]
    check_detections(record, SIZES[0])
    assert record["format"] == "tflite" and record["score_threshold"] == threshold
    kept = [d for d in records["a"]["results"] if d["score"] > threshold]
    assert len(record["results"]) == len(kept)
    np.testing.assert_allclose(
        [d["box_xyxy"] for d in record["results"]],
        [d["box_xyxy"] for d in kept],
        rtol=1e-3,
        atol=1e-2,
    )


@pytest.mark.slow
def test_landmarks_saved_model(images, tmp_path):
    model = build_landmark_model(
        5, (32, 32, 3), head="regression", width_multiplier=0.25, hidden_units=16
    )
    saved = export_saved_model(
        model, tmp_path / "models", "faces", outputs_fn=serving_outputs_fn((32, 32))
    )
    out = tmp_path / "out"
    # the model folder of numbered versions resolves to its highest version
    proc = run_zoo("predict", tmp_path / "models" / "faces", images, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    pixels = np.asarray(Image.open(images / "a.png").convert("RGB"), np.float32)
    expected = model.predict_on_batch(tf.image.resize(pixels, (32, 32))[None])
    for name, (h, w) in zip(["a", "sub/b"], SIZES, strict=True):
        record = read_outputs(out, [name])[name]
        assert record["family"] == "landmarks"
        points = np.array(record["results"]["points"])
        assert points.shape == (5, 2)
        assert (points >= 0).all() and (points[:, 0] <= w).all() and (points[:, 1] <= h).all()
        assert 0.0 <= record["results"]["presence"] <= 1.0
        assert (out / f"{name}.png").is_file()
        if name == "a":  # the Keras model at its size, scaled to the image: the same points
            scale = np.array([w / 32, h / 32])
            np.testing.assert_allclose(
                points, expected["landmarks"][0] * scale, rtol=1e-3, atol=1e-2
            )
    assert str(saved) in proc.stdout


@pytest.mark.slow
def test_embedding_keras_and_saved_model(images, tmp_path):
    model = build_embedding_model((32, 32, 3), embedding_dim=8, width=4)
    model.save(tmp_path / "tower.keras")
    saved = export_saved_model(model, tmp_path / "models", "tower")
    vectors = {}
    for label, path in (("keras", tmp_path / "tower.keras"), ("saved_model", saved)):
        out = tmp_path / label
        proc = run_zoo("predict", path, images / "sub", "--out", out)
        assert proc.returncode == 0, proc.stderr
        record = read_outputs(out, ["b"])["b"]
        assert record["family"] == "embedding" and record["format"] == label
        vectors[label] = np.array(record["results"]["vector"])
        assert vectors[label].shape == (8,)
        np.testing.assert_allclose(np.linalg.norm(vectors[label]), 1.0, rtol=1e-4)
        assert not (out / "b.png").exists()  # nothing to draw for a vector
    np.testing.assert_allclose(vectors["keras"], vectors["saved_model"], atol=1e-4)


def test_no_subcommand_lists_subcommands():
    proc = run_zoo()
    assert proc.returncode == 2 and "predict" in proc.stdout
    proc = run_zoo("--help")
    assert proc.returncode == 0 and "predict" in proc.stdout


def test_missing_model_is_one_error_line(images, tmp_path):
    proc = run_zoo("predict", tmp_path / "nope", images, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert len(error_lines(proc)) == 1 and "nope" in error_lines(proc)[0]
    assert "Traceback" not in proc.stderr


def test_folder_without_images_is_one_error_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.keras").write_bytes(b"")
    proc = run_zoo("predict", tmp_path / "model.keras", tmp_path / "empty")
    assert proc.returncode == 2
    assert len(error_lines(proc)) == 1 and "no images found" in error_lines(proc)[0]
    assert "Traceback" not in proc.stderr


def test_text_model_names_its_inputs(tmp_path, images):
    from zoo import build_caption_encoder

    tower = build_caption_encoder(20, max_length=6, embedding_dim=4, width=4)
    saved = export_saved_model(tower, tmp_path, "text_tower", image_input=False)
    proc = run_zoo("predict", saved, images, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    (line,) = error_lines(proc)
    assert "'tokens' int32" in line and "not images" in line
    assert "Traceback" not in proc.stderr


def test_undecodable_image_is_skipped_and_listed(tmp_path, images):
    model = build_embedding_model((32, 32, 3), embedding_dim=4, width=4)
    model.save(tmp_path / "tower.keras")
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(images / "a.png").save(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    proc = run_zoo("predict", tmp_path / "tower.keras", folder, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and "broken.jpg" in proc.stderr
    assert "1 skipped" in proc.stdout and "broken.jpg" in proc.stdout
    assert (tmp_path / "out" / "good.json").is_file()
    assert not (tmp_path / "out" / "broken.json").exists()
