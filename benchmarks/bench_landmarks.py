"""Landmark heads side by side: regression vs heatmap on the same synthetic faces and budget.

Each head is trained by the shipped recipe (``recipes/train_landmarks.py``, default flags, same
seed, so the same data) under the same time budget, evaluated on the same validation images,
exported to fp32 and int8 ``.tflite`` by ``zoo.landmarks.export_landmarks`` (the recipe's export
step); then the batch-1 LiteRT latency of both files is timed.
Printed per head: NME (inter-ocular), presence accuracy, failure rate (NME > 0.1), AUC@0.1,
fp32 / int8 ``.tflite`` NME and their difference (points of NME), batch-1 latency (median ms).

Targets: NME <= 3 %, presence accuracy >= 99 % on >= 500 validation images after at
most 10 minutes of training on a 2-core CPU; int8 NME within 0.5 points of fp32. The better head
becomes ``zoo.landmarks.model.DEFAULT_HEAD``.

    python benchmarks/bench_landmarks.py                 # 9 minutes per head (the recipe default)
    python benchmarks/bench_landmarks.py --minutes 3     # shorter
    python benchmarks/bench_landmarks.py --quick         # a 1-2 minute check that it all runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "recipes"))

import numpy as np  # noqa: E402
import train_landmarks  # noqa: E402  (the recipe, so the benchmark measures what ships)

from zoo.landmarks.model import DEFAULT_HEAD, HEADS  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402


def tflite_latency_ms(path, image_size, runs=200, warmup=20, num_threads=1):
    """Median wall time in ms of one batch-1 inference with the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner()
    name = next(iter(runner.get_input_details()))
    image = np.random.default_rng(0).uniform(0, 255, (1, image_size, image_size, 3))
    image = image.astype(np.float32)
    for _ in range(warmup):
        runner(**{name: image})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(**{name: image})
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def run_head(head, args, workdir):
    flags = [
        "--head", head,
        "--time-budget", str(args.minutes),
        "--num-train", str(args.num_train),
        "--num-val", str(args.num_val),
        "--output", str(workdir / "runs"),
        "--export-dir", str(workdir / "models" / head),
        "--name", head,
        "--seed", str(args.seed),
        "--verbose", "0",
    ]  # fmt: skip
    if args.epochs is not None:
        flags += ["--epochs", str(args.epochs)]
    start = time.monotonic()
    metrics = train_landmarks.main(flags)
    wall = time.monotonic() - start
    history = (workdir / "runs" / head / "history.csv").read_text().strip().splitlines()
    row = {
        "head": head,
        "epochs_run": len(history) - 1,
        "wall_s": wall,
        "nme": metrics["keras"]["nme"],
        "presence_accuracy": metrics["keras"]["presence_accuracy"],
        "failure_rate": metrics["keras"]["failure_rate"],
        "auc": metrics["keras"]["auc"],
        "num_val": metrics["keras"]["num_images"],
        "nme_fp32": metrics["tflite_fp32"]["nme"],
        "nme_int8": metrics["tflite_int8"]["nme"],
        "int8_minus_fp32_points": 100 * metrics["int8_nme_minus_fp32"],
        "presence_accuracy_int8": metrics["tflite_int8"]["presence_accuracy"],
    }
    for kind in ("fp32", "int8"):
        path = metrics["artifacts"][f"tflite_{kind}"]
        row[f"latency_{kind}_ms"] = tflite_latency_ms(path, args.image_size, runs=args.runs)
        row[f"size_{kind}_kb"] = Path(path).stat().st_size / 1024
    return row


COLUMNS = [
    ("head", "{}"),
    ("epochs_run", "{:d}"),
    ("nme", "{:.2%}"),
    ("presence_accuracy", "{:.2%}"),
    ("failure_rate", "{:.2%}"),
    ("auc", "{:.3f}"),
    ("nme_fp32", "{:.2%}"),
    ("nme_int8", "{:.2%}"),
    ("int8_minus_fp32_points", "{:+.2f}"),
    ("latency_fp32_ms", "{:.2f}"),
    ("latency_int8_ms", "{:.2f}"),
    ("size_int8_kb", "{:.0f}"),
]


def print_table(rows):
    cells = [[name for name, _ in COLUMNS]]
    cells += [[fmt.format(row[name]) for name, fmt in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    for r, line in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
        if r == 0:
            print("  ".join("-" * w for w in widths))


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=positive_float, default=train_landmarks.DEFAULTS["time_budget"],
        help="training budget per head in minutes (default: the recipe's, %(default)s)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny data and budget: checks it runs")
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    parser.add_argument("--num-train", type=int_at_least(1), default=4000)
    parser.add_argument("--num-val", type=int_at_least(1), default=500)
    parser.add_argument(
        "--epochs", type=int_at_least(1), default=None, help="cap epochs (default: recipe's)"
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument(
        "--runs", type=int_at_least(1), default=200, help="timed batch-1 inferences"
    )
    parser.add_argument("--out", default=None, help="keep runs/models here (default: temp dir)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return parser


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    if args.quick:
        args.minutes = min(args.minutes, 0.3)
        args.num_train, args.num_val, args.runs = 256, 64, 30
    args.image_size = train_landmarks.DEFAULTS["image_size"]

    with tempfile.TemporaryDirectory(prefix="bench-landmarks-") as tmp:
        workdir = Path(args.out or tmp)
        rows = [run_head(head, args, workdir) for head in args.heads]
    print(
        f"\nlandmarks: {args.minutes:g} min per head, {args.num_train} training / "
        f"{args.num_val} validation synthetic faces, {args.image_size}px, seed {args.seed}; "
        f"DEFAULT_HEAD = {DEFAULT_HEAD!r}"
    )
    print_table(rows)
    best = min(rows, key=lambda r: r["nme"])
    print(f"lowest NME: {best['head']}")
    if args.json:
        write_json(args.json, rows)
    return rows


if __name__ == "__main__":
    sys.exit(run_cli(main))
