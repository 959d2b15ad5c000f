"""COCO detection JSON + image folder reader."""

from __future__ import annotations

import json
import os

import numpy as np

from zoo.data.errors import SKIPPED_CROWD, DataError, DataReport
from zoo.data.readers._common import (
    check_image,
    clean_boxes,
    finish_reader,
    read_text,
    to_float,
    to_size,
)


def _load_json(path):
    text = read_text(path, "annotation file")
    try:
        return json.loads(text)
    except RecursionError:
        raise DataError("invalid JSON: nested too deeply", file=path) from None
    except json.JSONDecodeError as error:
        lines = text.splitlines()
        line = lines[error.lineno - 1] if 0 < error.lineno <= len(lines) else ""
        snippet = line[max(0, error.colno - 21) : error.colno + 20].strip()
        raise DataError(
            f"invalid JSON: {error.msg}",
            file=path,
            field=f"line {error.lineno} column {error.colno}",
            value=snippet,
        ) from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise DataError(f"invalid JSON: {error}", file=path) from None


def _require(mapping, key, file, field):
    if not isinstance(mapping, dict) or key not in mapping:
        raise DataError(f"missing key {key!r}", file=file, field=field)
    return mapping[key]


def _require_list(mapping, key, file, default=None):
    value = mapping.get(key, default) if default is not None else _require(mapping, key, file, key)
    if not isinstance(value, list):
        raise DataError("must be a list", file=file, field=key, value=type(value).__name__)
    return value


def _check_id(value, seen, file, field):
    """An integer id not seen before in the same list; ``seen`` maps ids to their field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError("id must be an integer", file=file, field=field, value=value)
    if seen is not None:
        if value in seen:
            raise DataError(
                f"duplicate id (also {seen[value]})", file=file, field=field, value=value
            )
        seen[value] = field
    return value


def image_folders(annotation_file, image_dir=None):
    """The folders a COCO ``file_name`` is looked up in, in order: ``image_dir`` (when given),
    the JSON's own folder, ``images/`` beside the JSON, and ``images/`` one folder up."""
    folder = os.path.dirname(os.path.abspath(os.fspath(annotation_file)))
    folders = [os.fspath(image_dir)] if image_dir is not None else []
    folders += [
        folder,
        os.path.join(folder, "images"),
        os.path.join(os.path.dirname(folder), "images"),
    ]
    return list(dict.fromkeys(folders))


class _ImageResolver:
    """Finds each ``file_name`` as annotation tools write it: under each folder of
    ``image_folders``, then its basename under the same folders. The rule that found the
    previous image is tried first, so a set costs about one look-up per image."""

    def __init__(self, folders):
        self.folders = folders
        self.rules = [(d, False) for d in folders] + [(d, True) for d in folders]
        self.last = 0

    def candidates(self, file_name):
        return [
            os.path.join(d, os.path.basename(file_name) if base else file_name)
            for d, base in self.rules
        ]

    def __call__(self, file_name):
        candidates = self.candidates(file_name)
        for index in [self.last, *range(len(candidates))]:
            if os.path.isfile(candidates[index]):
                self.last = index
                return candidates[index]
        return None


def read_coco(annotation_file, image_dir=None, *, skip_crowd=True, check_images="header"):
    """Reads a COCO detection annotation file and its image folder.

    Category ids are mapped to contiguous labels ``0..C-1`` in sorted-id order, names from the
    ``categories`` list. Crowd annotations (``iscrowd=1``) are skipped and counted. Images without
    annotations are kept (no boxes). Boxes outside the image are clipped, zero-area ones dropped;
    both are counted in ``report`` and logged.

    Args:
        annotation_file: ``instances_*.json``-style file.
        image_dir: Folder that ``images[i].file_name`` is relative to; ``None`` looks in the
            JSON's folder, ``images/`` beside it and ``images/`` one folder up (``image_folders``),
            then for the basename in those folders.
        skip_crowd: Skip ``iscrowd=1`` boxes (else keep them as ordinary boxes).
        check_images: ``"header"`` (default: PIL reads each header: missing / non-image files
            fail here, with the file name), ``"full"`` (decode every image with PIL) or
            ``"none"`` (trust the JSON sizes).

    Returns:
        ``DetectionData`` with ``files`` in the JSON ``images`` order.

    Raises:
        DataError: Bad JSON, a missing field, a malformed bbox, an unknown category or image id,
            a missing or undecodable image, or a size that disagrees with the image file.

    Example:
    ```python
    data = read_coco("annotations/instances_val2017.json", "val2017")
    print(data.class_names[:3], data.num_examples)
    ```
    """
    annotation_file = os.fspath(annotation_file)
    name = annotation_file
    doc = _load_json(annotation_file)
    if not isinstance(doc, dict):
        raise DataError(
            "must be a JSON object with images, categories and annotations",
            file=name,
            field="top level",
            value=type(doc).__name__,
        )
    categories = _require_list(doc, "categories", name)
    images = _require_list(doc, "images", name)
    annotations = _require_list(doc, "annotations", name, default=[])

    category_names, category_fields = {}, {}
    for i, category in enumerate(categories):
        field = f"categories[{i}]"
        cid = _check_id(_require(category, "id", name, field), category_fields, name, f"{field}.id")
        category_name = _require(category, "name", name, field)
        if not isinstance(category_name, str):
            raise DataError(
                "must be a string", file=name, field=f"{field}.name", value=category_name
            )
        category_names[cid] = category_name
    sorted_ids = sorted(category_names)
    label_of = {cid: label for label, cid in enumerate(sorted_ids)}
    class_names = [category_names[cid] for cid in sorted_ids]

    report = DataReport()
    resolve = _ImageResolver(image_folders(annotation_file, image_dir))
    paths, heights, widths, index_of, image_fields = [], [], [], {}, {}
    for i, image in enumerate(images):
        field = f"images[{i}]"
        image_id = _check_id(_require(image, "id", name, field), image_fields, name, f"{field}.id")
        file_name = _require(image, "file_name", name, field)
        if not isinstance(file_name, str) or not file_name:
            raise DataError(
                "must be a non-empty path", file=name, field=f"{field}.file_name", value=file_name
            )
        path = resolve(file_name)
        if path is None:
            tried = resolve.candidates(file_name)
            raise DataError(
                f"image not found (tried {', '.join(tried)}); pass the image folder with "
                "--image-dir (image_dir= in Python)",
                file=name,
                field=f"{field}.file_name",
                value=file_name,
            )
        size = check_image(path, check_images)
        if size is None:
            w = to_size(_require(image, "width", name, field), name, f"{field}.width", True)
            h = to_size(_require(image, "height", name, field), name, f"{field}.height", True)
        else:
            w, h = size
            json_size = (image.get("width"), image.get("height"))
            if None not in json_size and tuple(json_size) != tuple(size):
                raise DataError(
                    f"disagrees with the image file {path} ({w}x{h})",
                    file=name,
                    field=f"{field} width x height",
                    value=f"{json_size[0]}x{json_size[1]}",
                )
        index_of[image_id] = len(paths)
        paths.append(path)
        widths.append(float(w))
        heights.append(float(h))

    raw_boxes, labels, owners, kept_ann, ann_fields = [], [], [], [], {}
    for i, ann in enumerate(annotations):
        field = f"annotations[{i}]"
        image_id = _check_id(
            _require(ann, "image_id", name, field), None, name, f"{field}.image_id"
        )
        if "id" in ann:
            _check_id(ann["id"], ann_fields, name, f"{field}.id")
        if image_id not in index_of:
            raise DataError(
                "no image with this id", file=name, field=f"{field}.image_id", value=image_id
            )
        category_id = _require(ann, "category_id", name, field)
        _check_id(category_id, None, name, f"{field}.category_id")
        if category_id not in label_of:
            raise DataError(
                f"unknown category id (categories has ids {sorted_ids})",
                file=name,
                field=f"{field}.category_id",
                value=category_id,
            )
        bbox = _require(ann, "bbox", name, field)
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise DataError(
                "bbox must be [x, y, width, height]", file=name, field=f"{field}.bbox", value=bbox
            )
        bbox = [to_float(v, name, f"{field}.bbox[{k}]", strict=True) for k, v in enumerate(bbox)]
        if skip_crowd and ann.get("iscrowd", 0):
            report.add(SKIPPED_CROWD, f"{name}: {field}")
            continue
        raw_boxes.append(bbox)
        labels.append(label_of[category_id])
        owners.append(index_of[image_id])
        kept_ann.append(i)

    boxes = np.asarray(raw_boxes, np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    owners = np.asarray(owners, np.int64)
    boxes, keep = clean_boxes(
        boxes,
        np.asarray(heights)[owners] if len(owners) else [],
        np.asarray(widths)[owners] if len(owners) else [],
        report,
        lambda j: f"{name}: annotations[{kept_ann[j]}].bbox",
    )
    return finish_reader(
        paths,
        boxes,
        keep,
        owners,
        labels,
        class_names=class_names,
        report=report,
        source=name,
    )
