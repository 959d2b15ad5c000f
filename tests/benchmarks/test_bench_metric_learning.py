"""benchmarks/bench_metric_learning.py: ``--set`` overrides are parsed and range-checked."""

import pytest

BENCH = "benchmarks/bench_metric_learning.py"


@pytest.mark.parametrize(
    "item",
    [
        "p=1",
        "k=0",
        "width=-3",
        "embedding_dim=2.5",
        "margin=-0.1",
        "lr=0",
        "distance=manhattan",
        "nope=3",
        "p",
    ],
)
def test_bad_overrides_end_in_one_line_and_status_2(load_script, item, capsys):
    bench = load_script(BENCH)
    before = (dict(bench.TOWER), dict(bench.TRIPLET))
    with pytest.raises(SystemExit) as exit_info:
        bench.apply_override(bench.build_arg_parser(), item)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--set {item!r}" in err and "Traceback" not in err
    assert (bench.TOWER, bench.TRIPLET) == before  # nothing half-applied


def test_good_overrides_take_the_parsed_type(load_script, monkeypatch):
    bench = load_script(BENCH)
    monkeypatch.setattr(bench, "TOWER", dict(bench.TOWER))
    monkeypatch.setattr(bench, "TRIPLET", dict(bench.TRIPLET))
    parser = bench.build_arg_parser()
    for item in ("p=4", "width=32", "margin=0.5", "lr=1e-3", "distance=l2"):
        bench.apply_override(parser, item)
    assert bench.TRIPLET["p"] == 4 and bench.TOWER["width"] == 32
    assert bench.TRIPLET["margin"] == 0.5 and bench.TRIPLET["lr"] == 1e-3
    assert bench.TRIPLET["distance"] == "l2"
