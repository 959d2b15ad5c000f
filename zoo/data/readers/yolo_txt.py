"""YOLO txt reader: ``images/`` and ``labels/`` folders, one ``class cx cy w h`` line per box."""

from __future__ import annotations

import os

import numpy as np
import yaml
from keras.utils import bounding_boxes

from zoo.data.errors import DataError, DataReport
from zoo.data.readers._common import (
    IMAGE_EXTENSIONS,
    check_image,
    clean_boxes,
    finish_reader,
    to_float,
)

NAME_FILES = ("classes.txt", "data.yaml", "dataset.yaml")


def _names_from_yaml_text(text, path):
    """The ``names:`` entry of a data.yaml (list, inline list or ``index: name`` mapping)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DataError(f"invalid YAML ({error})", file=path) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if names is None:
        raise DataError("no 'names:' entry", file=path, field="names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DataError(
                "names mapping keys must be integers", file=path, field="names", value=list(names)
            ) from None
        if keys != list(range(len(keys))):
            raise DataError(
                "names mapping must have keys 0..C-1", file=path, field="names", value=keys
            )
        names = [names.get(k, names.get(str(k))) for k in keys]
    if not isinstance(names, list):
        raise DataError("names must be a list or a mapping", file=path, field="names", value=names)
    return [str(n) for n in names]


def find_class_names(root):
    """Class names from ``root/classes.txt`` or the ``names:`` of ``root/data.yaml``; else None."""
    for file_name in NAME_FILES:
        path = os.path.join(root, file_name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if file_name == "classes.txt":
            return [line.strip() for line in text.splitlines() if line.strip()]
        return _names_from_yaml_text(text, path)
    return None


def _parse_label_file(path, num_classes):
    """Parses one label file into (labels, normalised center_xywh boxes, line numbers)."""
    labels, boxes, line_numbers = [], [], []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split()
        if len(fields) != 5:
            raise DataError(
                f'expected 5 fields "class cx cy w h", got {len(fields)}',
                file=path,
                field=f"line {number}",
                value=text,
            )
        try:
            label = int(fields[0])
        except ValueError:
            raise DataError(
                "class must be an integer", file=path, field=f"line {number} class", value=fields[0]
            ) from None
        if not 0 <= label < num_classes:
            raise DataError(
                f"unknown class: index must be in 0..{num_classes - 1} ({num_classes} class names)",
                file=path,
                field=f"line {number} class",
                value=label,
            )
        coords = [
            to_float(v, path, f"line {number} {key}")
            for key, v in zip(("cx", "cy", "w", "h"), fields[1:], strict=True)
        ]
        labels.append(label)
        boxes.append(coords)
        line_numbers.append(number)
    return labels, boxes, line_numbers


def read_yolo(root, class_names=None, split=None, *, check_images="header"):
    """Reads a YOLO txt dataset: ``root/images/**`` with ``root/labels/**.txt`` beside them.

    Each label line is ``class cx cy w h``, normalised to the image size. An image without a
    label file has no objects. With ``split`` and a ``root/images/<split>/`` folder, only that
    split is read (Ultralytics layout ``images/train``, ``labels/train``).

    Args:
        root: Dataset folder holding ``images/`` and ``labels/``.
        class_names: Names of classes ``0..C-1``; by default from ``root/classes.txt`` or the
            ``names:`` list/mapping of ``root/data.yaml``.
        split: Optional sub-folder of ``images/`` and ``labels/``.
        check_images: ``"header"`` or ``"full"`` (PIL checks each image; sizes are needed to
            turn normalised boxes into pixels, so ``"none"`` is not accepted here).

    Returns:
        ``DetectionData`` with files sorted by path.

    Raises:
        DataError: No class names, a malformed line, an unknown class, an undecodable image.

    Example:
    ```python
    data = read_yolo("datasets/coco8", split="train")
    ```
    """
    root = os.fspath(root)
    if class_names is None:
        class_names = find_class_names(root)
        if class_names is None:
            raise DataError(
                "no class names: pass class_names=[...] or add classes.txt or data.yaml with names:",
                file=root,
            )
    class_names = list(class_names)
    image_root = os.path.join(root, "images")
    label_root = os.path.join(root, "labels")
    if split and os.path.isdir(os.path.join(image_root, split)):
        image_root = os.path.join(image_root, split)
        label_root = os.path.join(label_root, split)
    if not os.path.isdir(image_root):
        raise DataError("no images/ folder", file=root)
    image_check = "full" if check_images == "full" else "header"

    relative = []
    for folder, _, files in os.walk(image_root):
        for file_name in files:
            if file_name.lower().endswith(IMAGE_EXTENSIONS):
                relative.append(os.path.relpath(os.path.join(folder, file_name), image_root))
    relative.sort()

    report = DataReport()
    paths, sizes, raw_boxes, labels, owners, where = [], [], [], [], [], []
    for rel in relative:
        path = os.path.join(image_root, rel)
        sizes.append(check_image(path, image_check))
        label_path = os.path.join(label_root, os.path.splitext(rel)[0] + ".txt")
        if os.path.isfile(label_path):
            file_labels, file_boxes, line_numbers = _parse_label_file(label_path, len(class_names))
            raw_boxes += file_boxes
            labels += file_labels
            owners += [len(paths)] * len(file_labels)
            where += [f"{label_path}: line {n}" for n in line_numbers]
        paths.append(path)

    owners = np.asarray(owners, np.int64)
    widths = np.asarray([w for w, _ in sizes], np.float32)[owners].reshape(-1, 1)
    heights = np.asarray([h for _, h in sizes], np.float32)[owners].reshape(-1, 1)
    boxes = np.asarray(raw_boxes, np.float32).reshape(-1, 4)
    if len(boxes):
        boxes = np.asarray(
            bounding_boxes.convert_format(
                boxes, source="rel_center_xywh", target="xyxy", height=heights, width=widths
            )
        )
    boxes, keep = clean_boxes(boxes, heights, widths, report, lambda j: where[j])
    return finish_reader(
        paths,
        boxes,
        keep,
        owners,
        labels,
        class_names=class_names,
        report=report,
        source=root,
    )
