"""Multimodal contrastive benchmark: image-text, image-audio and audio-text in one run.

Each pair is trained by ``recipes/train_multimodal.py`` (its ``main``, so the numbers are the
recipe's) for ``--minutes`` of wall clock, then its supervised reference classifier for the same
budget, and evaluated on ``--num-test`` held-out pairs (1000). Printed per pair:

- cross-modal recall@1 / recall@5 in both directions (scene level: a retrieved item of the same
  scene counts; instance recall@1 alongside). Target: image-text recall@1 >= 0.9 both ways.
- zero-shot shape accuracy (text prompts "a photo of a {shape}", or audio class prototypes for
  image-audio) against the supervised classifier of the same encoder and budget.
- the learnt temperature and the seconds spent.
- ``--pairs speech``: image-audio on spoken captions (``--audio speech``): the training scenes
  said by espeak-ng's ``TRAIN_VOICES``, the held-out scenes by ``TEST_VOICES`` (no accent and
  no variant shared). Target: spoken caption -> image recall@1 >= 0.9 on held-out scenes.

    python benchmarks/bench_multimodal.py                      # 3 pairs x 2 x --minutes (6)
    python benchmarks/bench_multimodal.py --minutes 2 --pairs image-text
    python benchmarks/bench_multimodal.py --quick              # a couple of minutes, smoke check
    python benchmarks/bench_multimodal.py --pairs speech --minutes 6 --speech-dir /tmp/speech
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console
from zoo.training.cli import run_cli
from zoo.training.flags import int_at_least, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAIRS = ("image-text", "image-audio", "audio-text")
SPEECH = "speech"  # image-audio on spoken captions, held-out scenes said by unseen voices
TARGET = {"pair": "image-text", "recall@1": 0.9}
SPEECH_TARGET = {"direction": "audio_to_image", "recall@1": 0.9}


def load_recipe():
    spec = importlib.util.spec_from_file_location(
        "train_multimodal", ROOT / "recipes" / "train_multimodal.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=positive_float,
        default=6.0,
        help="time budget per pair (and again for its supervised classifier)",
    )
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pairs")
    parser.add_argument("--num-test", type=int_at_least(1), default=1000, help="held-out pairs")
    parser.add_argument("--num-train", type=int_at_least(1), default=10000, help="training scenes")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="data and model seed")
    parser.add_argument("--export", action="store_true", help="also export and verify towers")
    parser.add_argument("--output", default=None, help="run directories (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke check)")
    parser.add_argument(
        "--speech-dir",
        default=None,
        help="spoken scenes for --pairs speech, kept between runs (default: under --output)",
    )
    parser.add_argument(
        "--speech-train",
        type=int_at_least(1),
        default=2000,
        help="training scenes of --pairs speech (each said twice)",
    )
    return parser


def parse_args(argv=None):
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    args.pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    bad = [p for p in args.pairs if p not in (*PAIRS, SPEECH)]
    if bad:
        parser.error(f"--pairs must be among {(*PAIRS, SPEECH)}. Received: {bad}")
    return args


def run_pair(recipe, pair, args, output):
    argv = [
        "--pair", "image-audio" if pair == SPEECH else pair,
        "--output", str(output),
        "--name", f"bench-{pair}",
        "--seed", str(args.seed),
        "--num-test", str(args.num_test),
        "--verbose", "0",
    ]  # fmt: skip
    num_train = args.num_train
    if pair == SPEECH:
        speech_dir = args.speech_dir or Path(output) / "speech_scenes"
        argv += ["--audio", "speech", "--speech-dir", str(speech_dir), "--no-supervised"]
        num_train = args.speech_train
    if args.quick:
        argv += ["--smoke", "--num-test", str(min(args.num_test, 200))]
    else:
        argv += ["--time-budget", str(args.minutes), "--num-train", str(num_train)]
    if not args.export:
        argv.append("--no-export")
    start = time.monotonic()
    metrics = recipe.main(argv)
    metrics["wall_seconds"] = time.monotonic() - start
    return metrics


def print_table(results):
    print()
    print(f"{'pair':<12} {'direction':<15} {'R@1':>7} {'R@5':>7} {'inst R@1':>9}")
    for pair, m in results.items():
        r = m["retrieval"]
        for direction, values in r.items():
            if isinstance(values, dict) and direction != "instance":
                print(
                    f"{pair:<12} {direction:<15} {values['recall@1']:>7.4f} "
                    f"{values['recall@5']:>7.4f} {r['instance'][direction]['recall@1']:>9.4f}"
                )
    print()
    print(f"{'pair':<12} {'zero-shot':>10} {'supervised':>11} {'temp':>7} {'s':>6}  method")
    for pair, m in results.items():
        z, s = (
            m["zero_shot"] or {"accuracy": float("nan"), "modality": "-", "method": "-"},
            m.get("supervised", {}),
        )
        print(
            f"{pair:<12} {z['accuracy']:>10.4f} {s.get('accuracy', float('nan')):>11.4f} "
            f"{m['temperature']:>7.4f} {m['wall_seconds']:>6.0f}  {z['modality']} by {z['method']}"
        )
    if TARGET["pair"] in results:
        r = results[TARGET["pair"]]["retrieval"]
        worst = min(v["recall@1"] for k, v in r.items() if k != "instance" and isinstance(v, dict))
        ok = worst >= TARGET["recall@1"]
        print(
            f"\ntarget: {TARGET['pair']} recall@1 >= {TARGET['recall@1']} both directions: "
            f"{worst:.4f} -> {'MET' if ok else 'NOT MET'}"
        )
    if SPEECH in results:
        m = results[SPEECH]
        value = m["retrieval"][SPEECH_TARGET["direction"]]["recall@1"]
        speech = m["data"].get("speech", {})
        synthesis = speech.get("synthesis", {})
        print(
            f"\nspeech: spoken caption -> image recall@1 on {m['num_test']} held-out scenes said "
            f"by unseen voices {speech.get('test_voices')}: {value:.4f} (target "
            f">= {SPEECH_TARGET['recall@1']}: {'MET' if value >= SPEECH_TARGET['recall@1'] else 'NOT MET'}); "
            f"synthesis {synthesis.get('synthesized')} WAVs in {synthesis.get('seconds')} s "
            f"({synthesis.get('cached')} cached)"
        )


def main(argv=None):
    args = parse_args(argv)
    recipe = load_recipe()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-multimodal-") as tmp:
        output = Path(args.output) if args.output else Path(tmp)
        for pair in args.pairs:
            print(f"=== {pair} ===", flush=True)
            results[pair] = run_pair(recipe, pair, args, output)
    print_table(results)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
