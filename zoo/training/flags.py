"""Command-line flags shared by every recipe.

Every recipe gets the same flags with the same meaning; a recipe only changes their defaults
(``defaults={"epochs": 30, "image_size": 448}``) and adds its own flags to the same parser.

Example:
    >>> from zoo.training import build_parser, parse_flags
    >>> parser = build_parser("Train YOLO.", defaults={"epochs": 30, "image_size": 448})
    >>> _ = parser.add_argument("--anchors", type=int, default=3)  # recipe-specific flag
    >>> args = parse_flags(parser, ["--smoke"])
    >>> args.epochs, args.image_size, args.smoke
    (1, 64, True)
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "COMMON_DEFAULTS",
    "SMOKE_OVERRIDES",
    "STRATEGIES",
    "add_common_flags",
    "build_parser",
    "parse_flags",
    "compile_options",
    "resolve_verbose",
    "int_at_least",
    "int_in",
    "positive_float",
    "non_negative_float",
    "float_in",
    "comma_list",
]

STRATEGIES = ("default", "mirrored", "multi_worker")

# Defaults of the common flags; a recipe overrides some of them with ``defaults=``.
COMMON_DEFAULTS = {
    "epochs": 10,
    "batch_size": 32,
    "image_size": 224,
    "data": None,
    "output": "runs",
    "seed": 0,
    "strategy": "default",
    "mixed_precision": False,
    "jit_compile": None,
    "time_budget": None,
    "smoke": False,
    "name": None,
    "resume": False,
    "steps_per_epoch": None,
    "debug": False,
    "verbose": "auto",
}

# What ``--smoke`` changes (flags given explicitly on the command line still win).
SMOKE_OVERRIDES = {"epochs": 1, "batch_size": 2, "image_size": 64, "steps_per_epoch": 2}

_SMOKE_ATTR = "zoo_smoke_overrides"
_UNSET = object()


# --- value checkers (argparse ``type=``): the error message echoes the bad value ---------------


def _int_at_least(minimum: int, what: str):
    def check(text):
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"{what} must be an integer >= {minimum}. Received: {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{what} must be an integer >= {minimum}. Received: {text!r}"
            )
        return value

    check.__name__ = f"int>={minimum}"
    return check


def _positive_minutes(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"time budget must be a number of minutes > 0. Received: {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"time budget must be a number of minutes > 0. Received: {text!r}"
        )
    return value


def _run_name(text):
    text = str(text)
    bad = (not text.strip()) or text in (".", "..") or "/" in text or "\\" in text
    if bad:
        raise argparse.ArgumentTypeError(
            "run name must be a non-empty folder name without '/' or '\\' and not '.' or '..'. "
            f"Received: {text!r}"
        )
    return text


def _verbose(text):
    if str(text) == "auto":
        return "auto"
    if str(text) in ("0", "1", "2"):
        return int(text)
    raise argparse.ArgumentTypeError(f"verbose must be one of auto, 0, 1, 2. Received: {text!r}")


_CHECKS = {
    "epochs": _int_at_least(1, "epochs"),
    "batch_size": _int_at_least(1, "batch size"),
    "image_size": _int_at_least(1, "image size"),
    "seed": _int_at_least(0, "seed"),
    "steps_per_epoch": _int_at_least(1, "steps per epoch"),
    "time_budget": _positive_minutes,
    "name": _run_name,
    "verbose": _verbose,
}


def _check_default(key, value):
    """Check a recipe-supplied default with the flag's own checker (programming errors)."""
    if value is None or key not in _CHECKS:
        if key == "strategy" and value not in STRATEGIES:
            raise ValueError(
                f"defaults['strategy'] must be one of {STRATEGIES}. Received: {value!r}"
            )
        return value
    try:
        return _CHECKS[key](value)
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"defaults[{key!r}]: {error}") from None


# --- parser ------------------------------------------------------------------------------------


def add_common_flags(
    parser: argparse.ArgumentParser,
    *,
    defaults: dict | None = None,
    smoke_defaults: dict | None = None,
    data_help: str | None = None,
    data_nargs: str | None = None,
) -> argparse.ArgumentParser:
    """Add the flags every recipe shares to ``parser``.

    Args:
        parser: an ``argparse.ArgumentParser`` (or argument group's parser) to extend.
        defaults: recipe-specific defaults for the common flags, e.g.
            ``{"epochs": 30, "image_size": 448}``. Unknown keys raise ``ValueError`` (a typo
            must not be silently dropped); values are checked like command-line values.
        smoke_defaults: what ``--smoke`` sets, on top of ``SMOKE_OVERRIDES``
            (``{"epochs": 1, "batch_size": 2, "image_size": 64, "steps_per_epoch": 2}``).
        data_help, data_nargs: the recipe's own help text and ``nargs`` of ``--data``.
            Keys may also name flags the recipe adds later.

    Returns:
        The same parser, for chaining.

    Example:
        >>> parser = add_common_flags(argparse.ArgumentParser(), defaults={"epochs": 5})
        >>> parser.parse_args([]).epochs
        5
    """
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(COMMON_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown keys in defaults: {unknown}. Known common flags: {sorted(COMMON_DEFAULTS)}. "
            "Set defaults of recipe-specific flags with add_argument(default=...)."
        )
    d = dict(COMMON_DEFAULTS)
    d.update({key: _check_default(key, value) for key, value in defaults.items()})

    group = parser.add_argument_group("common training flags (zoo.training)")
    group.add_argument(
        "--epochs",
        type=_CHECKS["epochs"],
        default=d["epochs"],
        metavar="N",
        help="number of epochs to train (>= 1). Default: %(default)s.",
    )
    group.add_argument(
        "--batch-size",
        type=_CHECKS["batch_size"],
        default=d["batch_size"],
        metavar="N",
        help="batch size per replica (>= 1); the global batch is this times the number of "
        "replicas (see zoo.training.global_batch_size). Default: %(default)s.",
    )
    group.add_argument(
        "--image-size",
        type=_CHECKS["image_size"],
        default=d["image_size"],
        metavar="PIXELS",
        help="side of the square model input in pixels (>= 1). Default: %(default)s.",
    )
    group.add_argument(
        "--data",
        default=d["data"],
        metavar="PATH",
        nargs=data_nargs,
        help=(
            data_help
            or "dataset location (folder, annotation file or 'synthetic'; each recipe says which)"
        )
        + ". Default: %(default)s.",
    )
    group.add_argument(
        "--output",
        default=d["output"],
        metavar="DIR",
        help="root of the run directories: each run writes to OUTPUT/NAME/. Default: %(default)s.",
    )
    group.add_argument(
        "--seed",
        type=_CHECKS["seed"],
        default=d["seed"],
        metavar="N",
        help="random seed for Python, NumPy, TensorFlow and Keras (>= 0). Default: %(default)s.",
    )
    group.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=d["strategy"],
        help="tf.distribute strategy: 'default' (one device), 'mirrored' (all local GPUs), "
        "'multi_worker' (MultiWorkerMirroredStrategy, cluster read from TF_CONFIG). "
        "Default: %(default)s.",
    )
    group.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=d["mixed_precision"],
        help="train in mixed precision: 'mixed_float16' when a GPU is visible, "
        "'mixed_bfloat16' on CPU (float16 matmuls are slow on CPU). Default: %(default)s.",
    )
    group.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=d["jit_compile"],
        help="compile the train step with XLA (passed to model.compile by the recipe via "
        "zoo.training.compile_options); unset lets Keras decide ('auto'). Default: %(default)s.",
    )
    group.add_argument(
        "--time-budget",
        type=_CHECKS["time_budget"],
        default=d["time_budget"],
        metavar="MINUTES",
        help="stop training before this much wall-clock time has passed (> 0 minutes); the "
        "learning-rate schedule follows the budget so it reaches its floor when the budget "
        "ends. Default: %(default)s (no budget).",
    )
    group.add_argument(
        "--smoke",
        action="store_true",
        default=d["smoke"],
        help="tiny everything for CI (1 epoch, 2 steps, batch 2, 64-pixel images unless the "
        "recipe says otherwise); flags given explicitly still win.",
    )
    group.add_argument(
        "--name",
        type=_CHECKS["name"],
        default=d["name"],
        metavar="NAME",
        help="run name: the run writes to OUTPUT/NAME/. Reusing the name of an interrupted "
        "run resumes it. Default: RECIPE-YYYYmmdd-HHMMSS.",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        default=d["resume"],
        help="resume a run: the one given by --name (which must exist) or, without --name, "
        "the most recent run under OUTPUT.",
    )
    group.add_argument(
        "--steps-per-epoch",
        type=_CHECKS["steps_per_epoch"],
        default=d["steps_per_epoch"],
        metavar="N",
        help="cap the number of steps per epoch (>= 1); needed for infinite datasets. "
        "Default: %(default)s (one pass over the data).",
    )
    group.add_argument(
        "--verbose",
        type=_CHECKS["verbose"],
        default=d["verbose"],
        metavar="{auto,0,1,2}",
        help="Keras progress output: 1 = progress bar, 2 = one line per epoch, 0 = silent, "
        "auto = 1 on a terminal and 2 otherwise (logs, CI). Default: %(default)s.",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an input error instead of its one-line message "
        "(also ZOO_DEBUG=1).",
    )
    smoke = dict(SMOKE_OVERRIDES)
    smoke.update(smoke_defaults or {})
    setattr(parser, _SMOKE_ATTR, smoke)
    return parser


def build_parser(
    description: str | None = None,
    *,
    defaults: dict | None = None,
    smoke_defaults: dict | None = None,
    prog: str | None = None,
    data_help: str | None = None,
    data_nargs: str | None = None,
) -> argparse.ArgumentParser:
    """A new ``ArgumentParser`` holding the common flags (see ``add_common_flags``).

    Args:
        description: the recipe's one-line description for ``--help``.
        defaults: recipe-specific defaults of common flags.
        smoke_defaults: extra values ``--smoke`` sets.
        prog: program name shown in usage (default: the script name).
        data_help, data_nargs: the recipe's own help text and ``nargs`` of ``--data``
            (e.g. ``"+"`` for one or more text files).

    Returns:
        An ``argparse.ArgumentParser``; add recipe flags to it, then call ``parse_flags``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    return add_common_flags(
        parser,
        defaults=defaults,
        smoke_defaults=smoke_defaults,
        data_help=data_help,
        data_nargs=data_nargs,
    )


def _explicit_dests(parser: argparse.ArgumentParser, argv) -> set[str]:
    """Names of the flags that ``argv`` sets explicitly (argparse keeps preset attributes).

    Accumulating actions (``append``, ``count``, ``extend``) build on the preset value, so they
    start from ``None`` instead of the sentinel.
    """
    accumulating = {
        action.dest
        for action in parser._actions
        if isinstance(
            action,
            (
                argparse._AppendAction,
                argparse._AppendConstAction,
                argparse._CountAction,
                argparse._ExtendAction,
            ),
        )
    }
    sentinel_namespace = argparse.Namespace(
        **{
            action.dest: None if action.dest in accumulating else _UNSET
            for action in parser._actions
            if action.dest != "help"
        }
    )
    namespace, _ = parser.parse_known_args(argv, namespace=sentinel_namespace)
    return {
        key
        for key, value in vars(namespace).items()
        if value is not _UNSET and not (key in accumulating and value is None)
    }


def parse_flags(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) and apply ``--smoke``.

    With ``--smoke``, the parser's smoke values replace the defaults of every flag not given
    explicitly, so ``--smoke --epochs 3`` trains 3 epochs. Bad values exit with an argparse
    error that echoes the value (``argument --epochs: epochs must be an integer >= 1.
    Received: '-3'``).

    Args:
        parser: a parser built by ``build_parser`` or extended by ``add_common_flags``.
        argv: list of strings; ``None`` reads ``sys.argv[1:]``.

    Returns:
        ``argparse.Namespace`` with one attribute per flag (``args.batch_size``, ...).
    """
    args = parser.parse_args(argv)
    if getattr(args, "smoke", False):
        explicit = _explicit_dests(parser, argv)
        for key, value in getattr(parser, _SMOKE_ATTR, SMOKE_OVERRIDES).items():
            if key not in explicit:
                setattr(args, key, value)
    return args


def compile_options(args) -> dict:
    """Keyword arguments for ``model.compile`` that come from the common flags.

    Args:
        args: parsed flags (needs ``jit_compile``; ``None`` means Keras's ``"auto"``).

    Returns:
        ``{"jit_compile": True | False | "auto"}``.

    Example:
        >>> model.compile(optimizer, loss, **compile_options(args))  # doctest: +SKIP
    """
    jit = getattr(args, "jit_compile", None)
    return {"jit_compile": "auto" if jit is None else bool(jit)}


def resolve_verbose(verbose="auto", stream=None) -> int:
    """Keras ``verbose`` value: ``"auto"`` gives 1 (progress bar) on a TTY, else 2.

    Args:
        verbose: ``"auto"``, 0, 1 or 2.
        stream: the stream progress goes to (default ``sys.stdout``).

    Returns:
        0, 1 or 2.
    """
    import sys

    if verbose in (0, 1, 2):
        return int(verbose)
    if verbose != "auto":
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return 1 if isatty is not None and isatty() else 2
    except (ValueError, OSError):  # closed or detached stream
        return 2


# --- value checkers for recipe flags (argparse ``type=``) ---------------------------------------
# A bad value becomes one argparse line and exit status 2, e.g.
# ``error: argument --grid-size: must be an integer >= 1 (got 0)``.


def int_at_least(minimum: int):
    """An argparse ``type=``: an integer ``>= minimum``.

    Example:
        >>> int_at_least(1)("3")
        3
    """
    parse = _int_at_least(minimum, "value")

    def check(text):
        try:
            return parse(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum} (got {text})"
            ) from None

    check.__name__ = parse.__name__
    return check


def int_in(low: int, high: int):
    """An argparse ``type=``: an integer in ``[low, high]``.

    Example:
        >>> int_in(1, 3)("2")
        2
    """
    parse = _int_at_least(low, "value")

    def check(text):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError:
            value = None
        if value is None or value > high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}] (got {text})")
        return value

    check.__name__ = f"int in [{low}, {high}]"
    return check


def _float_where(condition: str, ok):
    def check(text):
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"must be a number {condition} (got {text})")
        return value

    check.__name__ = f"number {condition}"
    return check


positive_float = _float_where("> 0", lambda value: value > 0)
"""An argparse ``type=``: a finite number ``> 0`` (learning rates, widths, minutes)."""

non_negative_float = _float_where(">= 0", lambda value: value >= 0)
"""An argparse ``type=``: a finite number ``>= 0`` (margins, loss weights, 0 = off)."""


def float_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """An argparse ``type=``: a number in ``[low, high]``; ``low_open`` / ``high_open`` leave
    the end out (fractions, IoU and score thresholds, decays).

    Example:
        >>> float_in(0, 1, high_open=True)("0.5")  # [0, 1)
        0.5
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def ok(value):
        above = low < value if low_open else low <= value
        below = value < high if high_open else value <= high
        return above and below

    return _float_where(f"in {interval}", ok)


def comma_list(item_type, *, allow_empty: bool = False):
    """An argparse ``type=``: comma-separated values, each checked by ``item_type``.

    Example:
        >>> comma_list(float_in(0, 1, low_open=True))("0.01,0.1")
        [0.01, 0.1]
    """

    def check(text):
        values = []
        for item in (part.strip() for part in str(text).split(",")):
            if not item:
                continue
            try:
                values.append(item_type(item))
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentTypeError(f"every value {error}") from None
        if not values and not allow_empty:
            raise argparse.ArgumentTypeError(f"must hold at least one value (got {text!r})")
        return values

    check.__name__ = f"comma list of {getattr(item_type, '__name__', 'values')}"
    return check
