"""zoo: a Keras 3 / TensorFlow model zoo for detection, landmarks, metric and self-supervised learning.

Sub-packages (imported on first use, so ``import zoo`` stays cheap and a user pays only for what
they touch): the shared floor ``zoo.ops``, ``zoo.backbones``, ``zoo.data``, ``zoo.metrics``,
``zoo.export``, ``zoo.training``, and one package per family: ``zoo.detection``,
``zoo.landmarks``, ``zoo.metric_learning``, ``zoo.ssl``, ``zoo.text``, ``zoo.multimodal``.
The README shows one example per family; ``docs/`` explains each family.
"""

import importlib
import os

from zoo import _console

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_console.install()  # TensorFlow's native start-up lines stay off the console (ZOO_TF_LOGS=1: on)

__version__ = "0.1.0"

_SUBPACKAGES = (
    "ops",
    "backbones",
    "data",
    "metrics",
    "export",
    "training",
    "detection",
    "landmarks",
    "metric_learning",
    "ssl",
    "text",
    "multimodal",
)

# Every family's builders, importable from the top (``from zoo import build_yolo``), by module.
_BUILDERS = {
    "build_yolo": "zoo.detection.model",
    "build_landmark_model": "zoo.landmarks.model",
    "build_embedding_model": "zoo.metric_learning.model",
    "build_siamese": "zoo.metric_learning.model",
    "build_triplet": "zoo.metric_learning.model",
    "build_two_tower": "zoo.metric_learning.model",
    "build_ssl_encoder": "zoo.ssl.model",
    "build_pretext_model": "zoo.ssl.model",
    "build_simclr": "zoo.ssl.simclr",
    "build_vae": "zoo.ssl.vae",
    "build_gan": "zoo.ssl.gan",
    "build_text_encoder": "zoo.text.model",
    "build_mlm_model": "zoo.text.model",
    "build_clip": "zoo.multimodal.model",
    "build_image_encoder": "zoo.multimodal.model",
    "build_audio_encoder": "zoo.multimodal.model",
    "build_caption_encoder": "zoo.multimodal.model",
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
