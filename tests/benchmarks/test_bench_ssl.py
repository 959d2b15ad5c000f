"""benchmarks/bench_ssl.py: its arguments and the target check over repeated fine-tunes."""

import pytest

BENCH = "benchmarks/bench_ssl.py"


def test_finetune_repeats_argument(load_script):
    bench = load_script(BENCH)
    assert bench.parse_args([]).finetune_repeats == 3
    assert bench.parse_args(["--quick"]).finetune_repeats == 1
    assert bench.parse_args(["--finetune-repeats", "5"]).finetune_repeats == 5
    with pytest.raises(SystemExit):
        bench.parse_args(["--finetune-repeats", "0"])
    assert not bench.parse_args([]).lp_ft and bench.parse_args(["--lp-ft"]).lp_ft


def _row(linear, finetune_runs):
    return {
        "linear": linear,
        "finetune@1%": sum(finetune_runs) / len(finetune_runs),
        "finetune@1%_runs": finetune_runs,
    }


def test_check_targets_uses_the_mean_and_reports_the_gain_seed_by_seed(load_script):
    bench = load_script(BENCH)
    rows = {
        "random init": _row(0.80, [0.79, 0.77, 0.78]),
        "rotation": _row(0.85, [0.84, 0.84, 0.82]),
        "simclr": _row(0.86, [0.82, 0.83, 0.81]),
        "supervised (100 %)": {"finetune@100%": 0.92},
    }
    checks = bench.check_targets(rows)
    assert checks["best_pretext_at_1%"] == "rotation"
    assert checks["finetune@1%_gain_points"] == pytest.approx(16 / 3)
    assert checks["finetune@1%_gain>=5"]
    assert checks["finetune@1%_gain_points_by_seed"] == pytest.approx([5.0, 7.0, 4.0])
    assert checks["every_pretext_beats_random_linear"] and checks["simclr>=rotation_linear"]
    assert checks["gap_to_supervised_points"]["best_linear_probe"][0] == "simclr"
    rows["rotation"] = _row(0.85, [0.83, 0.83, 0.82])  # mean gain 4.67: not met
    assert not bench.check_targets(rows)["finetune@1%_gain>=5"]
