"""COCO evaluation of a detector on a data set, and the PNGs people look at.

``yolo_eval`` runs ``predict`` over a ``DetectionData`` (images at their own size, boxes back in
their pixels) and scores it with pycocotools (``zoo.metrics.coco_map``); ``plot_pr_curves`` and
``draw_detection_grid`` write the PR curve and a grid of images with true and predicted boxes.
"""

from __future__ import annotations

import numpy as np

from zoo.detection.decode import predict
from zoo.metrics import coco_map, coco_pr_curves

__all__ = ["collect_detections", "draw_detection_grid", "plot_pr_curves", "yolo_eval"]


def collect_detections(predict_fn, data, max_images=None, chunk=64, **predict_kwargs):
    """Images, ground truth and detections of a data set, in each image's own pixels.

    Args:
        predict_fn: ``predict_fn(images_list, **predict_kwargs) -> [{"boxes","scores","classes"}]``.
        data: a ``zoo.data.DetectionData``.
        max_images: stop after this many images.
        chunk: images per ``predict_fn`` call.

    Returns:
        ``(images, ground_truth, detections)``: lists, one entry per image.
    """
    images, truth, detections = [], [], []
    batch = []

    def flush():
        detections.extend(predict_fn([b["images"] for b in batch], **predict_kwargs))
        batch.clear()

    dataset = data.dataset if max_images is None else data.dataset.take(max_images)
    for element in dataset.as_numpy_iterator():
        boxes = element["bounding_boxes"]
        truth.append({"boxes": boxes["boxes"], "classes": boxes["labels"]})
        images.append(element["images"])
        batch.append(element)
        if len(batch) == chunk:
            flush()
    if batch:
        flush()
    return images, truth, detections


def yolo_eval(
    model,
    data,
    score_threshold=0.001,
    iou_threshold=0.5,
    max_detections=100,
    class_names=None,
    max_images=None,
):
    """COCO mAP (pycocotools) of a YOLO model on a data set.

    Args:
        model: a ``YOLO`` model.
        data: a ``zoo.data.DetectionData`` (images of any size).
        score_threshold: keep detections scoring above this; COCO evaluations use a low one
            (0.001) so the whole precision-recall curve counts.
        iou_threshold, max_detections: NMS settings.
        class_names: names for the per-class entries (default ``data.class_names``).
        max_images: evaluate only the first images.

    Returns:
        ``{"metrics": coco_map(...), "pr": coco_pr_curves(...), "ground_truth", "detections"}``.
    """
    class_names = list(class_names or data.class_names)

    def run(images, **kwargs):
        return predict(model, images, **kwargs)

    _, truth, detections = collect_detections(
        run,
        data,
        max_images=max_images,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        max_detections=max_detections,
    )
    return {
        "metrics": coco_map(truth, detections, class_names=class_names, max_dets=max_detections),
        "pr": coco_pr_curves(truth, detections, class_names=class_names, max_dets=max_detections),
        "ground_truth": truth,
        "detections": detections,
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(evaluation, path):
    """Per-class precision-recall curves at IoU 0.5 (COCO's 101-point interpolation) to a PNG.

    Args:
        evaluation: ``yolo_eval``'s result.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    pr = evaluation["pr"]
    ap50 = evaluation["metrics"].get("per_class_ap50", {})
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, precision in pr["precision"].items():
        precision = np.asarray(precision, dtype=float)
        if np.all(np.isnan(precision)):
            continue
        label = f"{name} (AP50 {ap50.get(name, float('nan')):.3f})"
        ax.plot(pr["recall"], np.nan_to_num(precision, nan=0.0), label=label)
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=f"PR at IoU 0.5 — mAP@.5 {evaluation['metrics']['map50']:.3f}",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_detection_grid(
    model,
    data,
    path,
    num_images=16,
    score_threshold=0.6,
    iou_threshold=0.5,
    class_names=None,
):
    """A PNG grid of images with true boxes (dashed white) and predictions (solid, labelled).

    Args:
        model: a ``YOLO`` model.
        data: a ``zoo.data.DetectionData``.
        path: the PNG to write.
        num_images: images in the grid (the first ones of ``data``).
        score_threshold, iou_threshold: NMS settings of the drawn predictions.
        class_names: label names (default ``data.class_names``).

    Returns:
        ``path``.
    """
    plt = _pyplot()
    names = list(class_names or data.class_names)
    images, truth, detections = collect_detections(
        lambda imgs, **kw: predict(model, imgs, **kw),
        data,
        max_images=num_images,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
    )
    cols = int(np.ceil(np.sqrt(max(1, len(images)))))
    rows = int(np.ceil(len(images) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, gt, det in zip(axes.flat, images, truth, detections, strict=False):
        ax.imshow(image)
        for x1, y1, x2, y2 in gt["boxes"]:
            ax.add_patch(
                plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", ls="--", lw=1)
            )
        for (x1, y1, x2, y2), score, cls in zip(
            det["boxes"], det["scores"], det["classes"], strict=True
        ):
            color = colors(int(cls) % 10)
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=1.5))
            name = names[int(cls)] if 0 <= int(cls) < len(names) else str(int(cls))
            ax.text(
                x1,
                y1,
                f"{name} {score:.2f}",
                color="white",
                fontsize=6,
                bbox={"facecolor": color, "pad": 0.5, "lw": 0},
            )
    fig.suptitle("validation: true (dashed) vs predicted (solid)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
