"""WordPiece tokenizer: hand-computed splits, the vocabulary learner, whole-word masking and the
masked-word accuracy that compares it with a word-level tokenizer."""

import json

import numpy as np
import pytest
import tensorflow as tf

from zoo.text.masking import make_mlm_dataset, mask_words, word_numbers
from zoo.text.metrics import evaluate_mlm, known_word_ids, unigram_word, word_spans
from zoo.text.tokenizer import TextTokenizer
from zoo.text.wordpiece import (
    WordPieceTokenizer,
    learn_wordpiece_vocabulary,
    load_tokenizer,
    make_tokenizer,
)

# A hand-made vocabulary: ids 0-2 reserved, then these from id 3.
PIECES = [
    "o", "a", "e", "bola", "aprend", "pre", "menino",
    "##er", "##e", "##s", "##nd", "##i", "##a", "##o",
]  # fmt: skip
ID = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[MASK]", *PIECES])}


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(sequence_length=10, vocabulary=PIECES)


@pytest.mark.parametrize(
    "text, pieces",
    [
        # Greedy longest match first: "aprend" (not "a") then the rest as "##" pieces.
        ("aprender", ["aprend", "##er"]),
        ("aprende", ["aprend", "##e"]),
        ("bolas", ["bola", "##s"]),
        ("prendi", ["pre", "##nd", "##i"]),
        ("aa", ["a", "##a"]),
        # A word that cannot be covered by pieces is one [UNK], not a partial split.
        ("xyz", ["[UNK]"]),
        ("aprendx", ["[UNK]"]),
        # Lowercase, punctuation split off, as at word level.
        ("O Menino, aprende!", ["o", "menino", "aprend", "##e"]),
        ("", []),
    ],
)
def test_hand_computed_splits(tokenizer, text, pieces):
    assert tokenizer.pieces(text) == pieces


def test_ids_padding_truncation_and_decode(tokenizer):
    ids = tokenizer(["o menino aprende bolas", "aprender " * 6]).numpy()
    assert ids.shape == (2, 10) and ids.dtype == np.int32
    expected = [ID[t] for t in ["o", "menino", "aprend", "##e", "bola", "##s"]]
    assert ids[0].tolist() == expected + [0] * 4
    assert ids[1].tolist() == [ID["aprend"], ID["##er"]] * 5  # truncated to 10 pieces
    assert tokenizer.decode(ids[0]) == "o menino aprende bolas"
    assert tokenizer.decode([ID["##er"], ID["o"]]) == "##er o"  # a leading "##" piece kept
    assert tokenizer(tf.constant("bola")).shape == (10,)
    assert tokenizer.continuation[[ID["##er"], ID["aprend"], 0, 2]].tolist() == [1, 0, 0, 0]
    # Inside tf.data, as the masking pipeline calls it.
    ds = tf.data.Dataset.from_tensor_slices(["o menino", "a bola"]).batch(2).map(tokenizer)
    assert next(iter(ds)).shape == (2, 10)


def test_vocabulary_learner_on_a_tiny_corpus():
    counts = {"aprender": 5, "aprende": 4, "prender": 3}
    vocabulary = learn_wordpiece_vocabulary(counts, 40)
    assert vocabulary == [
        "[PAD]", "[UNK]", "[MASK]",
        "a", "d", "e", "n", "p", "r",
        "##a", "##d", "##e", "##n", "##p", "##r",
        "aprender", "aprende", "prender",
    ]  # fmt: skip
    # Deterministic whatever the order of the counts; a smaller budget drops whole-word pieces
    # first, never a letter, so every word stays spellable.
    assert learn_wordpiece_vocabulary(dict(reversed(counts.items())), 40) == vocabulary
    small = learn_wordpiece_vocabulary(counts, 16)
    assert len(small) <= 16 and small[:15] == vocabulary[:15]
    with pytest.raises(ValueError, match="at least 15"):
        learn_wordpiece_vocabulary(counts, 14)
    with pytest.raises(ValueError, match="whitespace"):
        learn_wordpiece_vocabulary({"two words": 2}, 40)


def test_adapt_keeps_word_counts_and_round_trips(tmp_path):
    texts = ["O menino aprende.", "A menina aprendeu a ler.", "O menino lê."]
    tokenizer = WordPieceTokenizer(sequence_length=8, vocab_size=60).adapt(texts)
    assert tokenizer.counts["menino"] == 2 and tokenizer.counts["o"] == 2
    assert list(tokenizer.counts)[:2] == ["a", "menino"]  # by count, ties alphabetical
    # An unseen word of known letters is split into pieces, never [UNK].
    assert "[UNK]" not in tokenizer.pieces("aprenderam menina")
    assert tokenizer.pieces("жук") == ["[UNK]"]  # letters never seen in training
    path = tokenizer.save(tmp_path / "tokenizer.json")
    assert json.loads(path.read_text(encoding="utf-8"))["level"] == "wordpiece"
    again = load_tokenizer(path)
    assert isinstance(again, WordPieceTokenizer) and again.vocabulary == tokenizer.vocabulary
    assert again.counts == tokenizer.counts
    np.testing.assert_array_equal(again(texts), tokenizer(texts))
    word = TextTokenizer("word", 8).adapt(texts)
    assert isinstance(load_tokenizer(word.save(tmp_path / "word.json")), TextTokenizer)
    assert isinstance(make_tokenizer("wordpiece", 8), WordPieceTokenizer)
    with pytest.raises(ValueError, match="level must be one of"):
        make_tokenizer("bpe", 8)
    with pytest.raises(ValueError, match="call adapt"):
        WordPieceTokenizer()(["texto"])


def test_mask_words_selects_whole_words():
    continuation = np.zeros(len(ID), bool)
    continuation[[ID[t] for t in PIECES if t.startswith("##")]] = True
    row = [ID[t] for t in ["o", "aprend", "##er", "bola", "##s", "pre", "##nd", "##i"]]
    ids = np.array([row + [1, 0]] * 64, np.int32)  # [UNK] and padding at the end
    numbers, starts = word_numbers(ids, continuation, (0, 1, 2))
    assert numbers[0].numpy().tolist() == [0, 1, 1, 2, 2, 3, 3, 3, 3, 3]
    assert starts[0].numpy().tolist() == [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
    masked, targets, weights = mask_words(
        ids, 7, ID["[MASK]"], len(ID), continuation, rate=0.5, special_ids=(0, 1, 2)
    )
    weights = weights.numpy()
    for start, end in [(0, 1), (1, 3), (3, 5), (5, 8)]:
        # Every piece of a word shares its word's draw.
        assert (weights[:, start:end] == weights[:, start : start + 1]).all()
    assert weights[:, 8:].sum() == 0  # [UNK] and padding never selected
    assert 0.35 < weights[:, 0].mean() < 0.65
    np.testing.assert_array_equal(targets, ids)
    again = mask_words(ids, 7, 2, len(ID), continuation, rate=0.5, special_ids=(0, 1, 2))
    np.testing.assert_array_equal(again[0], masked)
    with pytest.raises(ValueError, match="one entry per id"):
        mask_words(ids, 0, 2, len(ID) + 1, continuation)


def test_make_mlm_dataset_words_masking(tokenizer):
    ds = make_mlm_dataset(["o menino aprende bolas"] * 8, tokenizer, 4, masking="words")
    masked, targets, weights = next(iter(ds))
    assert masked.shape == (4, 10)
    char = TextTokenizer("char", 10).adapt(["abc"])
    with pytest.raises(ValueError, match="needs a tokenizer with words"):
        make_mlm_dataset(["abc"], char, 2, masking="words")


class FixedModel:
    """Returns logits whose argmax is ``predictions``."""

    def __init__(self, predictions, vocab_size):
        self.logits = np.eye(vocab_size, dtype=np.float32)[np.asarray(predictions)] * 5.0

    def __call__(self, ids, training=False):
        return self.logits


def test_masked_word_accuracy_hand_computed():
    continuation = np.zeros(len(ID), bool)
    continuation[[ID[t] for t in PIECES if t.startswith("##")]] = True
    words = [["o"], ["aprend", "##er"], ["bola", "##s"], ["o"], ["a"]]
    targets = np.array([[ID[t] for w in words for t in w] + [0]], np.int32)  # 8 pieces
    assert word_spans(targets[0], continuation) == [(0, 1), (1, 3), (3, 5), (5, 6), (6, 7)]
    weights = np.array([[1, 1, 1, 1, 1, 0, 1, 0]], np.float32)  # "o" (2nd) not selected
    # Right: "o", both pieces of "aprender"; "bolas" half right (wrong), "a" wrong.
    predictions = targets.copy()
    predictions[0, 4] = ID["##e"]
    predictions[0, 6] = ID["o"]
    result = evaluate_mlm(
        FixedModel(predictions, len(ID)),
        [(targets, targets, weights)],
        unigram_token=ID["o"],
        continuation=continuation,
        unigram_word=(ID["o"],),
        known_words={(ID["aprend"], ID["##er"]), (ID["a"],)},
        special_ids=(0, 1, 2),
    )
    assert result["masked_accuracy"] == pytest.approx(4 / 6)  # pieces
    assert result["num_words"] == 4 and result["word_accuracy"] == pytest.approx(2 / 4)
    assert result["unigram_word_accuracy"] == pytest.approx(1 / 4)  # the first "o"
    assert result["word_ratio"] == pytest.approx(2.0)
    assert result["num_known_words"] == 2 and result["known_word_accuracy"] == pytest.approx(0.5)
    assert result["known_unigram_word_accuracy"] == 0.0 and result["known_word_ratio"] is None
    # Without continuation: the piece figures only, as before.
    assert "word_accuracy" not in evaluate_mlm(
        FixedModel(predictions, len(ID)), [(targets, targets, weights)], ID["o"]
    )


def test_unigram_word_and_known_words(tokenizer):
    texts = ["o menino aprende", "o menino", "aprender"]
    ids = tokenizer(texts)
    continuation = tokenizer.continuation
    assert unigram_word(ids, continuation, tokenizer.special_ids) in {(ID["o"],), (ID["menino"],)}
    assert unigram_word(ids, continuation, tokenizer.special_ids) == (ID["o"],)  # lowest id tie
    known = known_word_ids(tokenizer, texts, min_count=2)
    assert known == {(ID["o"],), (ID["menino"],)}
    word = TextTokenizer("word", 6).adapt(texts)
    assert known_word_ids(word, texts, 2) == {(word.token_id("o"),), (word.token_id("menino"),)}
    assert not word.continuation.any() and word.continuation.shape == (word.vocab_size,)
