"""Fixtures for zoo.data tests: tiny images and datasets written into tmp_path."""

import json

import numpy as np
import pytest
from PIL import Image


def _pattern(height, width, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def write_image():
    """``write_image(path, width, height, seed=0) -> array``: saves a random RGB image (PNG/JPEG
    by extension) and returns the pixels written."""

    def write(path, width=32, height=24, seed=0):
        path.parent.mkdir(parents=True, exist_ok=True)
        array = _pattern(height, width, seed)
        Image.fromarray(array).save(path)
        return array

    return write


@pytest.fixture
def coco_dir(tmp_path, write_image):
    """A 3-image COCO set: category ids 7, 1, 3 (out of order), a crowd box, a box crossing the
    image border, a zero-width box and an image without annotations."""
    images = tmp_path / "images"
    write_image(images / "a.png", 40, 30, seed=1)
    write_image(images / "b.png", 20, 10, seed=2)
    write_image(images / "c.jpg", 16, 16, seed=3)
    doc = {
        "images": [
            {"id": 10, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 11, "file_name": "b.png", "width": 20, "height": 10},
            {"id": 12, "file_name": "c.jpg", "width": 16, "height": 16},
        ],
        "categories": [
            {"id": 7, "name": "seven"},
            {"id": 1, "name": "one"},
            {"id": 3, "name": "three"},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "bbox": [1, 2, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [30, 20, 20, 20], "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 3, "bbox": [2, 2, 4, 4], "iscrowd": 1},
            {"id": 4, "image_id": 11, "category_id": 3, "bbox": [5, 1, 0, 4], "iscrowd": 0},
            {"id": 5, "image_id": 11, "category_id": 7, "bbox": [0.5, 1.5, 3, 2]},
        ],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(doc, indent=1))
    return tmp_path
