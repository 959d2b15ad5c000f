"""zoo.detection: everything around a YOLO model that is not the network or the loss.

- ``decode``: raw head -> boxes/scores/classes, class-aware NMS in the graph, ``predict``.
- ``pipeline``: anchors fitted to a data set, the (images, targets) training pipeline.
- ``evaluate``: COCO evaluation of a model on a data set, PR-curve and detection-grid PNGs.
- ``deploy``: SavedModel + fp32/int8 ``.tflite`` with NMS inside, verified.
"""

from zoo.detection.decode import (
    YoloDetections,
    decode_yolo_predictions,
    detection_model,
    predict,
    yolo_detections,
    yolo_outputs_fn,
)
from zoo.detection.deploy import export_yolo
from zoo.detection.evaluate import draw_detection_grid, plot_pr_curves, yolo_eval
from zoo.detection.pipeline import fit_anchors, make_yolo_dataset

__all__ = [
    "YoloDetections",
    "decode_yolo_predictions",
    "detection_model",
    "draw_detection_grid",
    "export_yolo",
    "fit_anchors",
    "make_yolo_dataset",
    "plot_pr_curves",
    "predict",
    "yolo_detections",
    "yolo_eval",
    "yolo_outputs_fn",
]
