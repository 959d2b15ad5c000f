"""zoo.metric_learning: embeddings compared by distance (Siamese, triplet, two-tower).

- ``model``: the embedding tower and the shared-weight Siamese, triplet and two-tower models.
- ``loss``: the contrastive loss (explicit pairs, every pair of a batch) and the triplet losses
  (explicit triplets, online mining).
- ``collapse``: ``CollapseMonitor`` reports embeddings that shrink to a point.
- ``sampling``: P×K batches for online mining, pair and triplet streams with offline hard
  mining (``HardMiningCallback``).
- ``workflow``: the recipes' defaults, data and holdout splits, evaluation against raw pixels,
  the tower's export.
"""

from zoo.metric_learning.collapse import CollapseMonitor, embedding_spread
from zoo.metric_learning.loss import (
    BatchContrastiveLoss,
    ContrastiveLoss,
    TripletLoss,
    TripletMarginLoss,
    batch_contrastive_loss,
    contrastive_loss,
    triplet_loss,
    triplet_margin_loss,
)
from zoo.metric_learning.model import (
    build_embedding_model,
    build_siamese,
    build_triplet,
    build_two_tower,
    feature_readout,
)
from zoo.metric_learning.sampling import (
    HardMiningCallback,
    PairGenerator,
    TripletGenerator,
    pk_batches,
)
from zoo.metric_learning.two_tower import cross_modal_recall, edge_sketches, sketch_pair_batches
from zoo.metric_learning.workflow import (
    SIAMESE_DEFAULTS,
    TRIPLET_DEFAULTS,
    evaluate_against_pixels,
    evaluate_plot_export,
    export_tower,
    holdout_splits,
    load_embedding_data,
    metrics_table,
)

__all__ = [
    "BatchContrastiveLoss",
    "batch_contrastive_loss",
    "CollapseMonitor",
    "embedding_spread",
    "cross_modal_recall",
    "edge_sketches",
    "sketch_pair_batches",
    "build_embedding_model",
    "feature_readout",
    "build_siamese",
    "build_triplet",
    "build_two_tower",
    "contrastive_loss",
    "ContrastiveLoss",
    "evaluate_against_pixels",
    "evaluate_plot_export",
    "export_tower",
    "HardMiningCallback",
    "holdout_splits",
    "load_embedding_data",
    "metrics_table",
    "PairGenerator",
    "pk_batches",
    "SIAMESE_DEFAULTS",
    "triplet_loss",
    "triplet_margin_loss",
    "TRIPLET_DEFAULTS",
    "TripletGenerator",
    "TripletLoss",
    "TripletMarginLoss",
]
