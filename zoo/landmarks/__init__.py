"""zoo.landmarks: presence of an object plus K (x, y) points (e.g. a face's keypoints).

- ``model``: ``build_landmark_model`` (heatmap + soft-argmax or regression head).
- ``loss``: ``LandmarkLoss`` (presence + Wing / L1 / L2 on the points, masked by presence).
- ``data``: ``.pts`` folders, celeb_a, the landmark pipeline; ``faces``: synthetic faces;
  ``augment``: flip-aware augmentation (left and right points swap).
- ``metrics``: NME, failure rate, CED curve and AUC, presence accuracy.
- ``export``: ``export_landmarks`` (SavedModel + fp32 / int8 ``.tflite`` with the soft-argmax
  kept float, verified, int8 NME drift measured).
"""

from zoo.landmarks.augment import (
    LandmarkAugmentation,
)
from zoo.landmarks.data import (
    landmark_pipeline,
    load_landmark_data,
    read_celeb_a,
    read_landmark_table,
    read_pts,
    read_pts_folder,
)
from zoo.landmarks.element import LandmarkData
from zoo.landmarks.export import export_landmarks
from zoo.landmarks.faces import (
    synthetic_faces,
)
from zoo.landmarks.loss import (
    LandmarkLoss,
    landmark_loss,
    landmark_loss_terms,
    wing,
)
from zoo.landmarks.metrics import (
    ced_auc,
    ced_curve,
    failure_rate,
    landmark_metrics,
    nme,
    presence_accuracy,
)
from zoo.landmarks.model import (
    LandmarkModel,
    SoftArgmax2D,
    build_landmark_model,
)

__all__ = [
    "build_landmark_model",
    "ced_auc",
    "ced_curve",
    "export_landmarks",
    "failure_rate",
    "landmark_loss",
    "landmark_loss_terms",
    "landmark_metrics",
    "landmark_pipeline",
    "LandmarkAugmentation",
    "LandmarkData",
    "LandmarkLoss",
    "LandmarkModel",
    "load_landmark_data",
    "nme",
    "presence_accuracy",
    "read_celeb_a",
    "read_pts",
    "read_landmark_table",
    "read_pts_folder",
    "SoftArgmax2D",
    "synthetic_faces",
    "wing",
]
