"""Masked-token benchmark: held-out masked accuracy against the unigram baseline, side by side.

Each configuration trains the recipe's model (``recipes/pretrain_text_mlm.py`` defaults: a
2-block Transformer, 64-d, 4 heads, BERT masking 15 % / 80-10-10: whole words at WordPiece
level, tokens at word level, spans at character level) for ``--minutes`` of wall clock
(learning rate cosine over the budget), then masks the held-out texts with a fixed seed and
reports, on the same masked positions, the model's accuracy, the unigram baseline's (the most
frequent training token), their ratio and their margin.

Word and WordPiece accuracies are made comparable by scoring masked WORDS: a masked word is
right when all its pieces are predicted right (at word level a word is one token), against the
most frequent training word. They are reported on every masked word (``word``) and on the
masked words seen at least twice in training (``known``: the words a word-level vocabulary
with ``--min-count 2`` keeps, so both tokenizers are scored on the same kind of words; at word
level every target is such a word). Piece accuracy is reported too.

For word and WordPiece configs the model is exported as the strings-in, strings-out fill-in
SavedModel (``zoo.text.export_fill_in_model``), which is run in a subprocess that does not
import zoo on the example "Deixa o menino ___ bola e __pren_____"; its top 3 per blank are
printed.

1. ``grammar/word``: 20,000 grammar sentences, 2,000 held-out sentences never seen in training.
   Target: masked accuracy >= 3x the unigram baseline.
2. ``fortunes-br/word`` and ``fortunes-br/wordpiece``: the Debian package's fortunes, 10 % of
   the fortunes held out (split by fortune, then cut into pieces of a few words); at word level
   words seen once become [UNK] (never a target), WordPiece splits them into known pieces.
   Skipped (and said so) without the package.
3. With ``--char``: the same two corpora at character level (span masking).

    python benchmarks/bench_text_mlm.py                  # 3 x 4 minutes
    python benchmarks/bench_text_mlm.py --only fortunes-br/word fortunes-br/wordpiece
    python benchmarks/bench_text_mlm.py --only fortunes-br/word --steps 3000
    python benchmarks/bench_text_mlm.py --minutes 8 --char
    python benchmarks/bench_text_mlm.py --quick          # 1 minute each, smoke check
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

import tempfile  # noqa: E402

import keras  # noqa: E402

from zoo.text.corpora import load_text_splits
from zoo.text.export import export_fill_in_model, run_fill_in_subprocess
from zoo.text.loss import MaskedTokenLoss
from zoo.text.masking import make_mlm_dataset
from zoo.text.metrics import (
    FILL_IN_SENTENCE,
    evaluate_mlm,
    fill_in,
    known_word_ids,
    most_frequent_token,
    unigram_counts,
    unigram_word,
)
from zoo.text.model import build_mlm_model, build_text_encoder
from zoo.text.tokenizer import words_per_text
from zoo.text.wordpiece import make_tokenizer
from zoo.training import BudgetLRSchedule, TimeBudget  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import float_in, int_at_least, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

MODEL = {"embed_dim": 64, "num_heads": 4, "ff_dim": 128, "num_layers": 2, "dropout": 0.1}
LENGTH = {
    ("grammar", "word"): 24,
    ("grammar", "char"): 112,
    ("grammar", "wordpiece"): 32,
    ("fortunes-br", "word"): 40,
    ("fortunes-br", "char"): 160,
    ("fortunes-br", "wordpiece"): 64,
}
MASKING = {"word": "tokens", "wordpiece": "words", "char": "spans"}
MAX_TOKENS = {"word": 8000, "char": 8000, "wordpiece": 2000}
MIN_COUNT = 2  # files and fortunes, word and char level
BATCH, LR, STEPS_PER_EPOCH = 64, 2e-3, 100


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=positive_float, default=4.0, help="training budget per config"
    )
    parser.add_argument(
        "--steps",
        type=int_at_least(STEPS_PER_EPOCH),
        default=None,
        help="train this many steps (a multiple of 100) instead of --minutes: figures that do "
        "not depend on the machine's load",
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
    parser.add_argument(
        "--mask-rate",
        type=float_in(0, 1, low_open=True, high_open=True),
        default=0.15,
        help="share of tokens (words at WordPiece level) selected in training",
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser


def parse_args(argv=None):
    return build_arg_parser().parse_args(argv)


def example_fills(model, tokenizer, top=3):
    """The fill-in SavedModel's top ``top`` per blank of the example sentence, run without zoo."""
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        path = export_fill_in_model(model, tokenizer, Path(tmp) / "fill_in", top_k=top)
        out = run_fill_in_subprocess(path, [FILL_IN_SENTENCE])
    return [[str(w) for w in out["fills"][0, j]] for j in range(int(out["num_blanks"][0]))]


def run_config(corpus, level, minutes, seed, quick, eval_passes, mask_rate=0.15, steps=None):
    start = time.monotonic()
    num_train = 5000 if quick and corpus == "grammar" else None
    length = LENGTH[(corpus, level)]
    max_words = None if corpus == "grammar" else words_per_text(level, length)
    train_texts, test_texts = load_text_splits(
        corpus, num_train=num_train, seed=seed, max_words=max_words
    )
    min_count = 1 if corpus == "grammar" else MIN_COUNT
    tokenizer = make_tokenizer(level, length, MAX_TOKENS[level], min_count).adapt(train_texts)
    masking = MASKING[level]
    options = {"masking": masking, "rate": mask_rate}
    train_ds = make_mlm_dataset(train_texts, tokenizer, BATCH, seed, **options)
    test_ds = make_mlm_dataset(
        test_texts, tokenizer, 256, seed + 1, shuffle=False, repeat=eval_passes, masking=masking
    )
    train_ids = tokenizer(train_texts)
    counts = unigram_counts(train_ids, tokenizer.vocab_size, tokenizer.special_ids)
    unigram = most_frequent_token(counts)
    word_options = {}
    if tokenizer.continuation is not None:
        word_options = {
            "continuation": tokenizer.continuation,
            "unigram_word": unigram_word(train_ids, tokenizer.continuation, tokenizer.special_ids),
            "known_words": known_word_ids(tokenizer, train_texts, min_count),
            "special_ids": tokenizer.special_ids,
        }

    keras.utils.set_random_seed(seed)
    encoder = build_text_encoder(tokenizer.vocab_size, tokenizer.sequence_length, **MODEL)
    model = build_mlm_model(encoder, tokenizer.vocab_size)
    model.compile(
        keras.optimizers.Adam(LR),
        loss=MaskedTokenLoss(),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    if steps:  # a fixed number of steps: the same figure whatever the machine's load
        callbacks = [BudgetLRSchedule(LR, warmup=0.05)]
        epochs = max(1, steps // STEPS_PER_EPOCH)
    else:
        budget = TimeBudget(minutes, verbose=0)
        callbacks = [BudgetLRSchedule(LR, warmup=0.05, time_fraction=budget.progress), budget]
        epochs = 10_000
    history = model.fit(
        train_ds, epochs=epochs, steps_per_epoch=STEPS_PER_EPOCH, callbacks=callbacks, verbose=0
    )
    epochs = len(history.history["loss"])
    train_seconds = time.monotonic() - start
    result = evaluate_mlm(model, test_ds, unigram, **word_options)
    result.update(
        config=f"{corpus}/{level}",
        num_train=len(train_texts),
        num_test=len(test_texts),
        vocab_size=tokenizer.vocab_size,
        unigram_token=tokenizer.vocabulary[unigram],
        mask_rate=mask_rate,
        train_steps=epochs * STEPS_PER_EPOCH,
        final_train_loss=float(history.history["loss"][-1]),
        example_fill_in=fill_in(model, tokenizer, FILL_IN_SENTENCE),
        seconds=round(train_seconds, 1),
    )
    if level != "char":
        result["saved_model_top3"] = example_fills(model, tokenizer)
    return result


def _ratio(value):
    return "n/a" if value is None else f"{value:.2f}"


def main(argv=None):
    args = parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    configs = [("grammar", "word"), ("fortunes-br", "word"), ("fortunes-br", "wordpiece")]
    if args.char:
        configs += [("grammar", "char"), ("fortunes-br", "char")]
    results, skipped = [], []
    if args.only:
        configs = [tuple(c.split("/")) for c in args.only]
        bad = [c for c in configs if c not in LENGTH]
        if bad:
            raise ValueError(f"--only takes CORPUS/LEVEL among {sorted(LENGTH)}. Received: {bad}")
    for corpus, level in configs:
        try:
            result = run_config(
                corpus,
                level,
                minutes,
                args.seed,
                args.quick,
                args.eval_passes,
                args.mask_rate,
                args.steps,
            )
        except FileNotFoundError as error:  # fortunes-br not installed
            skipped.append({"config": f"{corpus}/{level}", "reason": str(error)})
            print(f"{corpus}/{level}: skipped: {error}")
            continue
        results.append(result)
        print(
            f"{result['config']:<22} train {result['num_train']:>6} test {result['num_test']:>5} "
            f"vocab {result['vocab_size']:>5} steps {result['train_steps']:>5} | piece acc "
            f"{result['masked_accuracy']:.4f} unigram {result['unigram_accuracy']:.4f} "
            f"({result['unigram_token']!r}) ratio {_ratio(result['ratio'])} on "
            f"{result['num_selected']} pieces | {result['seconds']} s",
            flush=True,
        )
        if "word_accuracy" in result:
            print(
                f"{'':<22} word acc {result['word_accuracy']:.4f} unigram "
                f"{result['unigram_word_accuracy']:.4f} ratio {_ratio(result['word_ratio'])} on "
                f"{result['num_words']} words | known words {result['known_word_accuracy']:.4f}"
                f" vs {result['known_unigram_word_accuracy']:.4f} ratio "
                f"{_ratio(result['known_word_ratio'])} on {result['num_known_words']}",
                flush=True,
            )
        print(f"{'':<22} {FILL_IN_SENTENCE}  ->  {result['example_fill_in']}", flush=True)
        if "saved_model_top3" in result:
            print(f"{'':<22} SavedModel top 3 per blank: {result['saved_model_top3']}", flush=True)
    print("\nratios to the unigram baseline (word: masked words, target >= 3x; piece: pieces):")
    for result in results:
        word = result.get("word_ratio", result["ratio"])
        known = result.get("known_word_ratio")
        ok = "meets 3x" if word is not None and word >= 3 else "BELOW 3x"
        print(
            f"  {result['config']:<22} word {_ratio(word)}  known words {_ratio(known)}  "
            f"piece {_ratio(result['ratio'])}  {ok}"
        )
    if args.json:
        write_json(args.json, {"results": results, "skipped": skipped}, ensure_ascii=False)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
