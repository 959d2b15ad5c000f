"""Every numeric flag of every recipe and benchmark is range-checked by argparse: a bad value is
one ``error: argument --flag: ...`` line and exit status 2, never a traceback from a builder."""

import argparse
import functools
import importlib.util
import os
import subprocess
import sys

import pytest
from recipe_runner import ROOT

SCRIPTS = sorted(ROOT.glob("recipes/*.py")) + sorted(ROOT.glob("benchmarks/bench_*.py"))
NAMES = [str(path.relative_to(ROOT)) for path in SCRIPTS]
BARE_TYPES = (int, float)
# Every checked flag has a lower bound >= 0, so -1 is out of range for all of them.
INVALID = "-1"

# The ranges the builders, losses and callbacks need: flag -> (rejected values, accepted values).
RANGES = {
    "recipes/train_yolo.py": {
        "--grid-size": (["0"], ["1", "32"]),
        "--anchors": (["-1", "1.5"], ["0", "5"]),
        "--boxes-per-cell": (["0"], ["1"]),
        "--width": (["0", "-1", "nan"], ["0.125"]),
        "--depth": (["0"], ["0.33"]),
        "--lr": (["0", "-1", "inf"], ["1e-3"]),
        "--lambda-coord": (["0"], ["5"]),
        "--iou-threshold": (["0", "2"], ["0.45", "1"]),
        "--score-threshold": (["1.5", "-0.1"], ["0", "1"]),
        "--export-score-threshold": (["2"], ["0.05"]),
        "--eval-score-threshold": (["2"], ["0.001"]),
        "--ignore-iou": (["0", "1"], ["0.6"]),
        "--anchor-iou": (["0", "1.1"], ["1"]),
        "--ema": (["1", "-0.1"], ["0", "0.999"]),
        "--mosaic": (["1.5", "-0.1"], ["0", "1"]),
        "--mosaic-until": (["0", "1.5"], ["1"]),
        "--val-fraction": (["0", "1"], ["0.2"]),
        "--map-every": (["-1"], ["0"]),
        "--max-boxes": (["0"], ["1"]),
    },
    "recipes/pretrain_ssl.py": {
        "--label-fractions": (["0.1,2", "0", ","], ["1", "0.01,0.1"]),
        "--finetune-minutes": (["0"], ["0.05"]),
    },
    "recipes/pretrain_text_mlm.py": {
        "--mask-rate": (["0", "1"], ["0.15"]),
        "--test-fraction": (["0", "1"], ["0.1"]),
        "--dropout": (["1"], ["0"]),
        "--max-tokens": (["3"], ["4"]),
        "--max-words": (["-1"], ["0"]),
    },
    "recipes/train_landmarks.py": {"--coordinate-weight": (["-0.5"], ["0"])},
    "recipes/train_multimodal.py": {
        "--max-objects": (["0", "4"], ["1", "3"]),
        "--partial-captions": (["1.5"], ["0", "1"]),
    },
    "recipes/train_siamese.py": {
        "--hard-fraction": (["1.5"], ["0", "1"]),
        "--margin": (["-0.5"], ["0"]),
        "--shift": (["2"], ["0"]),
        "--dropout": (["1"], ["0"]),
    },
    "recipes/train_triplet.py": {
        "--k": (["1"], ["2"]),
        "--holdout-classes": (["1,-2"], ["5,6"]),
        "--hard-warmup-steps": (["-1"], ["0"]),
    },
    "recipes/train_two_tower.py": {"--margin": (["-1"], ["0"])},
    "benchmarks/bench_metric_learning.py": {
        "--study-minutes": (["-1"], ["0"]),
        "--models": (["siamese,nope"], ["siamese,triplet-network"]),
    },
    "benchmarks/bench_ssl.py": {"--finetune-repeats": (["0"], ["1"])},
}


@functools.cache
def load(name):
    """The script imported as a module (``main`` does not run)."""
    path = ROOT / name
    spec = importlib.util.spec_from_file_location(f"_flag_ranges_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parser_of(name):
    module = load(name)
    assert hasattr(module, "build_arg_parser"), f"{name} has no build_arg_parser()"
    return module.build_arg_parser()


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numeric_flags(parser):
    """Options whose values are numbers (or lists of numbers)."""
    found = []
    for action in parser._actions:
        if not action.option_strings or action.type is None:
            continue
        if action.type in BARE_TYPES:
            found.append(action)
            continue
        for text in ("1", "0.5"):
            try:
                value = action.type(text)
            except (argparse.ArgumentTypeError, TypeError, ValueError):
                continue
            values = value if isinstance(value, list) else [value]
            if values and all(_is_number(v) for v in values):
                found.append(action)
            break
    return found


def flag_name(action):
    return max(action.option_strings, key=len)


def assert_rejected(parser, flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, f"{flag} {value!r}: exit status {exit_info.value.code}"
    assert f"argument {flag}" in err, f"{flag} {value!r}: stderr does not name it:\n{err}"
    assert "Traceback" not in err


def test_there_are_scripts():
    assert any(n.startswith("recipes/") for n in NAMES)
    assert any(n.startswith("benchmarks/") for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_numeric_flags_are_range_checked(name, capsys):
    parser = parser_of(name)
    actions = numeric_flags(parser)
    if name.startswith("recipes/"):
        assert actions, f"{name}: no numeric flag found (the common flags have some)"
    for action in actions:
        flag = flag_name(action)
        # (a) a validating type: bare int / float only with choices
        assert action.type not in BARE_TYPES or action.choices, (
            f"{name} {flag}: type={action.type.__name__} accepts any number; use a checker "
            "from zoo.training.flags (int_at_least, positive_float, float_in, ...)"
        )
        # (b) the default passes its own check
        default = action.default
        if default is not None:
            if isinstance(default, list) and action.nargs in ("+", "*"):
                assert [action.type(str(v)) for v in default] == default, (name, flag)
            elif isinstance(default, list):
                assert action.type(",".join(map(str, default))) == default, (name, flag)
            else:
                parsed = action.type(str(default))
                assert parsed == default, (name, flag, parsed, default)
        # (c) an out-of-range value is one argparse error naming the flag, exit status 2
        assert_rejected(parser, flag, INVALID, capsys)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_flag_ranges_follow_the_code_they_feed(name, capsys):
    parser = parser_of(name)
    for flag, (rejected, accepted) in RANGES[name].items():
        for value in rejected:
            assert_rejected(parser, flag, value, capsys)
        for value in accepted:
            parser.parse_args([flag, value])


def test_the_message_names_the_flag_and_the_range(capsys):
    parser = parser_of("recipes/train_yolo.py")
    assert_rejected(parser, "--grid-size", "0", capsys)
    with pytest.raises(SystemExit):
        parser.parse_args(["--iou-threshold", "2"])
    assert "argument --iou-threshold: must be a number in (0, 1] (got 2)" in capsys.readouterr().err


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_bad_flag_exits_2_without_a_traceback():
    proc = _run([ROOT / "recipes" / "train_yolo.py", "--grid-size", "0"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "argument --grid-size: must be an integer >= 1 (got 0)" in proc.stderr


def test_ultralytics_benchmark_answers_help():
    # runs under another Python (ultralytics, PyTorch): only its --help is checked here
    proc = _run([ROOT / "benchmarks" / "ultralytics_yolov8n.py", "--help"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--minutes" in proc.stdout
