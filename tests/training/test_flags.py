"""Common flags: defaults, recipe defaults, --smoke, validation errors that echo the value."""

import argparse

import pytest

from zoo.training import (
    COMMON_DEFAULTS,
    SMOKE_OVERRIDES,
    add_common_flags,
    build_parser,
    compile_options,
    parse_flags,
    resolve_verbose,
)


def test_defaults_match_common_defaults():
    args = parse_flags(build_parser(), [])
    assert vars(args) == COMMON_DEFAULTS
    assert args.output == "runs" and args.strategy == "default" and args.time_budget is None


def test_recipe_defaults_override_and_command_line_wins():
    parser = build_parser("yolo", defaults={"epochs": 30, "image_size": 448})
    assert parse_flags(parser, []).epochs == 30
    assert parse_flags(parser, []).image_size == 448
    assert parse_flags(parser, ["--epochs", "5"]).epochs == 5


def test_every_flag_parses():
    argv = (
        "--epochs 3 --batch-size 8 --image-size 96 --data synthetic --output out --seed 7 "
        "--strategy mirrored --mixed-precision --jit-compile --time-budget 1.5 --name exp1 "
        "--resume --steps-per-epoch 4 --verbose 2"
    ).split()
    args = parse_flags(build_parser(), argv)
    assert (args.epochs, args.batch_size, args.image_size) == (3, 8, 96)
    assert (args.data, args.output, args.seed, args.strategy) == ("synthetic", "out", 7, "mirrored")
    assert args.mixed_precision is True and args.jit_compile is True
    assert args.time_budget == 1.5 and args.name == "exp1" and args.resume is True
    assert args.steps_per_epoch == 4 and args.verbose == 2
    assert parse_flags(build_parser(), ["--no-jit-compile"]).jit_compile is False


def test_unknown_default_key_raises():
    with pytest.raises(ValueError, match="imagesize"):
        build_parser(defaults={"imagesize": 448})


def test_bad_recipe_default_value_raises_with_value():
    with pytest.raises(ValueError, match="-2"):
        build_parser(defaults={"epochs": -2})
    with pytest.raises(ValueError, match="'tpu'"):
        build_parser(defaults={"strategy": "tpu"})


@pytest.mark.parametrize(
    "argv, echo",
    [
        (["--epochs", "-3"], "'-3'"),
        (["--epochs", "0"], "'0'"),
        (["--epochs", "two"], "'two'"),
        (["--batch-size", "0"], "'0'"),
        (["--image-size", "0"], "'0'"),
        (["--image-size", "-64"], "'-64'"),
        (["--seed", "-1"], "'-1'"),
        (["--time-budget", "0"], "'0'"),
        (["--time-budget", "nan"], "'nan'"),
        (["--steps-per-epoch", "0"], "'0'"),
        (["--name", "a/b"], "'a/b'"),
        (["--name", ".."], "'..'"),
        (["--verbose", "3"], "'3'"),
        (["--strategy", "tpu"], "'tpu'"),
    ],
)
def test_bad_values_are_argparse_errors_echoing_the_value(argv, echo, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_flags(build_parser(), argv)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert argv[0] in err and echo in err


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        build_parser("demo").parse_args(["--help"])
    out = capsys.readouterr().out
    for flag in (
        "--epochs",
        "--batch-size",
        "--image-size",
        "--data",
        "--output",
        "--seed",
        "--strategy",
        "--mixed-precision",
        "--jit-compile",
        "--time-budget",
        "--smoke",
        "--name",
        "--resume",
        "--steps-per-epoch",
        "--verbose",
    ):
        assert flag in out
    assert "mixed_bfloat16" in out  # the CPU choice is documented in --help


def test_smoke_sets_tiny_values_but_explicit_flags_win():
    parser = build_parser(defaults={"epochs": 30, "image_size": 448})
    args = parse_flags(parser, ["--smoke"])
    for key, value in SMOKE_OVERRIDES.items():
        assert getattr(args, key) == value
    args = parse_flags(parser, ["--smoke", "--epochs", "3", "--image-size=32"])
    assert args.epochs == 3 and args.image_size == 32 and args.batch_size == 2


def test_smoke_defaults_from_recipe_including_recipe_flags():
    parser = build_parser(smoke_defaults={"image_size": 96, "num_anchors": 1})
    parser.add_argument("--num-anchors", type=int, default=9)
    assert parse_flags(parser, []).num_anchors == 9
    args = parse_flags(parser, ["--smoke"])
    assert args.image_size == 96 and args.num_anchors == 1
    assert parse_flags(parser, ["--smoke", "--num-anchors", "4"]).num_anchors == 4


def test_add_common_flags_extends_existing_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--margin", type=float, default=1.0)
    assert add_common_flags(parser, defaults={"batch_size": 64}) is parser
    args = parse_flags(parser, ["--margin", "0.5"])
    assert args.margin == 0.5 and args.batch_size == 64


def test_compile_options():
    assert compile_options(argparse.Namespace(jit_compile=None)) == {"jit_compile": "auto"}
    assert compile_options(argparse.Namespace(jit_compile=True)) == {"jit_compile": True}
    assert compile_options(argparse.Namespace(jit_compile=False)) == {"jit_compile": False}


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_resolve_verbose():
    assert resolve_verbose("auto", _Stream(True)) == 1
    assert resolve_verbose("auto", _Stream(False)) == 2
    assert resolve_verbose(0, _Stream(True)) == 0
    assert resolve_verbose(2, _Stream(True)) == 2
    with pytest.raises(ValueError, match="'loud'"):
        resolve_verbose("loud")


def test_append_flags_survive_explicit_flag_detection():
    from zoo.training.flags import build_parser, parse_flags

    parser = build_parser("t", smoke_defaults={"epochs": 1})
    parser.add_argument("--tag", action="append", default=[])
    args = parse_flags(parser, ["--smoke", "--tag", "a", "--tag", "b", "--epochs", "3"])
    assert args.tag == ["a", "b"] and args.epochs == 3  # explicit beats --smoke
    assert parse_flags(parser, ["--smoke"]).tag == []
