"""Masked-token accuracy, unigram baseline, evaluate_mlm, fill-ins (stub models), loss plot."""

import math

import numpy as np
import pytest

from zoo.text.metrics import (
    FILL_IN_EXAMPLES,
    FILL_IN_SENTENCE,
    evaluate_mlm,
    fill_in,
    fill_in_examples,
    masked_accuracy,
    most_frequent_token,
    plot_loss_curve,
    unigram_accuracy,
    unigram_counts,
)
from zoo.text.tokenizer import TextTokenizer

TEXTS = [
    "Deixa o menino pegar a bola e aprender.",
    "A menina lê o livro na biblioteca.",
    "O menino pega a bola.",
]


class FixedModel:
    """Stub model: logits favour ``favourite`` everywhere, specials scored even higher."""

    def __init__(self, vocab_size, favourite, specials=(0, 1, 2)):
        self.logits = np.zeros(vocab_size, np.float32)
        self.logits[favourite] = 5.0
        self.logits[list(specials)] = 10.0
        self.calls = []

    def __call__(self, ids, training=False):
        ids = np.asarray(ids)
        self.calls.append(ids)
        return np.broadcast_to(self.logits, (*ids.shape, len(self.logits))).copy()


def test_masked_accuracy_golden():
    targets = np.array([[3, 4, 5, 0], [6, 7, 0, 0]])
    predictions = np.array([[3, 9, 5, 0], [1, 7, 0, 0]])
    weights = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], np.float32)
    assert masked_accuracy(targets, predictions, weights) == pytest.approx(0.5)
    logits = np.eye(10)[predictions]  # one-hot logits give the same
    assert masked_accuracy(targets, logits, weights) == pytest.approx(0.5)
    # Unselected positions never count, right or wrong.
    predictions[0, 2] = 8
    assert masked_accuracy(targets, predictions, weights) == pytest.approx(0.5)
    assert math.isnan(masked_accuracy(targets, predictions, np.zeros_like(weights)))


def test_unigram_baseline():
    train_ids = np.array([[3, 4, 4, 2, 0, 0], [4, 5, 1, 1, 1, 0]])
    counts = unigram_counts(train_ids, vocab_size=6, special_ids=(0, 1, 2))
    np.testing.assert_array_equal(counts, [0, 0, 0, 1, 3, 1])
    assert most_frequent_token(counts) == 4
    targets = np.array([[4, 3, 4, 5]])
    assert unigram_accuracy(targets, np.array([[1, 1, 0, 1]]), 4) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="all counts are 0"):
        most_frequent_token(np.zeros(4))


def test_evaluate_mlm_against_hand_count():
    model = FixedModel(8, favourite=5, specials=())
    batches = [
        (np.array([[2, 2, 0]]), np.array([[5, 6, 0]]), np.array([[1.0, 1.0, 0.0]])),
        (np.array([[2, 3, 0]]), np.array([[5, 3, 0]]), np.array([[1.0, 0.0, 0.0]])),
    ]
    result = evaluate_mlm(model, batches, unigram_token=6)
    assert result["num_selected"] == 3
    assert result["masked_accuracy"] == pytest.approx(2 / 3)
    assert result["unigram_accuracy"] == pytest.approx(1 / 3)
    assert result["ratio"] == pytest.approx(2.0)
    assert result["margin"] == pytest.approx(1 / 3)
    log_p = model.logits - np.log(np.exp(model.logits).sum())
    assert result["loss"] == pytest.approx(-(2 * log_p[5] + log_p[6]) / 3, rel=1e-6)
    no_baseline = evaluate_mlm(model, batches, unigram_token=7)
    assert no_baseline["ratio"] is None


def test_word_fill_in_never_proposes_specials_and_matches_visible_letters():
    tok = TextTokenizer("word", 12).adapt(TEXTS)
    bola = tok.token_id("bola")
    model = FixedModel(tok.vocab_size, favourite=bola)
    completion = fill_in(model, tok, FILL_IN_SENTENCE)
    # "___" -> the favourite word; "__pren_____" -> the only vocabulary word that fits.
    assert completion == "Deixa o menino bola bola e aprender"
    ids = model.calls[-1][0]
    assert list(ids[:7]) == [
        tok.token_id("deixa"),
        tok.token_id("o"),
        tok.token_id("menino"),
        tok.mask_id,
        bola,
        tok.token_id("e"),
        tok.mask_id,
    ]
    assert (ids[7:] == 0).all()
    # Punctuation around a blank stays; no blank is an error.
    assert fill_in(model, tok, "A menina ___.") == "A menina bola."
    with pytest.raises(ValueError, match="no blank"):
        fill_in(model, tok, "A menina lê.")
    with pytest.raises(ValueError, match="exceed sequence_length"):
        fill_in(model, tok, " ".join(["o"] * 12 + ["___"]))


def test_char_fill_in_one_character_per_blank():
    tok = TextTokenizer("char", 48).adapt(TEXTS)
    model = FixedModel(tok.vocab_size, favourite=tok.token_id("r"))
    assert fill_in(model, tok, "Deixa o menino _____ bola e _pren___") == (
        "deixa o menino rrrrr bola e rprenrrr"
    )
    ids = model.calls[-1][0]
    assert (ids == tok.mask_id).sum() == 9


def test_fill_in_examples_cover_the_example_sentence():
    tok = TextTokenizer("word", 16).adapt(TEXTS)
    pairs = fill_in_examples(FixedModel(tok.vocab_size, 3), tok)
    assert pairs[0][0] == FILL_IN_SENTENCE
    assert len(pairs) == len(FILL_IN_EXAMPLES)
    assert all("_" not in completion for _, completion in pairs)


def test_plot_loss_curve(tmp_path):
    path = plot_loss_curve(
        {"loss": [3.0, 2.0, 1.5], "masked_accuracy": [0.1, 0.3, 0.4]}, tmp_path / "a" / "loss.png"
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
