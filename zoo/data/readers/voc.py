"""Pascal VOC XML reader: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np

from zoo.data.errors import SKIPPED_DIFFICULT, DataError, DataReport
from zoo.data.readers._common import (
    IMAGE_EXTENSIONS,
    check_image,
    clean_boxes,
    finish_reader,
    first_file,
    read_text,
    to_float,
    to_size,
)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


# split asked for -> ImageSets/Main/<name>.txt names tried
SPLIT_FILES = {"validation": ("validation", "val"), "valid": ("valid", "val")}
CLASS_NAMES_FILE = "classes.txt"


def find_voc_root(path):
    """The VOC set folder (the one holding ``Annotations/``) for ``path``: ``path`` itself, the
    single ``VOC20xx`` inside a ``VOCdevkit/`` (or inside ``path/VOCdevkit/``); ``None`` when
    there is none.

    Raises:
        DataError: The devkit holds several sets (the message lists them).
    """
    path = os.fspath(path)
    if os.path.isdir(os.path.join(path, "Annotations")):
        return path
    devkit = os.path.join(path, "VOCdevkit")
    devkit = devkit if os.path.isdir(devkit) else path
    if not os.path.isdir(devkit):
        return None
    sets = sorted(
        name
        for name in os.listdir(devkit)
        if os.path.isdir(os.path.join(devkit, name, "Annotations"))
    )
    if len(sets) > 1:
        raise DataError(
            f"holds {len(sets)} VOC sets ({', '.join(sets)}); pass the one you want, e.g. "
            f"--data {os.path.join(devkit, sets[0])}",
            file=devkit,
        )
    return os.path.join(devkit, sets[0]) if sets else None


def _image_candidates(folders, file_name, image_id):
    """Where an annotation's image may be: ``<filename>``, its basename, ``<filename>`` with an
    image extension when it has none, then ``<id>.jpg`` / ``.png`` etc., in each folder."""
    names = []
    if file_name:
        names += [file_name, os.path.basename(file_name)]
        if not os.path.splitext(file_name)[1]:
            names += [os.path.basename(file_name) + ext for ext in (".jpg", ".png")]
    names += [image_id + ext for ext in IMAGE_EXTENSIONS]
    return list(dict.fromkeys(os.path.join(d, n) for d in folders for n in names))


def _split_ids(root, split):
    """Ids listed in ``ImageSets/Main/<split>.txt`` (first word of each line), checked unique."""
    main = os.path.join(root, "ImageSets", "Main")
    tried = [os.path.join(main, f"{name}.txt") for name in SPLIT_FILES.get(split, (split,))]
    split_file = first_file(tried)
    if split_file is None:
        present = sorted(
            n[:-4] for n in (os.listdir(main) if os.path.isdir(main) else [])
            if n.endswith(".txt") and "_" not in n
        )  # fmt: skip
        raise DataError(
            f"no split file for split {split!r} (tried {', '.join(tried)}; ImageSets/Main has "
            f"{', '.join(present) or 'no split files'})",
            file=tried[0],
        )
    ids, seen = [], {}
    for number, line in enumerate(read_text(split_file, "split file").splitlines(), start=1):
        if not line.strip():
            continue
        image_id = line.split()[0]
        if image_id in seen:
            raise DataError(
                f"id listed twice (also line {seen[image_id]})",
                file=split_file,
                field=f"line {number}",
                value=image_id,
            )
        seen[image_id] = number
        ids.append(image_id)
    return ids, split_file


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
    except OSError as error:
        raise DataError(
            f"cannot read annotation file ({error.strerror or error})", file=path
        ) from None
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
            to_size(_text(size_node, "width", path, "size.width"), path, "size.width"),
            to_size(_text(size_node, "height", path, "size.height"), path, "size.height"),
        )
    boxes, labels, where = [], [], []
    for i, obj in enumerate(root.findall("object")):
        field = f"object[{i}]"
        name = _text(obj, "name", path, f"{field}.name")
        if name not in class_index:
            raise DataError(
                f"unknown class (not in the {len(class_index)} class names: "
                f"{', '.join(class_index)}); list the dataset's names in {CLASS_NAMES_FILE} "
                "(one a line) beside Annotations/, or pass class_names=[...] in Python",
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


def read_voc(
    root,
    split=None,
    class_names=None,
    *,
    image_dir=None,
    skip_difficult=False,
    check_images="header",
):
    """Reads a Pascal VOC set (``VOCdevkit/VOC2007``-like).

    Corners (1-based, inclusive) become pixel-edge "xyxy" boxes ``[xmin - 1, ymin - 1, xmax,
    ymax]``. Boxes outside the image are clipped, zero-area ones dropped (counted in ``report``).

    Args:
        root: The set folder holding ``Annotations/`` (``VOC2007/``), or a ``VOCdevkit/`` with
            a single such set inside (or a folder holding ``VOCdevkit/``).
        split: Read the ids in ``ImageSets/Main/<split>.txt`` (``"validation"`` falls back to
            ``val.txt``); ``None`` reads every XML file.
        class_names: Class list (labels are indices into it); defaults to the names in
            ``classes.txt`` beside ``Annotations/`` (one a line), else the 20 VOC classes.
        image_dir: Folder tried before ``JPEGImages/`` for each image.
        skip_difficult: Skip objects marked ``<difficult>1</difficult>`` (counted); by default
            they are kept as ordinary boxes.
        check_images: ``"header"`` (default), ``"full"`` or ``"none"`` (see ``read_coco``).

    Each image is looked up in ``image_dir`` (when given), then ``JPEGImages/``: by the XML's
    ``<filename>``, its basename, then the XML's stem with ``.jpg``, ``.png``, ...

    Returns:
        ``DetectionData`` in split-file order (or sorted by file name).

    Raises:
        DataError: No set found, several sets in a devkit, bad XML, a missing field, an unknown
            class name, a duplicate id, a missing (paths tried are listed) or undecodable image.

    Example:
    ```python
    data = read_voc("VOCdevkit/VOC2007", split="trainval")
    ```
    """
    given = os.fspath(root)
    root = find_voc_root(given)
    if root is None:
        tried = [os.path.join(given, "Annotations"), os.path.join(given, "*", "Annotations")]
        raise DataError(
            f"no VOC set here (tried {', '.join(tried)}); pass --data the VOC2007-like folder "
            "or the VOCdevkit/ holding it",
            file=given,
        )
    if class_names is None:
        names_file = os.path.join(root, CLASS_NAMES_FILE)
        if os.path.isfile(names_file):
            class_names = [n.strip() for n in read_text(names_file).splitlines() if n.strip()]
            if not class_names:
                raise DataError("no class names in the file", file=names_file)
    class_names = list(VOC_CLASSES if class_names is None else class_names)
    class_index = {name: i for i, name in enumerate(class_names)}
    ann_dir = os.path.join(root, "Annotations")
    split_file = None
    if split is not None:
        ids, split_file = _split_ids(root, split)
    else:
        ids = sorted(os.path.splitext(n)[0] for n in os.listdir(ann_dir) if n.endswith(".xml"))
    folders = [os.fspath(image_dir)] if image_dir is not None else []
    folders.append(os.path.join(root, "JPEGImages"))

    report = DataReport()
    paths, heights, widths = [], [], []
    raw_boxes, labels, owners, where = [], [], [], []
    for image_id in ids:
        xml_path = os.path.join(ann_dir, f"{image_id}.xml")
        if split_file is not None and not os.path.isfile(xml_path):
            raise DataError(
                f"annotation file not found (the id is listed in {split_file})", file=xml_path
            )
        file_name, size, boxes, file_labels, file_where = _parse_xml(
            xml_path, class_index, skip_difficult, report
        )
        candidates = _image_candidates(folders, file_name, image_id)
        path = first_file(candidates)
        if path is None:
            raise DataError(
                f"image not found (tried {', '.join(candidates)}); pass the image folder with "
                "--image-dir (image_dir= in Python)",
                file=xml_path,
                field="filename",
                value=file_name or image_id,
            )
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
        np.asarray(raw_boxes, np.float64).reshape(-1, 4),
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
