"""zoo.losses: each loss is a pure function holding the maths plus a thin ``keras.losses.Loss``.

Example:
    >>> from zoo.losses import YoloLoss
    >>> loss = YoloLoss(num_classes=3, grid_size=7)
"""

from zoo.losses.clip import CLIPLoss, clip_loss
from zoo.losses.contrastive import NTXentLoss, nt_xent_loss
from zoo.losses.landmarks import LandmarkLoss, landmark_loss, landmark_loss_terms, wing
from zoo.losses.metric import (
    ContrastiveLoss,
    TripletLoss,
    TripletMarginLoss,
    contrastive_loss,
    triplet_loss,
    triplet_margin_loss,
)
from zoo.losses.mlm import MaskedTokenLoss, masked_token_loss
from zoo.losses.ssl import (
    ColorizationQuantizedLoss,
    ColorizationRegressionLoss,
    MaskedReconstructionLoss,
    colorization_class_weights,
    colorization_quantized_loss,
    colorization_regression_loss,
    masked_reconstruction_loss,
    pretext_loss,
)
from zoo.losses.yolo import YoloLoss, encode_yolo_targets, yolo_loss, yolo_loss_terms

__all__ = [
    "clip_loss",
    "CLIPLoss",
    "masked_token_loss",
    "MaskedTokenLoss",
    "nt_xent_loss",
    "NTXentLoss",
    "colorization_class_weights",
    "colorization_quantized_loss",
    "colorization_regression_loss",
    "ColorizationQuantizedLoss",
    "ColorizationRegressionLoss",
    "masked_reconstruction_loss",
    "MaskedReconstructionLoss",
    "pretext_loss",
    "contrastive_loss",
    "ContrastiveLoss",
    "encode_yolo_targets",
    "landmark_loss",
    "landmark_loss_terms",
    "LandmarkLoss",
    "triplet_loss",
    "triplet_margin_loss",
    "TripletLoss",
    "TripletMarginLoss",
    "wing",
    "yolo_loss",
    "yolo_loss_terms",
    "YoloLoss",
]
