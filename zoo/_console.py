"""A quiet console: the zoo's scripts show the zoo, not TensorFlow's native start-up notes.

TensorFlow's C++ libraries print notes straight to file descriptor 2 (``WARNING: All log
messages before absl::InitializeLog() ...``, the oneDNN and CUDA-stub notes, the CPU-feature
guard; twice on recent builds; later the oneDNN int64 fallback and the TFLite converter's
lines), and ``TF_CPP_MIN_LOG_LEVEL`` no longer silences them. ``filtered_stderr()`` passes
descriptor 2 through a line filter that drops exactly those notes (``NOISE``) and lets every
other line through as it comes. ``install()`` (called by ``import zoo``) adds an import hook
that runs the first ``import tensorflow`` inside that filter; the scripts' ``run_cli`` runs
``main`` inside it too. ``import zoo`` itself stays cheap: nothing is imported until TensorFlow
is. ``ZOO_TF_LOGS=1`` turns the filter off.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading

__all__ = ["NOISE", "filtered_stderr", "install", "is_noise"]

# Start-up notes TensorFlow's native code prints on every import (none is actionable).
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|port\.cc:\d+\] oneDNN custom operations are on"
    r"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|failed call to cuInit"
    r"|oneDNN supports DT_INT64 only on platforms with AVX-512"
    r"|NodeDef mentions attribute Truncate which is not in the op definition"
    r"|^fully_quantize: \d+, inference_type: \d+"
    r"|^INFO: Created TensorFlow Lite XNNPACK delegate for CPU"
)


def is_noise(line: str) -> bool:
    """True for a start-up line of TensorFlow's native code that ``filtered_stderr`` drops."""
    return NOISE.search(line) is not None


@contextlib.contextmanager
def filtered_stderr():
    """Sends file descriptor 2 through a filter for the block: lines that are not noise pass.

    A pipe replaces descriptor 2 and a thread copies every line that ``is_noise`` does not
    match to the real stderr as it arrives, so warnings, progress and errors still show live.
    On leaving, descriptor 2 is restored before anything else (an exception's traceback is
    printed unfiltered) and the thread drains the pipe.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    read_end, write_end = os.pipe()
    copier = threading.Thread(target=_copy_lines, args=(read_end, saved), daemon=True)
    copier.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the copier sees end of file
        copier.join(timeout=10)
        os.close(saved)


def _copy_lines(read_end, target):
    with os.fdopen(read_end, "rb", buffering=0) as source:
        pending = b""
        while chunk := source.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = [line + b"\n" for line in lines if not is_noise(line.decode("utf-8", "replace"))]
            if kept:
                os.write(target, b"".join(kept))
        if pending and not is_noise(pending.decode("utf-8", "replace")):
            os.write(target, pending)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` inside ``filtered_stderr``."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        spec = module.__spec__
        spec.loader = module.__loader__ = self.inner
        with filtered_stderr():
            self.inner.exec_module(module)
            module.config.list_physical_devices()  # device start-up notes (cuInit) here too


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual and wraps its loader once; removes itself after that."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Adds the hook unless TensorFlow is already imported or ``ZOO_TF_LOGS`` is set."""
    if "tensorflow" in sys.modules or os.environ.get("ZOO_TF_LOGS", "") not in ("", "0"):
        return
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
