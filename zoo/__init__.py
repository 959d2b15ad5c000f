"""zoo: a Keras 3 / TensorFlow model zoo for detection, landmarks, metric and self-supervised learning.

Sub-packages (imported on first use, so ``import zoo`` stays cheap and a user pays only for what
they touch): ``zoo.ops``, ``zoo.losses``, ``zoo.models``, ``zoo.data``, ``zoo.metrics``,
``zoo.export``, ``zoo.training``, ``zoo.detection``. The README shows one example per family;
``docs/`` explains each family.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_SUBPACKAGES = ("ops", "losses", "models", "data", "metrics", "export", "training", "detection")

# The family builders users import from the top (``from zoo import build_yolo``), by module.
_BUILDERS = {
    "build_yolo": "zoo.models.yolo",
    "build_landmark_model": "zoo.models.landmarks",
    "build_embedding_model": "zoo.models.siamese",
    "build_siamese": "zoo.models.siamese",
    "build_triplet": "zoo.models.siamese",
    "build_two_tower": "zoo.models.siamese",
    "build_ssl_encoder": "zoo.models.ssl",
}

__all__ = [*_SUBPACKAGES, *_BUILDERS]


def __getattr__(name):
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"zoo.{name}")
    elif name in _BUILDERS:
        try:
            module = importlib.import_module(_BUILDERS[name])
        except ModuleNotFoundError as error:
            raise AttributeError(f"zoo.{name} is not available yet ({error})") from error
        value = getattr(module, name)
    else:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
