"""Shared fixtures for the export tests: one tiny two-output conv model, exported once."""

import numpy as np
import pytest
from tiny_export_model import EXPORT_KWARGS, HEIGHT, WIDTH, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model():
    return build_tiny_model()


@pytest.fixture(scope="session")
def images():
    """A batch of 4 images, 0-255 float32 (integer-valued so PNG round trips are exact)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(4, HEIGHT, WIDTH, 3)).astype("float32")


@pytest.fixture(scope="session")
def calibration_images():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(16, HEIGHT, WIDTH, 3)).astype("float32")


@pytest.fixture(scope="session")
def saved_model_dir(tiny_model, tmp_path_factory):
    from zoo.export import export_saved_model

    root = tmp_path_factory.mktemp("saved_models")
    return export_saved_model(tiny_model, root, "tiny", 1, **EXPORT_KWARGS)


@pytest.fixture(scope="session")
def tflite_paths(tiny_model, calibration_images, tmp_path_factory):
    """{quantization name: path} for the four quantization modes."""
    from zoo.export import export_tflite

    out = tmp_path_factory.mktemp("tflite")
    paths = {}
    for quantization in (None, "float16", "dynamic"):
        key = quantization or "float32"
        paths[key] = export_tflite(tiny_model, out / f"tiny_{key}.tflite", quantization)
    paths["int8"] = export_tflite(
        tiny_model, out / "tiny_int8.tflite", "int8", representative_dataset=calibration_images
    )
    return paths
