"""zoo.data: readers, synthetic sets, batching and augmentation for every family.

Detection data, landmark data (``.pts``, celeb_a, synthetic faces), labelled images (IDX files
such as Fashion-MNIST, image folders, class splits), pretext streams, text corpora and
multimodal scenes, Fashion-MNIST items pasted as real objects on cluttered backgrounds
(``fashion_objects``), and a COCO-JSON writer (``write_coco``); bad input raises ``DataError``
naming the file, field and value.

Every detection source returns a ``DetectionData`` whose ``dataset`` yields (unbatched)::

    {"images": uint8 (H, W, 3),
     "bounding_boxes": {"boxes": float32 (N, 4) absolute "xyxy" pixels, "labels": int32 (N,)}}

Example:
```python
data = zoo.data.load_detection_data("synthetic", num_images=64)
batches = zoo.data.detection_pipeline(data, image_size=(128, 128), batch_size=8, max_boxes=20,
                                      augment=True, seed=0)
```
"""

from zoo.data.augment import Augmentation, augment_dataset, horizontal_flip, resize
from zoo.data.batching import detection_pipeline, pad_batch
from zoo.data.detection import DetectionData, element_spec, make_element, split_detection_data
from zoo.data.errors import DataError, DataReport
from zoo.data.fashion_mnist import load_fashion_mnist, read_idx
from zoo.data.fashion_objects import fashion_objects, render_fashion_objects
from zoo.data.mosaic import CloseMosaic, Mosaic, mosaic_dataset
from zoo.data.readers import (
    VOC_CLASSES,
    load_detection_data,
    read_coco,
    read_tfds,
    read_voc,
    read_yolo,
)
from zoo.data.synthetic import SHAPES, render_shapes, synthetic_shapes
from zoo.data.writers import write_coco

__all__ = [
    "augment_dataset",
    "Augmentation",
    "CloseMosaic",
    "DataError",
    "DataReport",
    "detection_pipeline",
    "DetectionData",
    "element_spec",
    "fashion_objects",
    "horizontal_flip",
    "load_detection_data",
    "load_fashion_mnist",
    "make_element",
    "Mosaic",
    "mosaic_dataset",
    "pad_batch",
    "read_coco",
    "read_idx",
    "read_tfds",
    "read_voc",
    "read_yolo",
    "render_fashion_objects",
    "render_shapes",
    "resize",
    "SHAPES",
    "split_detection_data",
    "synthetic_shapes",
    "VOC_CLASSES",
    "write_coco",
]
