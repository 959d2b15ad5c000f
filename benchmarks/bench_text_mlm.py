"""Masked-token benchmark: held-out masked accuracy against the unigram baseline, side by side.

Each configuration trains the recipe's model (``recipes/pretrain_text_mlm.py`` defaults: a
2-block Transformer, 64-d, 4 heads, BERT masking 15 % / 80-10-10 at word level, spans at
character level) for ``--minutes`` of wall clock (learning rate cosine over the budget), then
masks the held-out texts once with a fixed seed and reports, on the same masked positions, the
model's accuracy, the unigram baseline's (the most frequent training token), their ratio and
their margin, and the model's fill-in of the example sentence.

1. ``grammar/word``: 20,000 grammar sentences, 2,000 held-out sentences never seen in training.
   Target: masked accuracy >= 3x the unigram baseline.
2. ``fortunes-br/word``: the Debian package's fortunes, 10 % of the fortunes held out (split
   by fortune, then into sentences); words seen once become [UNK] (never a target). Target:
   above the unigram baseline; the margin is reported. Skipped (and said so) without the
   package.
3. With ``--char``: the same two corpora at character level (span masking).

    python benchmarks/bench_text_mlm.py                  # 2 x 4 minutes
    python benchmarks/bench_text_mlm.py --minutes 8 --char
    python benchmarks/bench_text_mlm.py --quick          # about 2 minutes, smoke check
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from zoo.text.corpora import load_text_splits
from zoo.text.loss import MaskedTokenLoss
from zoo.text.masking import make_mlm_dataset
from zoo.text.metrics import (
    FILL_IN_SENTENCE,
    evaluate_mlm,
    fill_in,
    most_frequent_token,
    unigram_counts,
)
from zoo.text.model import build_mlm_model, build_text_encoder
from zoo.text.tokenizer import TextTokenizer, words_per_text
from zoo.training import BudgetLRSchedule, TimeBudget  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

MODEL = {"embed_dim": 64, "num_heads": 4, "ff_dim": 128, "num_layers": 2, "dropout": 0.1}
LENGTH = {
    ("grammar", "word"): 24,
    ("grammar", "char"): 112,
    ("fortunes-br", "word"): 40,
    ("fortunes-br", "char"): 160,
}
BATCH, LR, STEPS_PER_EPOCH = 64, 2e-3, 100


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=positive_float, default=4.0, help="training budget per config"
    )
    parser.add_argument("--char", action="store_true", help="also the character-level configs")
    parser.add_argument("--quick", action="store_true", help="1 minute each, 5000 sentences")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="CORPUS/LEVEL",
        help="run only these configs, e.g. fortunes-br/word",
    )
    parser.add_argument(
        "--eval-passes",
        type=int_at_least(1),
        default=3,
        help="masking passes over the held-out texts (more masked tokens, steadier figures)",
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser


def parse_args(argv=None):
    return build_arg_parser().parse_args(argv)


def run_config(corpus, level, minutes, seed, quick, eval_passes):
    start = time.monotonic()
    num_train = 5000 if quick and corpus == "grammar" else None
    length = LENGTH[(corpus, level)]
    max_words = None if corpus == "grammar" else words_per_text(level, length)
    train_texts, test_texts = load_text_splits(
        corpus, num_train=num_train, seed=seed, max_words=max_words
    )
    tokenizer = TextTokenizer(
        level, length, max_tokens=8000, min_count=1 if corpus == "grammar" else 2
    ).adapt(train_texts)
    masking = "tokens" if level == "word" else "spans"
    train_ds = make_mlm_dataset(train_texts, tokenizer, BATCH, seed, masking=masking)
    test_ds = make_mlm_dataset(
        test_texts, tokenizer, 256, seed + 1, masking=masking, shuffle=False, repeat=eval_passes
    )
    counts = unigram_counts(tokenizer(train_texts), tokenizer.vocab_size, tokenizer.special_ids)
    unigram = most_frequent_token(counts)

    keras.utils.set_random_seed(seed)
    encoder = build_text_encoder(tokenizer.vocab_size, tokenizer.sequence_length, **MODEL)
    model = build_mlm_model(encoder, tokenizer.vocab_size)
    model.compile(
        keras.optimizers.Adam(LR),
        loss=MaskedTokenLoss(),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    budget = TimeBudget(minutes, verbose=0)
    schedule = BudgetLRSchedule(LR, warmup=0.05, time_fraction=budget.progress)
    history = model.fit(
        train_ds,
        epochs=10_000,
        steps_per_epoch=STEPS_PER_EPOCH,
        callbacks=[schedule, budget],
        verbose=0,
    )
    epochs = len(history.history["loss"])
    result = evaluate_mlm(model, test_ds, unigram)
    result.update(
        config=f"{corpus}/{level}",
        num_train=len(train_texts),
        num_test=len(test_texts),
        vocab_size=tokenizer.vocab_size,
        unigram_token=tokenizer.vocabulary[unigram],
        train_steps=epochs * STEPS_PER_EPOCH,
        final_train_loss=float(history.history["loss"][-1]),
        example_fill_in=fill_in(model, tokenizer, FILL_IN_SENTENCE),
        seconds=round(time.monotonic() - start, 1),
    )
    return result


def main(argv=None):
    args = parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    configs = [("grammar", "word"), ("fortunes-br", "word")]
    if args.char:
        configs += [("grammar", "char"), ("fortunes-br", "char")]
    results, skipped = [], []
    if args.only:
        configs = [tuple(c.split("/")) for c in args.only]
    for corpus, level in configs:
        try:
            result = run_config(corpus, level, minutes, args.seed, args.quick, args.eval_passes)
        except FileNotFoundError as error:  # fortunes-br not installed
            skipped.append({"config": f"{corpus}/{level}", "reason": str(error)})
            print(f"{corpus}/{level}: skipped: {error}")
            continue
        results.append(result)
        target = " (target >= 3x)" if corpus == "grammar" else ""
        print(
            f"{result['config']:<18} train {result['num_train']:>6} test {result['num_test']:>5} "
            f"vocab {result['vocab_size']:>5} steps {result['train_steps']:>5} | masked acc "
            f"{result['masked_accuracy']:.4f} unigram {result['unigram_accuracy']:.4f} "
            f"({result['unigram_token']!r}) ratio {result['ratio']:.2f}{target} margin "
            f"{result['margin']:+.4f} on {result['num_selected']} tokens | {result['seconds']} s",
            flush=True,
        )
        print(f"{'':<18} {FILL_IN_SENTENCE}  ->  {result['example_fill_in']}", flush=True)
    print("\nratios (masked accuracy / unigram baseline):")
    for result in results:
        ok = ""
        if result["config"].startswith("grammar"):
            ok = "  meets 3x" if result["ratio"] >= 3 else "  BELOW 3x"
        print(f"  {result['config']:<18} {result['ratio']:.2f}  margin {result['margin']:+.4f}{ok}")
    if args.json:
        write_json(args.json, {"results": results, "skipped": skipped}, ensure_ascii=False)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
