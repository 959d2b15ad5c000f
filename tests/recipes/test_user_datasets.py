"""Broken and oddly laid-out datasets run through the recipes as a user would.

Each broken set must end in one ``error:`` line naming the file at fault, exit status 2 and no
traceback; the recipes' ``main`` runs in this process under ``run_cli`` (the errors come while
reading the data, before any training), so the cases stay fast. An Ultralytics-style set and a
VOC devkit set train end to end in a subprocess.
"""

import json

import numpy as np
import pytest
from PIL import Image
from recipe_runner import ROOT, run_recipe

from zoo.training.cli import USAGE_ERROR_STATUS, run_cli


def _png(path, size=(48, 64), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _coco(root, *, images=None, annotations=None, categories=None, text=None):
    """A 2-image COCO set under root/ (images in root/images/), optionally altered."""
    for i in range(2):
        _png(root / "images" / f"{i}.png", seed=i)
    doc = {
        "images": images
        if images is not None
        else [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 48} for i in range(2)],
        "annotations": annotations
        if annotations is not None
        else [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [4, 4, 20, 16]}],
        "categories": categories if categories is not None else [{"id": 1, "name": "cat"}],
    }
    path = root / "annotations.json"
    path.write_text(text if text is not None else json.dumps(doc))
    return path, path


def _yolo(root, *, label="0 0.5 0.5 0.25 0.25\n", names=("cat", "dog"), label_bytes=None):
    """A YOLO txt folder with one image; returns (--data, the file the error must name)."""
    _png(root / "images" / "a.png")
    label_path = root / "labels" / "a.txt"
    label_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.write_bytes(label_bytes if label_bytes is not None else label.encode())
    if names is not None:
        (root / "classes.txt").write_text("\n".join(names) + "\n")
    return root, label_path


def _voc(root, *, xml=None, image=True):
    ann = root / "VOC2007" / "Annotations" / "a.xml"
    ann.parent.mkdir(parents=True)
    if image:
        _png(root / "VOC2007" / "JPEGImages" / "a.png")
    ann.write_text(
        xml
        or "<annotation><filename>a.png</filename><size><width>64</width><height>48</height>"
        "</size><object><name>cat</name><bndbox><xmin>4</xmin><ymin>4</ymin><xmax>30</xmax>"
        "<ymax>20</ymax></bndbox></object></annotation>"
    )
    return root, ann


def _pts_folder(root, *, pts="version: 1\nn_points: 3\n{\n1 2\n3 4\n5 6\n}\n", image=True):
    if image:
        _png(root / "a.png")
    path = root / "a.pts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pts)
    return root, path


DETECTION = {
    "coco-not-json": lambda r: _coco(r, text="this is not json"),
    "coco-unknown-category": lambda r: _coco(
        r, annotations=[{"id": 1, "image_id": 0, "category_id": 7, "bbox": [1, 1, 5, 5]}]
    ),
    "coco-unknown-image-id": lambda r: _coco(
        r, annotations=[{"id": 1, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]}]
    ),
    "coco-bbox-missing": lambda r: _coco(
        r, annotations=[{"id": 1, "image_id": 0, "category_id": 1}]
    ),
    "coco-bbox-text": lambda r: _coco(
        r, annotations=[{"id": 1, "image_id": 0, "category_id": 1, "bbox": ["a", 1, 5, 5]}]
    ),
    "coco-duplicate-image-id": lambda r: _coco(
        r,
        images=[{"id": 0, "file_name": f"{i}.png", "width": 64, "height": 48} for i in range(2)],
    ),
    "coco-missing-image": lambda r: _coco(
        r, images=[{"id": 0, "file_name": "gone.png", "width": 64, "height": 48}]
    ),
    "yolo-class-out-of-range": lambda r: _yolo(r, label="5 0.5 0.5 0.2 0.2\n"),
    "yolo-four-fields": lambda r: _yolo(r, label="0 0.5 0.5 0.2\n"),
    "yolo-utf16-labels": lambda r: _yolo(r, label_bytes="0 0.5 0.5 0.2 0.2\n".encode("utf-16")),
    "yolo-no-class-names": lambda r: (_yolo(r, names=None)[0], r),
    "voc-broken-xml": lambda r: _voc(r, xml="<annotation><filename>a.png</filename>"),
    "voc-missing-image": lambda r: _voc(r, image=False),
    "empty-folder": lambda r: (r, r),
    "no-such-path": lambda r: (r / "missing.json", r / "missing.json"),
}


def _undecodable(root):
    path, _ = _coco(root)
    (root / "images" / "1.png").write_bytes(b"\x89PNG not really")
    return path, root / "images" / "1.png"


DETECTION["coco-undecodable-image"] = _undecodable

LANDMARKS = {
    "pts-nan": lambda r: _pts_folder(r, pts="version: 1\nn_points: 3\n{\n1 2\nnan 4\n5 6\n}\n"),
    "pts-count-mismatch": lambda r: _pts_folder(r, pts="version: 1\nn_points: 4\n{\n1 2\n}\n"),
    "pts-no-image": lambda r: _pts_folder(r, image=False),
}


def _expect_one_clean_error(capsys, script, argv, culprit, load_script):
    recipe = load_script(script)
    status = run_cli(recipe.main, argv)
    err = capsys.readouterr().err
    assert status == USAGE_ERROR_STATUS, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert str(culprit) in errors[0] or culprit.name in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("case", sorted(DETECTION))
def test_broken_detection_set_ends_in_one_error_line(case, tmp_path, capsys, load_script):
    root = tmp_path / "data"
    root.mkdir()
    data, culprit = DETECTION[case](root)
    argv = ["--smoke", "--data", str(data), "--output", str(tmp_path / "runs")]
    _expect_one_clean_error(capsys, "recipes/train_yolo.py", argv, culprit, load_script)
    assert not list((tmp_path / "runs").glob("*/checkpoints/*"))  # failed before training


@pytest.mark.parametrize("case", sorted(LANDMARKS))
def test_broken_landmark_set_ends_in_one_error_line(case, tmp_path, capsys, load_script):
    root = tmp_path / "faces"
    root.mkdir()
    data, culprit = LANDMARKS[case](root)
    argv = ["--smoke", "--data", str(data), "--output", str(tmp_path / "runs")]
    _expect_one_clean_error(capsys, "recipes/train_landmarks.py", argv, culprit, load_script)


def test_text_in_utf16_ends_in_one_error_line(tmp_path, capsys, load_script):
    path = tmp_path / "corpus.txt"
    path.write_bytes("Deixa o menino jogar bola.\nEle aprende.\n".encode("utf-16"))
    argv = ["--smoke", "--data", str(path), "--output", str(tmp_path / "runs")]
    line = _expect_one_clean_error(capsys, "recipes/pretrain_text_mlm.py", argv, path, load_script)
    assert "UTF-16" in line or "UTF-8" in line


@pytest.mark.slow
def test_yolo_trains_on_an_ultralytics_data_yaml(tmp_path):
    """datasets/pets/data.yaml with path/train/val/names; labels found by /images/ -> /labels/."""
    root = tmp_path / "datasets" / "pets"
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            _png(root / "images" / split / f"{i}.png", seed=i)
            label = root / "labels" / split / f"{i}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"{i % 2} 0.4 0.5 0.3 0.4\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n"
    )
    run_recipe(
        [
            ROOT / "recipes" / "train_yolo.py",
            "--smoke",
            "--data",
            root / "data.yaml",
            "--output",
            tmp_path / "runs",
            "--no-export",  # export is tested by the smoke run; this one is about the layout
            "--name",
            "pets",
        ],
        cwd=tmp_path,
    )
    metrics = json.loads((tmp_path / "runs" / "pets" / "metrics.json").read_text())
    assert "map50" in metrics


def test_image_dir_with_a_pts_folder_is_refused_in_one_line(tmp_path, capsys, load_script):
    root = tmp_path / "faces"
    data, _ = _pts_folder(root)
    argv = ["--smoke", "--data", str(data), "--image-dir", str(tmp_path), "--output", "runs"]
    recipe = load_script("recipes/train_landmarks.py")
    assert run_cli(recipe.main, argv) == USAGE_ERROR_STATUS
    err = capsys.readouterr().err
    assert err.startswith("error: --image-dir = ") and "Traceback" not in err
