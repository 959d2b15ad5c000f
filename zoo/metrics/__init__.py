"""zoo.metrics: evaluation metrics and the callbacks that run them during training.

Detection: ``coco_map`` (COCO mAP/mAR through pycocotools), ``coco_pr_curves`` (per-class PR
curves from the same evaluation), ``voc_map`` (Pascal VOC AP at one IoU, VOC2010+ all-point or
VOC2007 11-point), and ``DetectionMetricsCallback`` (writes ``val_map`` ... into the epoch logs).
Landmarks: ``nme`` (inter-ocular or box-diagonal), ``failure_rate``, ``ced_curve`` / ``ced_auc``,
``presence_accuracy`` and ``landmark_metrics`` (all of them at once).
Retrieval / verification: ``knn_search`` (exact, tiled), ``recall_at_k``, ``map_at_r``,
``retrieval_metrics``, ``verification_accuracy`` (LFW k-fold), ``val_at_far`` and
``verification_metrics``.

The callbacks are imported on first use.
"""

import importlib

from zoo.metrics.clustering import normalized_mutual_info
from zoo.metrics.detection import COCO_METRIC_NAMES, coco_map, coco_pr_curves, voc_map
from zoo.metrics.plots import image_grid, plot_bars, plot_history
from zoo.metrics.retrieval import (
    knn_search,
    map_at_r,
    recall_at_k,
    retrieval_metrics,
    val_at_far,
    verification_accuracy,
    verification_metrics,
)

_LAZY = {
    "DetectionMetricsCallback": "zoo.metrics.callbacks",
    "RetrievalMetricsCallback": "zoo.metrics.retrieval",
}

__all__ = [
    "image_grid",
    "normalized_mutual_info",
    "plot_bars",
    "plot_history",
    "coco_map",
    "COCO_METRIC_NAMES",
    "coco_pr_curves",
    "DetectionMetricsCallback",
    "knn_search",
    "map_at_r",
    "recall_at_k",
    "retrieval_metrics",
    "RetrievalMetricsCallback",
    "val_at_far",
    "verification_accuracy",
    "verification_metrics",
    "voc_map",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo.metrics' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
