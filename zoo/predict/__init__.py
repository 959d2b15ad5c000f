"""Predictions from an exported model of any family, on image files: ``python -m zoo predict``.

``load_predictor(path)`` opens a SavedModel folder, a ``.keras`` file or a ``.tflite`` file,
recognises its family from its outputs (detection, landmarks, embedding, classifier) and returns
a ``Predictor`` whose ``predict(pixels)`` gives results in the image's own pixels. The command
line (``zoo.predict.cli``) runs it over files and folders and writes JSON + drawn PNG files.

Example:
    >>> from zoo.predict import load_predictor, read_image
    >>> predictor = load_predictor("saved_models/yolo/1")
    >>> predictor.predict(read_image("street.jpg"), score_threshold=0.7)
    [{'box_xyxy': [12.5, 40.0, 88.1, 97.3], 'score': 0.93, 'class_id': 1, 'class_name': 'car'}]
"""

from zoo.predict.images import (
    IMAGE_SUFFIXES,
    draw_detections,
    draw_landmarks,
    find_images,
    read_image,
)
from zoo.predict.models import FAMILIES, FORMATS, Predictor, load_predictor, resolve_model

__all__ = [
    "FAMILIES",
    "FORMATS",
    "IMAGE_SUFFIXES",
    "Predictor",
    "draw_detections",
    "draw_landmarks",
    "find_images",
    "load_predictor",
    "read_image",
    "resolve_model",
]
