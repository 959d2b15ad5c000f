"""Detection readers: COCO JSON, YOLO txt, Pascal VOC XML, TFDS, and the ``--data`` dispatcher;
``load_tfds`` opens any TFDS set (shared with the landmark reader); ``read_wav`` reads WAV audio."""

from zoo.data.readers.coco import read_coco
from zoo.data.readers.dispatch import load_detection_data
from zoo.data.readers.tfds_common import load_tfds
from zoo.data.readers.tfds_detection import read_tfds
from zoo.data.readers.voc import VOC_CLASSES, read_voc
from zoo.data.readers.wav import read_wav
from zoo.data.readers.yolo_txt import read_yolo

__all__ = [
    "VOC_CLASSES",
    "load_detection_data",
    "load_tfds",
    "read_coco",
    "read_tfds",
    "read_voc",
    "read_wav",
    "read_yolo",
]
