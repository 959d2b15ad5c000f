"""zoo: a Keras 3 / TensorFlow model zoo for detection, landmarks, metric and self-supervised learning.

Sub-packages (imported on first use, so ``import zoo`` stays cheap and a user pays only for what
they touch): ``zoo.ops``, ``zoo.losses``, ``zoo.models``, ``zoo.data``, ``zoo.metrics``,
``zoo.export``, ``zoo.training``. See ``shared/DESIGN.md`` for the public API.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_SUBPACKAGES = ("ops", "losses", "models", "data", "metrics", "export", "training")

__all__ = list(_SUBPACKAGES)


def __getattr__(name):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"zoo.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
