"""Writers: any ``DetectionData`` to a COCO-JSON set on disk, which ``read_coco`` reads back."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

__all__ = ["write_coco"]


def write_coco(data, folder, *, start_id=1):
    """Writes a detection set as PNG files plus a COCO ``instances.json``.

    Images go to ``folder/images/<id:06d>.png`` (``read_coco`` finds them from the JSON's
    folder); image ids count up from ``start_id`` and so do annotation ids. Give a second set
    written into another folder a ``start_id`` past the first one's ids, and file names and ids
    stay unique across both (Ultralytics' YOLO copy of the two relies on it). Categories get ids
    ``1..C`` in ``data.class_names`` order; ``bbox`` is ``[x, y, width, height]`` in pixels and
    ``area`` the box's width x height.

    Args:
        data: ``DetectionData`` from any source (decoded in order, images re-encoded as PNG).
        folder: Output folder (created).
        start_id: First image id (an int >= 1).

    Returns:
        Path of ``folder/instances.json``.

    Example:
    ```python
    path = write_coco(zoo.data.synthetic_shapes(100), "/tmp/shapes")
    data = zoo.data.read_coco(path)
    ```
    """
    if isinstance(start_id, bool) or not isinstance(start_id, int) or start_id < 1:
        raise ValueError(f"start_id must be an int >= 1. Received: start_id={start_id!r}")
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, element in enumerate(data.dataset.as_numpy_iterator()):
        image_id = start_id + i
        pixels = element["images"]
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        name = f"{image_id:06d}.png"
        tf.io.write_file(str(folder / "images" / name), tf.io.encode_png(pixels))
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        boxes = element["bounding_boxes"]["boxes"]
        labels = element["bounding_boxes"]["labels"]
        for box, label in zip(boxes, labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": start_id + len(annotations),
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(data.class_names)]
    path = folder / "instances.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path
