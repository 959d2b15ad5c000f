"""``python -m zoo SUBCOMMAND ...``: the zoo's command line.

``python -m zoo`` (or ``--help``) lists the subcommands; ``python -m zoo SUBCOMMAND --help``
explains one. A subcommand ends a user's mistake with one ``error:`` line and exit status 2
(``--debug`` or ``ZOO_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import importlib
import sys

# name -> (module with run(argv) -> exit status, one line of help)
SUBCOMMANDS = {
    "predict": (
        "zoo.predict.cli",
        "an exported model (SavedModel, .keras, .tflite) on image files and folders: "
        "JSON + drawn PNG per image",
    ),
}


def usage():
    lines = [
        "usage: python -m zoo SUBCOMMAND [ARGS...]",
        "",
        "subcommands:",
        *(f"  {name:<10} {text}" for name, (_, text) in SUBCOMMANDS.items()),
        "",
        "python -m zoo SUBCOMMAND --help shows a subcommand's arguments.",
    ]
    return "\n".join(lines)


def main(argv=None):
    """Dispatch ``argv`` to a subcommand; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(
            f"error: unknown subcommand {name!r}; choose from: {', '.join(SUBCOMMANDS)} "
            "(python -m zoo --help)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.run(rest)


if __name__ == "__main__":
    sys.exit(main())
