"""benchmarks/bench_yolo.py's data hand-off to Ultralytics: the YOLO-format copy of the COCO set."""

from pathlib import Path

import numpy as np

from zoo.data import load_detection_data, split_detection_data
from zoo.data.readers.yolo_txt import read_yolo


def _boxes(data):
    return [
        (e["bounding_boxes"]["boxes"], e["bounding_boxes"]["labels"])
        for e in data.dataset.as_numpy_iterator()
    ]


def test_yolo_split_holds_the_same_images_boxes_and_classes_as_the_coco_split(
    tmp_path, load_script
):
    bench = load_script("benchmarks/bench_yolo.py")
    ann = bench.write_coco_shapes(tmp_path / "coco", 12, seed=3, image_size=64)
    coco = load_detection_data(str(ann), split="train")
    train, val = split_detection_data(coco, 0.3, seed=0)
    yaml = bench.write_yolo_split(tmp_path / "yolo", ann, {"train": train.files, "val": val.files})
    assert "names:" in yaml.read_text()
    listed = (yaml.parent / "val.txt").read_text().split()
    assert [Path(p).name for p in listed] == [Path(f).name for f in val.files]
    assert all(Path(p).resolve().is_file() for p in listed)
    for split, part in (("train", train), ("val", val)):
        copy = read_yolo(yaml.parent, split=split)
        assert copy.class_names == coco.class_names
        assert [Path(f).name for f in copy.files] == [Path(f).name for f in part.files]
        for (b1, l1), (b2, l2) in zip(_boxes(part), _boxes(copy), strict=True):
            np.testing.assert_array_equal(l1, l2)
            # 6 decimals of a normalised coordinate on a 64-pixel image
            np.testing.assert_allclose(b1, b2, atol=1e-3)
