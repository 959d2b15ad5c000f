"""zoo.models: model builders by family (backbones shared).

Example:
    >>> from zoo.models import build_yolo
    >>> model = build_yolo(num_classes=3, input_shape=(128, 128, 3), grid_size=2)
"""

from zoo.models.backbones import BACKBONE_STRIDES, BACKBONES, build_backbone
from zoo.models.yolo import YOLO, build_yolo

__all__ = ["BACKBONES", "BACKBONE_STRIDES", "YOLO", "build_backbone", "build_yolo"]
