"""How the zoo's scripts end on a user's mistake or a failed run: one line on stderr.

* A ``DataError`` (a file, field or value the user gave that cannot be used: a bad annotation,
  an ``--output`` that can't be written, a ``--name`` another process is training in) is
  printed as ``error: FILE: FIELD = VALUE: what is wrong; what to do`` with exit status 2,
  argparse's convention for bad input.
* A ``TrainingError`` (training started but cannot go on: a NaN/inf loss, a checkpoint that
  could not be written, e.g. on a full disk) is printed as ``error: what happened; what to do``
  with exit status 1. The run folder keeps its last good checkpoint and backup: running again
  with the same ``--name`` resumes from the last completed epoch.

Neither prints a traceback; ``--debug`` (or ``ZOO_DEBUG=1``) shows it instead. Every other
exception is a bug and keeps its traceback.

While ``main`` runs, TensorFlow's native notes (oneDNN fallbacks, the TFLite converter's lines)
are kept off the console by ``zoo._console.filtered_stderr``; ``ZOO_TF_LOGS=1`` lets them through.
"""

from __future__ import annotations

import contextlib
import os
import sys

from zoo import _console
from zoo.data.errors import DataError
from zoo.training.errors import TrainingError

__all__ = [
    "DEBUG_FLAG",
    "TRAINING_ERROR_STATUS",
    "USAGE_ERROR_STATUS",
    "TrainingError",
    "debug_requested",
    "run_cli",
]

DEBUG_FLAG = "--debug"
USAGE_ERROR_STATUS = 2
TRAINING_ERROR_STATUS = 1


def debug_requested(argv):
    """``--debug`` among ``argv``, or ``ZOO_DEBUG`` set to anything but ``""`` / ``"0"``."""
    return DEBUG_FLAG in argv or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def run_cli(main, argv=None):
    """Runs ``main(argv)`` (``--debug`` removed) and returns the process exit status.

    0 on success, ``USAGE_ERROR_STATUS`` (2) on a ``DataError``, ``TRAINING_ERROR_STATUS`` (1)
    on a ``TrainingError``. Use as ``sys.exit(run_cli(main))`` under
    ``if __name__ == "__main__":``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    quiet = os.environ.get("ZOO_TF_LOGS", "") in ("", "0")
    try:
        with _console.filtered_stderr() if quiet else contextlib.nullcontext():
            main(argv)
    except (DataError, TrainingError) as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        print(f"(run again with {DEBUG_FLAG} or ZOO_DEBUG=1 for the traceback)", file=sys.stderr)
        return USAGE_ERROR_STATUS if isinstance(error, DataError) else TRAINING_ERROR_STATUS
    return 0
