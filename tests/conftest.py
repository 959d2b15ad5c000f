"""Shared test set-up: quiet TensorFlow, TF backend for Keras, deterministic seeds, scripts."""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests draw the same examples on every run, so CI is repeatable;
# HYPOTHESIS_PROFILE=explore draws new ones (run it by hand to search further).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def load_script():
    """``load_script("benchmarks/bench_ssl.py")``: a recipe or benchmark script (path from the
    repository root) imported as a module, to test its functions without running ``main``."""

    def load(relative_path):
        path = ROOT / relative_path
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def _corrupt_text(text, how, position, payload):
    """``text`` as bytes, damaged one way: ``truncate`` / ``replace`` / ``insert`` (``payload``
    at ``position``, modulo the length), an encoding name (``latin-1``, ``utf-16-le``...: the
    text in that encoding), ``bom`` (a UTF-8 byte-order mark first), ``random`` (``payload``
    alone) or ``empty``."""
    data = text.encode("utf-8")
    cut = position % (len(data) + 1)
    if how == "truncate":
        return data[:cut]
    if how == "replace":
        return data[:cut] + payload + data[cut + len(payload) :]
    if how == "insert":
        return data[:cut] + payload + data[cut:]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "random":
        return payload
    if how == "empty":
        return b""
    return text.encode(how, errors="replace")


@pytest.fixture(scope="module")
def corrupt_text():
    """The fuzz tests' corruption of a valid input file (see ``_corrupt_text``)."""
    return _corrupt_text
