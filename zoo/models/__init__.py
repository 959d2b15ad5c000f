"""zoo.models: model builders by family (backbones shared).

Example:
    >>> from zoo.models import build_yolo
    >>> model = build_yolo(num_classes=3, input_shape=(128, 128, 3), grid_size=2)
"""

from zoo.models.backbones import BACKBONE_STRIDES, BACKBONES, build_backbone
from zoo.models.clip import (
    CLIPLogits,
    build_audio_encoder,
    build_caption_encoder,
    build_clip,
    build_image_encoder,
    zero_shot_classify,
)
from zoo.models.landmarks import LandmarkModel, SoftArgmax2D, build_landmark_model
from zoo.models.siamese import (
    build_embedding_model,
    build_siamese,
    build_triplet,
    build_two_tower,
)
from zoo.models.simclr import SimCLR, build_simclr, simclr_augment
from zoo.models.ssl import (
    PRETEXT_TASKS,
    SSL_BACKBONES,
    build_pretext_model,
    build_ssl_encoder,
    encoder_feature_map,
)
from zoo.models.text import build_mlm_model, build_text_encoder
from zoo.models.vae import VAE, build_vae
from zoo.models.yolo import YOLO, build_yolo

__all__ = [
    "build_audio_encoder",
    "build_caption_encoder",
    "build_clip",
    "build_image_encoder",
    "CLIPLogits",
    "zero_shot_classify",
    "build_mlm_model",
    "build_text_encoder",
    "build_simclr",
    "build_vae",
    "SimCLR",
    "simclr_augment",
    "VAE",
    "BACKBONE_STRIDES",
    "BACKBONES",
    "build_backbone",
    "build_embedding_model",
    "build_landmark_model",
    "build_pretext_model",
    "build_ssl_encoder",
    "build_siamese",
    "build_triplet",
    "build_two_tower",
    "build_yolo",
    "encoder_feature_map",
    "LandmarkModel",
    "PRETEXT_TASKS",
    "SoftArgmax2D",
    "SSL_BACKBONES",
    "YOLO",
]
