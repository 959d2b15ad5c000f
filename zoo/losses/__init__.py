"""zoo.losses: each loss is a pure function holding the maths plus a thin ``keras.losses.Loss``.

Example:
    >>> from zoo.losses import YoloLoss
    >>> loss = YoloLoss(num_classes=3, grid_size=7)
"""

from zoo.losses.yolo import YoloLoss, encode_yolo_targets, yolo_loss, yolo_loss_terms

__all__ = ["YoloLoss", "encode_yolo_targets", "yolo_loss", "yolo_loss_terms"]
