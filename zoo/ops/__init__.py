"""Pure box maths shared by the zoo: formats, IoU family, NMS.

See ``zoo.ops.boxes`` (conversion, area, IoU/GIoU/DIoU/CIoU, pairwise and element-wise) and
``zoo.ops.nms`` (hard, soft, class-aware and batched NMS on TFLite-builtin ops).
"""

from zoo.ops.anchors import kmeans_anchors, shape_iou
from zoo.ops.boxes import (
    BOX_FORMATS,
    box_area,
    check_box_format,
    ciou,
    convert_format,
    diou,
    elementwise_ciou,
    elementwise_diou,
    elementwise_giou,
    elementwise_iou,
    giou,
    iou,
)
from zoo.ops.color import lab_numpy, lab_to_rgb, lab_to_rgb_numpy, rgb_to_lab
from zoo.ops.distances import (
    DISTANCES,
    pairwise_distance,
    rowwise_distance,
    safe_sqrt,
)
from zoo.ops.nms import (
    batched_non_max_suppression,
    non_max_suppression,
    soft_non_max_suppression,
)

__all__ = [
    "lab_numpy",
    "lab_to_rgb",
    "lab_to_rgb_numpy",
    "rgb_to_lab",
    "batched_non_max_suppression",
    "box_area",
    "BOX_FORMATS",
    "check_box_format",
    "ciou",
    "convert_format",
    "diou",
    "DISTANCES",
    "elementwise_ciou",
    "elementwise_diou",
    "elementwise_giou",
    "elementwise_iou",
    "giou",
    "iou",
    "kmeans_anchors",
    "non_max_suppression",
    "pairwise_distance",
    "rowwise_distance",
    "safe_sqrt",
    "shape_iou",
    "soft_non_max_suppression",
]
