"""How the zoo's scripts end on a user's mistake: one line on stderr and exit status 2.

A ``DataError`` (a file, field or value the user gave that cannot be used) is printed as
``error: FILE: FIELD = VALUE: what is wrong; what to do`` with exit status 2, argparse's
convention for bad input, and no traceback. ``--debug`` (or ``ZOO_DEBUG=1``) shows the
traceback instead. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys

from zoo.data.errors import DataError

__all__ = ["DEBUG_FLAG", "USAGE_ERROR_STATUS", "debug_requested", "run_cli"]

DEBUG_FLAG = "--debug"
USAGE_ERROR_STATUS = 2


def debug_requested(argv):
    """``--debug`` among ``argv``, or ``ZOO_DEBUG`` set to anything but ``""`` / ``"0"``."""
    return DEBUG_FLAG in argv or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def run_cli(main, argv=None):
    """Runs ``main(argv)`` (``--debug`` removed) and returns the process exit status.

    Use as ``sys.exit(run_cli(main))`` under ``if __name__ == "__main__":``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        main(argv)
    except DataError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        print(f"(run again with {DEBUG_FLAG} or ZOO_DEBUG=1 for the traceback)", file=sys.stderr)
        return USAGE_ERROR_STATUS
    return 0
