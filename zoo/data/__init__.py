"""zoo.data: readers, synthetic sets, batching and augmentation for every family.

Detection data, landmark data (``.pts``, celeb_a, synthetic faces), labelled images (IDX files
such as Fashion-MNIST, image folders, P×K batches), pretext streams, text corpora and
multimodal scenes; bad input raises ``DataError`` naming the file, field and value.

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
from zoo.data.faces import synthetic_faces
from zoo.data.fashion_mnist import load_fashion_mnist, read_idx
from zoo.data.landmark_augment import LandmarkAugmentation
from zoo.data.landmarks import (
    LandmarkData,
    landmark_pipeline,
    load_landmark_data,
    read_celeb_a,
    read_pts,
    read_pts_folder,
)
from zoo.data.multimodal import CaptionTokenizer, make_multimodal_data, multimodal_dataset
from zoo.data.pretext import OnDevicePretext, PretextLayer, make_pretext_dataset, pretext_transform
from zoo.data.readers import (
    VOC_CLASSES,
    load_detection_data,
    read_coco,
    read_tfds,
    read_voc,
    read_yolo,
)
from zoo.data.synthetic import SHAPES, render_shapes, synthetic_shapes
from zoo.data.text import (
    TextTokenizer,
    grammar_corpus,
    load_fortunes_br,
    load_text_splits,
    make_mlm_dataset,
    mask_spans,
    mask_tokens,
    read_text_files,
)

__all__ = [
    "CaptionTokenizer",
    "make_multimodal_data",
    "multimodal_dataset",
    "grammar_corpus",
    "load_fortunes_br",
    "load_text_splits",
    "make_mlm_dataset",
    "mask_spans",
    "mask_tokens",
    "read_text_files",
    "TextTokenizer",
    "make_pretext_dataset",
    "OnDevicePretext",
    "PretextLayer",
    "pretext_transform",
    "augment_dataset",
    "Augmentation",
    "DataError",
    "DataReport",
    "detection_pipeline",
    "DetectionData",
    "element_spec",
    "horizontal_flip",
    "landmark_pipeline",
    "LandmarkAugmentation",
    "LandmarkData",
    "load_detection_data",
    "load_fashion_mnist",
    "load_landmark_data",
    "make_element",
    "pad_batch",
    "read_celeb_a",
    "read_coco",
    "read_idx",
    "read_pts",
    "read_pts_folder",
    "read_tfds",
    "read_voc",
    "read_yolo",
    "render_shapes",
    "resize",
    "SHAPES",
    "split_detection_data",
    "synthetic_faces",
    "synthetic_shapes",
    "VOC_CLASSES",
]
