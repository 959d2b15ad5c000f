"""Masked-token pretraining ("fill in the blanks") of a small Transformer text encoder, offline.

Description: BERT-style self-supervision on Portuguese text. A tokenizer running inside tf.data
    (`--tokenizer word`: whole words, or characters with `--level char`; `--tokenizer
    wordpiece`: sub-words learnt from the training text with TensorFlow Text, `##` pieces
    continuing a word; [PAD]/[UNK]/[MASK] reserved) turns sentences into ids; 15 % of the
    tokens (WordPiece: of the words, all their pieces together) are selected in every batch
    (80 % -> [MASK], 10 % -> a random token, 10 % unchanged; character level: contiguous
    spans, as in "__pren_____"); a functional Transformer encoder + token head
    (``zoo.text.model.build_mlm_model``) learns to restore them, with the loss on the selected
    positions only (``zoo.text.loss.MaskedTokenLoss``, weights passed as sample weights).
    Evaluation on held-out sentences: masked-token and masked-word accuracy against the
    unigram baseline (always guess the most frequent training token / word) on the same masked
    positions, and fill-ins of example sentences, "Deixa o menino ___ bola e __pren_____"
    first. Export (word and WordPiece level): a SavedModel taking raw sentences with blanks and
    returning the top-k fills per blank (``zoo.text.export_fill_in_model``), checked in a
    subprocess that does not import zoo.
Data: `--corpus grammar` (default): sentences of a probabilistic Portuguese grammar
    (zoo.text.grammar_corpus, words in zoo/text/grammar_pt.json; held-out sentences never
    seen in training);
    `--corpus fortunes-br`: the Debian package fortunes-br (split by fortune, then sentences);
    `--data FILE [FILE ...]`: any UTF-8 text, one sentence per line (`--unit paragraph`).
Expected result: grammar, word level: held-out masked accuracy well over 3x the unigram
    baseline (measured on a shared 2-core CPU: 0.33 vs 0.045 after 800 steps, 0.57 vs 0.050
    after 3200); fortunes-br (about 33,000 training words): 1.7x the baseline after 1,400 steps
    (0.096 vs 0.056), about 3x after 3,000 (benchmarks/bench_text_mlm.py --steps 3000); the
    word tokenizer ahead of WordPiece on masked words at equal steps (docs/text.md). Character
    level needs many more steps than word level.
Outputs (run directory): metrics.json, loss_curve.png, fills.txt, mlm.keras, tokenizer.json,
    fill_in/ (the fill-in SavedModel; not at character level, nor with --no-export).
Runtime: a few minutes on a 2-core CPU; `--smoke` well under a minute (plus the export check).

    python recipes/pretrain_text_mlm.py
    python recipes/pretrain_text_mlm.py --tokenizer wordpiece
    python recipes/pretrain_text_mlm.py --level char
    python recipes/pretrain_text_mlm.py --corpus fortunes-br --epochs 20
    python recipes/pretrain_text_mlm.py --data my_text.txt --smoke
"""

from __future__ import annotations

import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from zoo.text.corpora import TEXT_CORPORA, load_text_splits
from zoo.text.export import export_fill_in_model, verify_fill_in_export
from zoo.text.loss import MaskedTokenLoss
from zoo.text.masking import make_mlm_dataset
from zoo.text.metrics import (
    FILL_IN_EXAMPLES,
    FILL_IN_SENTENCE,
    evaluate_mlm,
    fill_in_examples,
    known_word_ids,
    most_frequent_token,
    plot_loss_curve,
    unigram_counts,
    unigram_word,
)
from zoo.text.model import build_mlm_model, build_text_encoder
from zoo.text.tokenizer import LEVELS, words_per_text
from zoo.text.wordpiece import make_tokenizer
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import float_in, int_at_least, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

# === Hyperparameters ===
DEFAULTS = {"epochs": 12, "batch_size": 64, "steps_per_epoch": 200}
SMOKE = {"epochs": 1, "batch_size": 16, "steps_per_epoch": 3}
# Sequence length by (corpus kind, level): grammar sentences have <= 20 words / 100 characters.
SEQUENCE_LENGTH = {
    ("grammar", "word"): 24,
    ("grammar", "char"): 112,
    ("grammar", "wordpiece"): 32,
    ("text", "word"): 40,
    ("text", "char"): 160,
    ("text", "wordpiece"): 64,
}
TOKENIZERS = ("word", "wordpiece")
DEFAULT_TOKENIZER = "word"  # measured: see docs/text.md, "Why the defaults"
WORDPIECE_VOCAB = 2000


def build_arg_parser():
    parser = build_parser(
        __doc__.splitlines()[0],
        defaults=DEFAULTS,
        smoke_defaults={
            **SMOKE,
            "num_train": 400,
            "num_test": 100,
            "embed_dim": 32,
            "jit_compile": False,
        },
        data_help="UTF-8 text file(s) to pretrain on instead of --corpus",
        data_nargs="+",
    )
    parser.add_argument("--corpus", choices=TEXT_CORPORA, default="grammar", help="built-in corpus")
    parser.add_argument(
        "--unit",
        choices=("line", "paragraph"),
        default="line",
        help="--data texts: one per line or per paragraph",
    )
    parser.add_argument(
        "--tokenizer",
        choices=TOKENIZERS,
        default=DEFAULT_TOKENIZER,
        help="wordpiece: sub-words learnt from the training text (sees inside words); "
        "word: whole words (or characters with --level char)",
    )
    parser.add_argument(
        "--level", choices=LEVELS, default="word", help="--tokenizer word: words or characters"
    )
    parser.add_argument(
        "--masking",
        choices=("auto", "tokens", "words", "spans"),
        default="auto",
        help="BERT token masking, whole-word masking or contiguous spans (auto: words for "
        "wordpiece, tokens for word level, spans for char level)",
    )
    parser.add_argument(
        "--mask-rate",
        type=float_in(0, 1, low_open=True, high_open=True),
        default=0.15,
        help="fraction selected",
    )
    parser.add_argument(
        "--mean-span", type=int_at_least(1), default=3, help="mean span length (spans)"
    )
    parser.add_argument(
        "--num-train",
        type=int_at_least(1),
        default=None,
        help="grammar: sentences generated (20000); files: cap on texts",
    )
    parser.add_argument(
        "--num-test",
        type=int_at_least(1),
        default=None,
        help="grammar: held-out sentences (2000); files: cap on texts",
    )
    parser.add_argument(
        "--test-fraction",
        type=float_in(0, 1, low_open=True, high_open=True),
        default=0.1,
        help="files: share held out",
    )
    parser.add_argument(
        "--max-words",
        type=int_at_least(0),
        default=None,
        help="files and fortunes: cut texts into pieces of at most this many words (default: "
        "enough to fill --sequence-length; 0 keeps whole lines/paragraphs, fortunes as sentences)",
    )
    parser.add_argument(
        "--eval-passes",
        type=int_at_least(1),
        default=3,
        help="masking passes over the held-out texts (each with its own masks)",
    )
    parser.add_argument(
        "--sequence-length", type=int_at_least(1), default=None, help="tokens per text"
    )
    parser.add_argument(
        "--max-tokens",
        type=int_at_least(4),
        default=None,
        help=f"largest vocabulary (word / char: 8000; wordpiece: {WORDPIECE_VOCAB})",
    )
    parser.add_argument(
        "--min-count",
        type=int_at_least(1),
        default=2,
        help="files and fortunes: words seen fewer times become [UNK] (grammar: 1)",
    )
    parser.add_argument("--embed-dim", type=int_at_least(1), default=64)
    parser.add_argument("--num-heads", type=int_at_least(1), default=4)
    parser.add_argument("--ff-dim", type=int_at_least(1), default=128)
    parser.add_argument("--num-layers", type=int_at_least(1), default=2)
    parser.add_argument("--dropout", type=float_in(0, 1, high_open=True), default=0.1)
    parser.add_argument("--lr", type=positive_float, default=2e-3, help="Adam learning rate (peak)")
    parser.add_argument("--top-k", type=int_at_least(1), default=5, help="fills per blank (export)")
    parser.add_argument(
        "--no-export", action="store_true", help="skip the fill-in SavedModel and its check"
    )
    return parser


def parse_args(argv=None):
    return parse_flags(build_arg_parser(), argv)


def main(argv=None):
    args = parse_args(argv)
    if args.tokenizer == "wordpiece" and args.level == "char":
        raise ValueError("--level char needs --tokenizer word (WordPiece splits words)")
    level = "wordpiece" if args.tokenizer == "wordpiece" else args.level
    strategy = configure(args)
    kind = "grammar" if args.data is None and args.corpus == "grammar" else "text"
    length = args.sequence_length or SEQUENCE_LENGTH[(kind, level)]
    masking = args.masking
    if masking == "auto":
        masking = {"word": "tokens", "char": "spans", "wordpiece": "words"}[level]
    max_tokens = args.max_tokens or (WORDPIECE_VOCAB if level == "wordpiece" else 8000)

    # === Data ===
    max_words = args.max_words
    if max_words is None and kind == "text":
        max_words = words_per_text(level, length)
    train_texts, test_texts = load_text_splits(
        args.corpus,
        args.data,
        args.num_train,
        args.num_test,
        args.test_fraction,
        args.seed,
        args.unit,
        max_words=max_words or None,
    )
    min_count = args.min_count if kind == "text" else 1
    tokenizer = make_tokenizer(level, length, max_tokens=max_tokens, min_count=min_count)
    tokenizer.adapt(train_texts)
    masking_options = {"masking": masking, "rate": args.mask_rate, "mean_span": args.mean_span}
    train_ds = make_mlm_dataset(
        train_texts, tokenizer, args.batch_size, args.seed, **masking_options
    )
    test_ds = make_mlm_dataset(
        test_texts,
        tokenizer,
        256,
        args.seed + 1,
        shuffle=False,
        repeat=max(1, args.eval_passes),
        **masking_options,
    )
    train_ids = tokenizer(train_texts)
    counts = unigram_counts(train_ids, tokenizer.vocab_size, tokenizer.special_ids)
    unigram_token = most_frequent_token(counts)
    word_options = {}
    if tokenizer.continuation is not None:
        # Masked words are also scored on the words seen >= min_count times in training (the
        # words a word-level vocabulary keeps), so that word and WordPiece runs compare.
        word_options = {
            "continuation": tokenizer.continuation,
            "unigram_word": unigram_word(train_ids, tokenizer.continuation, tokenizer.special_ids),
            "known_words": known_word_ids(tokenizer, train_texts, min_count),
            "special_ids": tokenizer.special_ids,
        }
    print(
        f"{len(train_texts)} training / {len(test_texts)} held-out texts, {level} level, "
        f"vocabulary {tokenizer.vocab_size}, most frequent token "
        f"{tokenizer.vocabulary[unigram_token]!r}, masking {masking}"
    )

    # === Model ===
    with strategy.scope():
        encoder = build_text_encoder(
            tokenizer.vocab_size,
            length,
            embed_dim=args.embed_dim,
            num_heads=args.num_heads,
            ff_dim=args.ff_dim,
            num_layers=args.num_layers,
            dropout=args.dropout,
        )
        model = build_mlm_model(encoder, tokenizer.vocab_size)
        model.compile(
            keras.optimizers.Adam(args.lr),
            loss=MaskedTokenLoss(),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],
            **compile_options(args),
        )

    # === Training ===
    config = {
        k: getattr(args, k)
        for k in (
            "corpus",
            "tokenizer",
            "mask_rate",
            "mean_span",
            "embed_dim",
            "num_heads",
            "ff_dim",
            "num_layers",
            "dropout",
            "min_count",
        )
    }
    config.update(
        level=level,
        masking=masking,
        sequence_length=length,
        max_tokens=max_tokens,
        vocab_size=tokenizer.vocab_size,
    )
    result = train(
        model, train_ds, args, recipe="text_mlm", base_lr=args.lr, warmup=0.05, config=config
    )
    run = result.run.path

    # === Evaluation ===
    held_out = evaluate_mlm(model, test_ds, unigram_token, **word_options)
    fills = fill_in_examples(model, tokenizer)
    metrics = {
        "corpus": "files" if args.data else args.corpus,
        "tokenizer": args.tokenizer,
        "level": level,
        "masking": masking,
        "num_train": len(train_texts),
        "num_test": len(test_texts),
        "vocab_size": tokenizer.vocab_size,
        "unigram_token": tokenizer.vocabulary[unigram_token],
        "held_out": held_out,
        "fills": [{"sentence": s, "completion": c} for s, c in fills],
    }
    write_json(run / "metrics.json", metrics, ensure_ascii=False)
    (run / "fills.txt").write_text("".join(f"{s}\n  -> {c}\n" for s, c in fills), encoding="utf-8")
    plot_loss_curve(result.history, run / "loss_curve.png")
    model.save(run / "mlm.keras")
    tokenizer.save(run / "tokenizer.json")

    # === Export ===
    if not args.no_export and level != "char":
        saved = export_fill_in_model(
            model, tokenizer, run / "fill_in", args.top_k, overwrite=True, metrics=held_out
        )
        check = verify_fill_in_export(model, tokenizer, saved, list(FILL_IN_EXAMPLES))
        if not check["ok"]:
            raise RuntimeError(f"the fill-in SavedModel disagrees: {check['failures']}")
        exported = check["saved_model"]
        metrics["export"] = {
            "path": str(saved),
            "verified_without_zoo": True,
            "imported": check["imported"],
            "fill_in_sentence": FILL_IN_SENTENCE,
            "top_k": [
                [str(w) for w in exported["fills"][0, j] if w]
                for j in range(int(exported["num_blanks"][0]))
            ],
        }
        write_json(run / "metrics.json", metrics, ensure_ascii=False)

    ratio = held_out["ratio"]
    print(
        f"held-out masked accuracy {held_out['masked_accuracy']:.4f} vs unigram baseline "
        f"{held_out['unigram_accuracy']:.4f} ({metrics['unigram_token']!r}): ratio "
        f"{'n/a' if ratio is None else f'{ratio:.2f}'}, margin {held_out['margin']:+.4f} "
        f"on {held_out['num_selected']} masked tokens"
    )
    if "word_accuracy" in held_out:
        word_ratio = held_out["word_ratio"]
        print(
            f"held-out masked word accuracy {held_out['word_accuracy']:.4f} vs unigram word "
            f"{held_out['unigram_word_accuracy']:.4f}: ratio "
            f"{'n/a' if word_ratio is None else f'{word_ratio:.2f}'} on "
            f"{held_out['num_words']} masked words"
        )
    for sentence, completion in fills:
        print(f"fill-in: {sentence}  ->  {completion}")
    if "export" in metrics:
        print(
            f"exported {metrics['export']['path']} (checked without zoo); its top "
            f"{args.top_k} per blank of {FILL_IN_SENTENCE!r}: {metrics['export']['top_k']}"
        )
    print(
        f"wrote {run / 'metrics.json'}, {run / 'fills.txt'}, {run / 'loss_curve.png'}, "
        f"{run / 'mlm.keras'}"
    )
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))
