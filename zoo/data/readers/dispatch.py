"""``load_detection_data``: one ``--data`` string -> the right reader."""

from __future__ import annotations

import os

from zoo.data.errors import DataError

ACCEPTED = (
    "accepted --data values: a COCO .json annotation file (images under --image-dir, the JSON's "
    "folder or an images/ folder beside it); a Pascal VOC folder with Annotations/ (VOC2007/) "
    "or a VOCdevkit/ holding one; an Ultralytics data.yaml (or a folder holding data.yaml or "
    "dataset.yaml); a YOLO folder with images/ and labels/; tfds:<name> such as tfds:voc/2007 "
    "or tfds:coco/2017; synthetic or synthetic:<num_images>"
)
YOLO_MARKERS = ("labels", "images", "data.yaml", "dataset.yaml")


def load_detection_data(spec, split="train", **kwargs):
    """Loads a detection set from a ``--data`` string.

    Args:
        spec: One of
            - ``path/to/annotations.json``: COCO (``image_dir=``, else ``file_name`` is looked
              up beside the JSON, see ``zoo.data.readers.coco.image_folders``),
            - a folder with ``Annotations/``, or a ``VOCdevkit/`` with one such set inside:
              Pascal VOC (``split`` selects ``ImageSets/Main/<split>.txt`` when that folder
              exists; ``"validation"`` falls back to ``val.txt``),
            - a ``data.yaml`` / ``.yml`` file, or a folder with ``data.yaml``, ``dataset.yaml``,
              ``labels/`` or ``images/``: YOLO txt (``split`` picks the yaml's ``train:`` /
              ``val:`` entry, or ``images/<split>``; see ``read_yolo``),
            - ``tfds:voc/2007``, ``tfds:coco/2017``, ...: TFDS (``data_dir=`` as for TFDS),
            - ``synthetic`` or ``synthetic:<num_images>``: the synthetic shapes set (split
              ``train`` uses ``seed``, other splits ``seed + 1``, ...; ``num_images`` defaults
              to 1000).
        split: Split name.
        **kwargs: Passed to the reader (e.g. ``class_names``, ``check_images``, ``image_size``).

    Returns:
        ``DetectionData``.

    Raises:
        DataError: The spec matches none of the accepted forms, or names a path that does not
            exist (the message lists the accepted forms).

    Example:
    ```python
    data = load_detection_data(flags.data, split="train")
    ```
    """
    from zoo.data.readers.coco import read_coco
    from zoo.data.readers.tfds_detection import read_tfds
    from zoo.data.readers.voc import find_voc_root, read_voc
    from zoo.data.readers.yolo_txt import read_yolo
    from zoo.data.synthetic import synthetic_shapes

    spec = os.fspath(spec)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        count = spec.partition(":")[2]
        if count:
            if not count.isdigit():
                raise DataError("expected synthetic:<num_images>", field="--data", value=spec)
            kwargs["num_images"] = int(count)
        kwargs.setdefault("num_images", 1000)
        split_offset = {"train": 0, "validation": 1, "val": 1, "test": 2}.get(split, 3)
        kwargs["seed"] = kwargs.get("seed", 0) + split_offset
        return synthetic_shapes(**kwargs)
    if spec.startswith("tfds:"):
        return read_tfds(spec[len("tfds:") :], split=split, **kwargs)
    if spec.endswith(".json"):
        if not os.path.isfile(spec):
            raise DataError(
                "annotation file not found; check the path passed with --data", file=spec
            )
        return read_coco(spec, kwargs.pop("image_dir", None), **kwargs)
    if spec.lower().endswith((".yaml", ".yml")):
        if not os.path.isfile(spec):
            raise DataError("dataset file not found; check the path passed with --data", file=spec)
        return _read_yolo(read_yolo, spec, split, kwargs)
    if not os.path.exists(spec):
        raise DataError(f"not found; {ACCEPTED}", field="--data", value=spec)
    voc_root = find_voc_root(spec) if os.path.isdir(spec) else None
    if voc_root is not None:
        has_splits = os.path.isdir(os.path.join(voc_root, "ImageSets", "Main"))
        return read_voc(voc_root, split=split if has_splits else None, **kwargs)
    if any(os.path.exists(os.path.join(spec, name)) for name in YOLO_MARKERS):
        return _read_yolo(read_yolo, spec, split, kwargs)
    raise DataError(f"unrecognised detection data; {ACCEPTED}", field="--data", value=spec)


def _read_yolo(read_yolo, spec, split, kwargs):
    if kwargs.get("image_dir") is not None:
        raise DataError(
            "a YOLO set finds its images from data.yaml or images/; --image-dir is for COCO "
            "JSON and VOC",
            field="--image-dir",
            value=os.fspath(kwargs["image_dir"]),
        )
    kwargs.pop("image_dir", None)
    return read_yolo(spec, split=split, **kwargs)
