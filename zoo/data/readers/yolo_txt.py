"""YOLO txt reader: one ``class cx cy w h`` line per box, in the two layouts tools write.

- Ultralytics: a ``data.yaml`` (``path``, ``train`` / ``val`` / ``test``, ``names``); labels
  are found by replacing the last ``/images/`` of an image path with ``/labels/``.
- A plain folder: ``images/[<split>/]**`` with ``labels/[<split>/]**.txt`` beside them.
"""

from __future__ import annotations

import os
import re

import numpy as np
import yaml

from zoo.data.errors import DataError, DataReport
from zoo.data.readers._common import (
    IMAGE_EXTENSIONS,
    check_image,
    clean_boxes,
    finish_reader,
    read_text,
    to_float,
    walk_files,
)

NAME_FILES = ("classes.txt", "data.yaml", "dataset.yaml")
YAML_FILES = ("data.yaml", "dataset.yaml")
# split asked for -> data.yaml key
SPLIT_KEYS = {"train": "train", "validation": "val", "val": "val", "valid": "val", "test": "test"}
# split asked for -> images/<folder> names tried in the plain layout (Roboflow writes "valid")
SPLIT_FOLDERS = {
    "validation": ("validation", "val", "valid"),
    "val": ("val", "valid", "validation"),
    "valid": ("valid", "val", "validation"),
}
KNOWN_SPLIT_FOLDERS = ("train", "val", "valid", "validation", "test")
NO_NAMES_HINT = (
    "add classes.txt (one name a line) or a data.yaml with names: to the dataset "
    "(class_names=[...] in Python; the recipes have no flag for class names)"
)


def _load_yaml(path):
    """A data.yaml as a dict (``DataError`` for bad YAML or another top-level type)."""
    text = read_text(path, "dataset file")
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        raise DataError(f"invalid YAML ({error})", file=path) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise DataError(
            "must be a YAML mapping (path:, train:, val:, names:)",
            file=path,
            field="top level",
            value=type(doc).__name__,
        )
    return doc


def _names_from_doc(doc, path):
    """The ``names:`` entry of a data.yaml (list or ``index: name`` mapping); ``nc:`` alone gives
    ``class0..``; neither gives ``None``."""
    names = doc.get("names")
    if names is None:
        nc = doc.get("nc")
        if isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
            return [f"class{i}" for i in range(nc)]
        return None
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
    if not names:
        raise DataError("names is empty", file=path, field="names")
    for i, name in enumerate(names):
        if not isinstance(name, (str, int, float)) or isinstance(name, bool):
            raise DataError(
                "a class name must be a string", file=path, field=f"names[{i}]", value=name
            )
    return [str(n) for n in names]


def _names_from_yaml_text(text, path):
    """The ``names:`` entry of a data.yaml text (kept for callers of the old helper)."""
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        raise DataError(f"invalid YAML ({error})", file=path) from None
    names = _names_from_doc(doc, path) if isinstance(doc, dict) else None
    if names is None:
        raise DataError("no 'names:' entry", file=path, field="names")
    return names


def find_class_names(root):
    """Class names from ``root/classes.txt`` or the ``names:`` of ``root/data.yaml`` (or
    ``dataset.yaml``); else None."""
    for file_name in NAME_FILES:
        path = os.path.join(root, file_name)
        if not os.path.isfile(path):
            continue
        text = read_text(path, "class names file")
        if file_name == "classes.txt":
            names = [line.strip() for line in text.splitlines() if line.strip()]
            if not names:
                raise DataError("no class names in the file", file=path)
            return names
        return _names_from_yaml_text(text, path)
    return None


def label_path_for(image_path):
    """The Ultralytics label file of an image: the last ``/images/`` becomes ``/labels/`` and the
    extension ``.txt`` (an image outside any ``images/`` folder has its label file beside it)."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    path = labels.join(image_path.rsplit(images, 1))
    return os.path.splitext(path)[0] + ".txt"


def _parse_label_file(path, num_classes):
    """Parses one label file into (labels, normalised center_xywh boxes, line numbers)."""
    labels, boxes, line_numbers = [], [], []
    lines = read_text(path, "label file").splitlines()
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
        if not re.fullmatch(r"[+-]?[0-9]+", fields[0]):
            raise DataError(
                "class must be an integer", file=path, field=f"line {number} class", value=fields[0]
            )
        label = int(fields[0])
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


def _is_image(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _find_yaml(root):
    """``(yaml path, doc)`` when ``root`` is a data.yaml, or a folder whose data.yaml /
    dataset.yaml lists splits (``train:`` / ``val:`` / ``test:``); else ``(None, None)``."""
    if os.path.isfile(root):
        if not root.lower().endswith((".yaml", ".yml")):
            raise DataError(
                "not a YOLO dataset file: pass --data a data.yaml or a dataset folder", file=root
            )
        return root, _load_yaml(root)
    for file_name in YAML_FILES:
        path = os.path.join(root, file_name)
        if os.path.isfile(path):
            doc = _load_yaml(path)
            if any(key in doc for key in ("train", "val", "test")):
                return path, doc
    return None, None


def _dataset_roots(yaml_path, doc):
    """The folders a data.yaml's split entries are relative to: ``path`` (relative to the yaml's
    folder), then the yaml's folder itself."""
    base = os.path.dirname(os.path.abspath(yaml_path))
    root = doc.get("path")
    if root in (None, ""):
        return [base]
    if not isinstance(root, str):
        raise DataError("must be a folder path", file=yaml_path, field="path", value=root)
    return list(dict.fromkeys([os.path.join(base, os.path.expanduser(root)), base]))


def _relative_candidates(entry, roots):
    """Where a relative entry may be: under each root, and without a leading ``../`` (as
    Ultralytics retries)."""
    entry = os.path.expanduser(entry)
    if os.path.isabs(entry):
        return [entry]
    names = [entry]
    if entry.startswith("../"):
        names.append(entry[3:])
    return list(dict.fromkeys(os.path.normpath(os.path.join(r, n)) for r in roots for n in names))


def _images_from_list_file(list_path, roots):
    """Image paths listed one a line in a .txt file (relative to ``path`` or the list's folder)."""
    folders = [*roots, os.path.dirname(list_path)]
    paths = []
    for number, line in enumerate(read_text(list_path, "image list").splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        candidates = _relative_candidates(entry, folders)
        found = next((c for c in candidates if os.path.isfile(c)), None)
        if found is None:
            raise DataError(
                f"image not found (tried {', '.join(candidates)}); fix the list or the data.yaml "
                "path: passed with --data",
                file=list_path,
                field=f"line {number}",
                value=entry,
            )
        paths.append(found)
    return paths


def _images_from_yaml(yaml_path, doc, split):
    """The image paths of one split of a data.yaml, in listed order."""
    key = SPLIT_KEYS.get(split or "train", split)
    if doc.get(key) is None:
        present = [k for k in ("train", "val", "test") if doc.get(k) is not None]
        raise DataError(
            f"no {key!r} entry for split {split or 'train'!r} (the file has: "
            f"{', '.join(present) or 'none'}); add {key}: or pass another --data",
            file=yaml_path,
            field=key,
        )
    entries = doc[key] if isinstance(doc[key], list) else [doc[key]]
    roots = _dataset_roots(yaml_path, doc)
    paths, listed = [], {}
    for i, entry in enumerate(entries):
        field = key if len(entries) == 1 else f"{key}[{i}]"
        if not isinstance(entry, str) or not entry:
            raise DataError(
                "must be an image folder, a .txt list of images, or a list of those",
                file=yaml_path,
                field=field,
                value=entry,
            )
        candidates = _relative_candidates(entry, roots)
        found = next((c for c in candidates if os.path.exists(c)), None)
        if found is None:
            raise DataError(
                f"not found (tried {', '.join(candidates)}); fix path: or {key}: in the file "
                "passed with --data",
                file=yaml_path,
                field=field,
                value=entry,
            )
        if os.path.isdir(found) and os.path.realpath(found) == os.path.realpath(os.sep):
            raise DataError(
                "is the file-system root, not an image folder; give the split's image folder",
                file=yaml_path,
                field=field,
                value=entry,
            )
        if os.path.isdir(found):
            found_paths = [p for p in walk_files(found) if _is_image(p)]
        elif _is_image(found):
            found_paths = [found]
        else:
            found_paths = _images_from_list_file(found, roots)
        for path in found_paths:
            real = os.path.realpath(path)
            if real in listed:
                raise DataError(
                    f"image listed twice (also via {listed[real]})",
                    # a .txt list names itself; a folder entry names the data.yaml
                    file=found if os.path.isfile(found) else yaml_path,
                    field="image" if os.path.isfile(found) else field,
                    value=path,
                )
            listed[real] = found
            paths.append(path)
    return paths


def _plain_split_folder(root, image_root, split):
    """``images/<split>`` of the plain layout, or ``None`` when images/ has no split folders."""
    if not split:
        return None
    for name in SPLIT_FOLDERS.get(split, (split,)):
        if os.path.isdir(os.path.join(image_root, name)):
            return name
    present = [n for n in KNOWN_SPLIT_FOLDERS if os.path.isdir(os.path.join(image_root, n))]
    if present:
        tried = [os.path.join(image_root, n) for n in SPLIT_FOLDERS.get(split, (split,))]
        raise DataError(
            f"no folder for split {split!r} (tried {', '.join(tried)}; images/ has "
            f"{', '.join(present)}); add it or pass --data a data.yaml naming the splits",
            file=root,
        )
    return None


def read_yolo(root, class_names=None, split=None, *, check_images="header"):
    """Reads a YOLO txt dataset: an Ultralytics ``data.yaml``, or ``images/`` + ``labels/``.

    Each label line is ``class cx cy w h``, normalised to the image size. An image without a
    label file has no objects.

    ``root`` may be:

    - a ``data.yaml`` / ``dataset.yaml`` file, or a folder holding one with ``train:`` /
      ``val:`` / ``test:`` entries (Ultralytics). ``path:`` is the dataset root (relative to the
      yaml's folder; missing means that folder); each split entry is an image folder, a ``.txt``
      list of image paths (relative to ``path``), or a list of those. ``split`` ``"train"`` reads
      ``train:``, ``"validation"`` / ``"val"`` reads ``val:`` (``None`` means ``"train"``). Each
      image's label file replaces the path's last ``/images/`` with ``/labels/`` and the
      extension with ``.txt``.
    - a folder with ``images/`` and ``labels/``: every image under ``images/`` (or
      ``images/<split>/``, ``val`` / ``valid`` standing in for ``validation``), its label file the
      same relative path under ``labels/``.

    Args:
        root: A data.yaml or a dataset folder (see above).
        class_names: Names of classes ``0..C-1``; by default the yaml's ``names:`` (a list or
            ``index: name`` mapping), or ``classes.txt`` / ``data.yaml`` in the folder.
        split: Split to read (see above).
        check_images: ``"header"`` or ``"full"`` (PIL checks each image; sizes are needed to
            turn normalised boxes into pixels, so ``"none"`` is not accepted here).

    Returns:
        ``DetectionData`` with files in list order (folders sorted by path).

    Raises:
        DataError: No class names, a split or image not found (listing the paths tried), a
            malformed line, an unknown class, an undecodable image.

    Example:
    ```python
    data = read_yolo("datasets/coco8/data.yaml", split="val")
    ```
    """
    root = os.fspath(root)
    if not os.path.exists(root):
        raise DataError("not found; pass --data a data.yaml or a YOLO dataset folder", file=root)
    yaml_path, doc = _find_yaml(root)
    if yaml_path is not None:
        source = yaml_path
        if class_names is None:
            class_names = _names_from_doc(doc, yaml_path)
            if class_names is None:
                raise DataError(
                    f"no class names: add names: to the file ({NO_NAMES_HINT})",
                    file=yaml_path,
                    field="names",
                )
        image_paths = _images_from_yaml(yaml_path, doc, split)
        label_paths = [label_path_for(p) for p in image_paths]
    else:
        source = root
        image_root = os.path.join(root, "images")
        label_root = os.path.join(root, "labels")
        if not os.path.isdir(image_root):
            tried = [os.path.join(root, n) for n in (*YAML_FILES, "images")]
            raise DataError(
                f"no YOLO dataset here (tried {', '.join(tried)}); pass --data a data.yaml or a "
                "folder with images/ and labels/",
                file=root,
            )
        if class_names is None:
            class_names = find_class_names(root)
            if class_names is None:
                raise DataError(f"no class names: {NO_NAMES_HINT}", file=root)
        folder = _plain_split_folder(root, image_root, split)
        if folder is not None:
            image_root = os.path.join(image_root, folder)
            label_root = os.path.join(label_root, folder)
        image_paths = [p for p in walk_files(image_root) if _is_image(p)]
        label_paths = [
            os.path.join(label_root, os.path.splitext(os.path.relpath(p, image_root))[0] + ".txt")
            for p in image_paths
        ]
    class_names = list(class_names)
    image_check = "full" if check_images == "full" else "header"

    report = DataReport()
    sizes, raw_boxes, labels, owners, where = [], [], [], [], []
    for index, (path, label_path) in enumerate(zip(image_paths, label_paths, strict=True)):
        sizes.append(check_image(path, image_check))
        if os.path.isfile(label_path):
            file_labels, file_boxes, line_numbers = _parse_label_file(label_path, len(class_names))
            raw_boxes += file_boxes
            labels += file_labels
            owners += [index] * len(file_labels)
            where += [f"{label_path}: line {n}" for n in line_numbers]

    owners = np.asarray(owners, np.int64)
    widths = np.asarray([w for w, _ in sizes], np.float64).reshape(-1)[owners].reshape(-1, 1)
    heights = np.asarray([h for _, h in sizes], np.float64).reshape(-1)[owners].reshape(-1, 1)
    cx, cy, w, h = np.asarray(raw_boxes, np.float64).reshape(-1, 4).T
    # rel_center_xywh -> absolute xyxy, in float64 so huge values cannot give inf - inf
    boxes = np.stack(
        [(cx - w / 2) * widths[:, 0], (cy - h / 2) * heights[:, 0],
         (cx + w / 2) * widths[:, 0], (cy + h / 2) * heights[:, 0]],
        axis=-1,
    )  # fmt: skip
    boxes, keep = clean_boxes(boxes, heights, widths, report, lambda j: where[j])
    return finish_reader(
        image_paths,
        boxes,
        keep,
        owners,
        labels,
        class_names=class_names,
        report=report,
        source=source,
    )
