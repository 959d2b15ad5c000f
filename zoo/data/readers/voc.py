"""Pascal VOC XML reader: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np

from zoo.data.errors import SKIPPED_DIFFICULT, DataError, DataReport
from zoo.data.readers._common import check_image, clean_boxes, finish_reader, to_float

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def _text(node, tag, file, field, required=True):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise DataError(f"missing <{tag}>", file=file, field=field)
        return None
    return child.text.strip()


def _parse_xml(path, class_index, skip_difficult, report):
    """One annotation file -> (file_name, size or None, boxes xyxy, labels, locations)."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise DataError("annotation file not found", file=path) from None
    except ET.ParseError as error:
        line, column = error.position
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        message = str(error).split(":")[0]
        raise DataError(
            f"invalid XML: {message}", file=path, field=f"line {line} column {column}", value=text
        ) from None
    file_name = _text(root, "filename", path, "annotation.filename", required=False)
    size = None
    size_node = root.find("size")
    if size_node is not None and size_node.find("width") is not None:
        size = (
            to_float(_text(size_node, "width", path, "size.width"), path, "size.width"),
            to_float(_text(size_node, "height", path, "size.height"), path, "size.height"),
        )
    boxes, labels, where = [], [], []
    for i, obj in enumerate(root.findall("object")):
        field = f"object[{i}]"
        name = _text(obj, "name", path, f"{field}.name")
        if name not in class_index:
            raise DataError(
                f"unknown class (not in the {len(class_index)} class names: "
                f"{', '.join(class_index)})",
                file=path,
                field=f"{field}.name",
                value=name,
            )
        difficult = _text(obj, "difficult", path, f"{field}.difficult", required=False)
        if skip_difficult and difficult not in (None, "0"):
            report.add(SKIPPED_DIFFICULT, f"{path}: {field}")
            continue
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise DataError("missing <bndbox>", file=path, field=field)
        coords = [
            to_float(_text(bndbox, k, path, f"{field}.bndbox.{k}"), path, f"{field}.bndbox.{k}")
            for k in ("xmin", "ymin", "xmax", "ymax")
        ]
        # VOC corners are 1-based inclusive pixel indices; pixel edges are (x - 1) .. x.
        boxes.append([coords[0] - 1, coords[1] - 1, coords[2], coords[3]])
        labels.append(class_index[name])
        where.append(f"{path}: {field}.bndbox")
    return file_name, size, boxes, labels, where


def read_voc(root, split=None, class_names=None, *, skip_difficult=False, check_images="header"):
    """Reads a Pascal VOC folder (``VOCdevkit/VOC2007``-like).

    Corners (1-based, inclusive) become pixel-edge "xyxy" boxes ``[xmin - 1, ymin - 1, xmax,
    ymax]``. Boxes outside the image are clipped, zero-area ones dropped (counted in ``report``).

    Args:
        root: Folder holding ``Annotations/`` and ``JPEGImages/``.
        split: Read the ids in ``ImageSets/Main/<split>.txt``; ``None`` reads every XML file.
        class_names: Class list (labels are indices into it); defaults to the 20 VOC classes.
        skip_difficult: Skip objects marked ``<difficult>1</difficult>`` (counted); by default
            they are kept as ordinary boxes.
        check_images: ``"header"`` (default), ``"full"`` or ``"none"`` (see ``read_coco``).

    Returns:
        ``DetectionData`` in split-file order (or sorted by file name).

    Raises:
        DataError: Bad XML, a missing field, an unknown class name, a missing or undecodable image.

    Example:
    ```python
    data = read_voc("VOCdevkit/VOC2007", split="trainval")
    ```
    """
    root = os.fspath(root)
    class_names = list(VOC_CLASSES if class_names is None else class_names)
    class_index = {name: i for i, name in enumerate(class_names)}
    ann_dir = os.path.join(root, "Annotations")
    if not os.path.isdir(ann_dir):
        raise DataError("no Annotations/ folder", file=root)
    if split is not None:
        split_file = os.path.join(root, "ImageSets", "Main", f"{split}.txt")
        if not os.path.isfile(split_file):
            raise DataError(f"no split file for split {split!r}", file=split_file)
        with open(split_file, encoding="utf-8") as f:
            ids = [line.split()[0] for line in f if line.strip()]
    else:
        ids = sorted(os.path.splitext(n)[0] for n in os.listdir(ann_dir) if n.endswith(".xml"))

    report = DataReport()
    paths, heights, widths = [], [], []
    raw_boxes, labels, owners, where = [], [], [], []
    for image_id in ids:
        xml_path = os.path.join(ann_dir, f"{image_id}.xml")
        file_name, size, boxes, file_labels, file_where = _parse_xml(
            xml_path, class_index, skip_difficult, report
        )
        path = os.path.join(root, "JPEGImages", file_name or f"{image_id}.jpg")
        file_size = check_image(path, check_images)
        if file_size is not None:
            if size is not None and tuple(size) != tuple(file_size):
                raise DataError(
                    f"disagrees with the image file {path} ({file_size[0]}x{file_size[1]})",
                    file=xml_path,
                    field="size width x height",
                    value=f"{size[0]:g}x{size[1]:g}",
                )
            size = file_size
        if size is None:
            raise DataError("missing <size> (and check_images='none')", file=xml_path)
        raw_boxes += boxes
        labels += file_labels
        where += file_where
        owners += [len(paths)] * len(boxes)
        paths.append(path)
        widths.append(size[0])
        heights.append(size[1])

    owners = np.asarray(owners, np.int64)
    boxes, keep = clean_boxes(
        np.asarray(raw_boxes, np.float32).reshape(-1, 4),
        np.asarray(heights, np.float32)[owners],
        np.asarray(widths, np.float32)[owners],
        report,
        lambda j: where[j],
    )
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
