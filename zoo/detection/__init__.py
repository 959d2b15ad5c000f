"""zoo.detection: YOLO detection (an S×S grid of boxes and classes, the NMS rule).

- ``model``: ``build_yolo`` and the ``YOLO`` model (YOLOv1 free boxes or YOLOv2-style anchors).
- ``loss``: ``YoloLoss`` and its target encoding.
- ``decode``: raw head -> boxes/scores/classes, class-aware NMS in the graph, ``predict``.
- ``pipeline``: anchors fitted to a data set, the (images, targets) training pipeline.
- ``evaluate``: COCO evaluation of a model on a data set, PR-curve and detection-grid PNGs.
- ``export``: SavedModel + fp32/int8 ``.tflite`` with NMS inside, verified.
- ``verify``: detections compared as sets, up to near-tied scores (export checks).
"""

from zoo.detection.decode import (
    YoloDetections,
    decode_yolo_predictions,
    detection_model,
    predict,
    yolo_detections,
    yolo_outputs_fn,
)
from zoo.detection.evaluate import (
    draw_detection_grid,
    plot_pr_curves,
    yolo_eval,
)
from zoo.detection.export import (
    export_yolo,
)
from zoo.detection.loss import (
    YoloLoss,
    encode_yolo_targets,
    yolo_loss,
    yolo_loss_terms,
)
from zoo.detection.model import (
    ANCHOR_HEADS,
    YOLO,
    build_yolo,
)
from zoo.detection.pipeline import (
    fit_anchors,
    make_yolo_dataset,
)
from zoo.detection.verify import detection_compare

__all__ = [
    "ANCHOR_HEADS",
    "build_yolo",
    "decode_yolo_predictions",
    "detection_compare",
    "detection_model",
    "draw_detection_grid",
    "encode_yolo_targets",
    "export_yolo",
    "fit_anchors",
    "make_yolo_dataset",
    "plot_pr_curves",
    "predict",
    "YOLO",
    "yolo_detections",
    "yolo_eval",
    "yolo_loss",
    "yolo_loss_terms",
    "yolo_outputs_fn",
    "YoloDetections",
    "YoloLoss",
]
