"""zoo.metric_learning: embeddings compared by distance (Siamese, triplet, two-tower).

- ``model``: the embedding tower and the shared-weight Siamese, triplet and two-tower models.
- ``loss``: the contrastive loss and the triplet losses (explicit triplets, online mining).
"""

from zoo.metric_learning.loss import (
    ContrastiveLoss,
    TripletLoss,
    TripletMarginLoss,
    contrastive_loss,
    triplet_loss,
    triplet_margin_loss,
)
from zoo.metric_learning.model import (
    build_embedding_model,
    build_siamese,
    build_triplet,
    build_two_tower,
)

__all__ = [
    "build_embedding_model",
    "build_siamese",
    "build_triplet",
    "build_two_tower",
    "contrastive_loss",
    "ContrastiveLoss",
    "triplet_loss",
    "triplet_margin_loss",
    "TripletLoss",
    "TripletMarginLoss",
]
