"""zoo.backbones: network pieces shared by several families: CNN feature extractors and the
towers that join encoders (pair distances, two-tower models)."""

from zoo.backbones.cnn import (
    BACKBONE_STRIDES,
    BACKBONES,
    OUTPUT_STRIDES,
    build_backbone,
)
from zoo.backbones.towers import PairDistance, StackEmbeddings, build_two_tower, encoder_input

__all__ = [
    "PairDistance",
    "StackEmbeddings",
    "build_two_tower",
    "encoder_input",
    "BACKBONE_STRIDES",
    "BACKBONES",
    "OUTPUT_STRIDES",
    "build_backbone",
]
