"""Text data: grammar corpus, file readers, fortunes-br, tokenizer, BERT/span masking, pipeline."""

import collections
import hashlib
import json
import shutil
from importlib import resources

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.data.errors import DataError
from zoo.text.corpora import (
    chunk_words,
    load_fortunes_br,
    load_text_splits,
    read_text_files,
    split_sentences,
)
from zoo.text.grammar import GRAMMAR_LEXICON, grammar_corpus, grammar_lexicon
from zoo.text.masking import make_mlm_dataset, mask_spans, mask_tokens
from zoo.text.tokenizer import RESERVED_TOKENS, TextTokenizer, words_per_text

SPECIALS = (0, 1, 2)


@pytest.fixture(scope="module")
def corpus():
    return grammar_corpus(600, seed=0)


@pytest.fixture(scope="module")
def word_tokenizer(corpus):
    return TextTokenizer("word", sequence_length=24).adapt(corpus)


# --- grammar corpus ---


def test_grammar_corpus_is_deterministic_and_seeded():
    assert grammar_corpus(50, seed=3) == grammar_corpus(50, seed=3)
    assert grammar_corpus(50, seed=3) != grammar_corpus(50, seed=4)
    assert grammar_corpus(0) == []
    with pytest.raises(ValueError, match="num_sentences"):
        grammar_corpus(-1)


# sha256 of "\n".join(grammar_corpus(200, seed)): the sentences a seed draws stay the same.
GRAMMAR_DIGESTS = {
    0: "cc8711879db86f4a0580779ab87fc2fffed834993ee37651cd29a246710baf49",
    3: "507c95c1d62cf3fdcda90ac9b7efa5b5c868d9cdf75d9f2e9be0ea175465f1c8",
}


def test_grammar_corpus_is_pinned_by_seed():
    """Reordering or editing grammar_pt.json (or the templates) changes these sentences."""
    assert grammar_corpus(2, seed=0) == [
        "Sempre essas crianças leem uma carta e depois elas nadam no rio.",
        "O aluno é bonito.",
    ]
    for seed, digest in GRAMMAR_DIGESTS.items():
        text = "\n".join(grammar_corpus(200, seed=seed))
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == digest, seed


def test_grammar_lexicon_is_package_data_and_consistent():
    raw = json.loads(resources.files("zoo.text").joinpath(GRAMMAR_LEXICON).read_text("utf-8"))
    lex = grammar_lexicon()
    assert len(lex.people) == len(raw["people"]) and lex.objects["bola"] == ("bola", "bolas", "f")
    nouns = set(lex.objects)
    for forms, subjects, objects, places in lex.transitive.values():
        assert len(forms) == 4 and subjects in ("person", "any") and places
        assert set(objects) <= nouns
    for forms, subjects, places in lex.intransitive.values():
        assert len(forms) == 4 and subjects in ("person", "any") and places
    assert len(lex.game_forms) == 4 and lex.games
    for row in lex.people + lex.animals + tuple(lex.objects.values()):
        assert len(row) == 3 and row[2] in ("m", "f")
    for rows in (lex.states, lex.traits, tuple(lex.determiners.values()), (lex.pronouns,)):
        assert all(len(row) == 4 for row in rows)
    assert set(lex.times) == {"present", "past", "future"}


def test_grammar_corpus_sentences_and_agreement(corpus):
    assert all(s[0].isupper() and s.endswith(".") for s in corpus)
    words = [s.lower().rstrip(".").split() for s in corpus]
    # Agreement: "os"/"as" are never followed by a singular "menino"/"menina".
    for sentence in words:
        for a, b in zip(sentence, sentence[1:], strict=False):
            if a in ("os", "as"):
                assert b not in ("menino", "menina", "gato", "bola"), sentence
            if a == "menino":
                assert b not in ("pegam", "comem", "leem"), sentence
    # The example sentence's construction is there.
    assert any(s[:3] == ["deixa", "o", "menino"] for s in words)
    assert any("aprender" in s for s in words)


def test_grammar_context_beats_unigram_frequency(corpus):
    """The determiner before a noun is fixed by the noun, far beyond the top token's share."""
    counts = collections.Counter(w for s in corpus for w in s.lower().rstrip(".").split())
    top_share = counts.most_common(1)[0][1] / sum(counts.values())
    assert top_share < 0.12
    before = collections.defaultdict(collections.Counter)
    for s in corpus:
        w = s.lower().rstrip(".").split()
        for a, b in zip(w, w[1:], strict=False):
            before[b][a] += 1
    # Given the following word "meninas", the previous word is a feminine plural determiner.
    assert set(before["meninas"]) <= {"as", "umas", "minhas", "essas"}


def test_held_out_excludes_training_sentences():
    train = grammar_corpus(300, seed=0)
    test = grammar_corpus(100, seed=1, exclude=train)
    assert len(test) == 100 and not set(test) & set(train)
    a, b = load_text_splits("grammar", num_train=200, num_test=50, seed=0)
    assert len(a) == 200 and len(b) == 50 and not set(a) & set(b)


# --- files ---


def test_read_text_files_lines_and_paragraphs(tmp_path):
    first = tmp_path / "a.txt"
    first.write_text("Olá, menino!\n\n  A bola   rola.\n", encoding="utf-8")
    second = tmp_path / "b.txt"
    second.write_text("Primeira linha\nsegunda linha\n\nOutro parágrafo.\n", encoding="utf-8")
    assert read_text_files(first) == ["Olá, menino!", "A bola rola."]
    assert read_text_files([first, second], unit="paragraph") == [
        "Olá, menino!",
        "A bola rola.",
        "Primeira linha segunda linha",
        "Outro parágrafo.",
    ]


def test_bad_text_files_name_the_file(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("linha boa\nação\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: line 2: not UTF-8") as info:
        read_text_files([latin1])
    assert info.value.file.endswith("latin1.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.txt: no text"):
        read_text_files(empty)
    with pytest.raises(DataError, match=r"missing\.txt: file not found"):
        read_text_files(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="unit"):
        read_text_files(empty, unit="word")


def test_split_sentences():
    text = ["Eu não bebo água!  Peixes transam nela. Ok. Porque a galinha atravessa a rua?"]
    assert split_sentences(text, min_words=2) == [
        "Eu não bebo água!",
        "Peixes transam nela.",
        "Porque a galinha atravessa a rua?",
    ]


def test_fortune_files_parse(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text(
        "Porque a galinha atravessa a rua?\nPorque o upstream mandou!\n\t-- Alguém\n%\n"
        "Eu não bebo água!\n\nPeixes transam nela!\n%\n",
        encoding="utf-8",
    )
    assert load_fortunes_br(paths=[path]) == [
        "Porque a galinha atravessa a rua? Porque o upstream mandou!",
        "Eu não bebo água! Peixes transam nela!",
    ]
    bad = tmp_path / "bad"
    bad.write_bytes(b"ol\xe1\n%\n")
    with pytest.raises(DataError, match="bad: line 1: not UTF-8"):
        load_fortunes_br(paths=[bad])


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="fortunes-br needs dpkg (Debian)")
def test_fortunes_br_package_or_clear_error():
    try:
        fortunes = load_fortunes_br()
    except FileNotFoundError as error:
        assert "fortunes-br" in str(error)
        return
    assert len(fortunes) > 1000
    assert not any("%" == f.strip() for f in fortunes)
    sentences = load_fortunes_br("sentence")
    assert len(sentences) > len(fortunes) // 2


# --- tokenizer ---


def test_word_tokenizer_round_trip_and_reserved_ids(word_tokenizer, corpus):
    vocab = word_tokenizer.vocabulary
    assert vocab[:3] == list(RESERVED_TOKENS)
    assert (word_tokenizer.pad_id, word_tokenizer.unk_id, word_tokenizer.mask_id) == (0, 1, 2)
    ids = word_tokenizer(corpus[:8])
    assert ids.dtype == tf.int32 and ids.shape == (8, 24)
    expected = [" ".join(s.lower().rstrip(".").split()) for s in corpus[:8]]
    assert word_tokenizer.decode(ids) == expected
    # Unicode lowercasing and punctuation stripping; unknown words -> [UNK].
    assert word_tokenizer.decode(word_tokenizer(["ÁGUA, Menino! zebra"])) == ["água menino [UNK]"]


def test_tokenizer_vocabulary_is_frequency_ranked_and_limited(corpus):
    tok = TextTokenizer("word", 16, max_tokens=10).adapt(corpus)
    assert tok.vocab_size == 10
    counts = collections.Counter(w for s in tok.split(corpus) for w in s)
    assert (
        tok.vocabulary[3:]
        == [w for w, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))][:7]
    )


def test_char_tokenizer_round_trip(corpus):
    tok = TextTokenizer("char", sequence_length=128).adapt(corpus)
    assert tok.vocabulary[:3] == list(RESERVED_TOKENS)
    assert " " in tok.vocabulary and "ç" in tok.vocabulary
    text = "Deixa o menino pegar a bola e aprender."
    ids = tok([text])
    assert ids.shape == (1, 128)
    assert int(tf.reduce_sum(tf.cast(ids > 0, tf.int32))) == len(text)
    assert tok.decode(ids[0]) == text.lower()


def test_tokenizer_runs_inside_tf_data(word_tokenizer, corpus):
    ds = tf.data.Dataset.from_tensor_slices(corpus[:10]).batch(5).map(word_tokenizer)
    batches = list(ds)
    assert [b.shape for b in batches] == [(5, 24), (5, 24)]
    np.testing.assert_array_equal(batches[0], word_tokenizer(corpus[:5]))
    # adapt also takes a (batched) string dataset.
    from_ds = TextTokenizer("word", 24).adapt(tf.data.Dataset.from_tensor_slices(corpus).batch(64))
    assert from_ds.vocabulary == word_tokenizer.vocabulary


def test_tokenizer_save_load(tmp_path, word_tokenizer, corpus):
    path = word_tokenizer.save(tmp_path / "tok" / "tokenizer.json")
    loaded = TextTokenizer.load(path)
    assert loaded.get_config() == word_tokenizer.get_config()
    np.testing.assert_array_equal(loaded(corpus[:4]), word_tokenizer(corpus[:4]))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="bad.json: line 1: not a tokenizer JSON"):
        TextTokenizer.load(bad)


def test_tokenizer_without_mask_token(tmp_path):
    tok = TextTokenizer("word", 6, vocabulary=["a", "red", "circle"], mask_token=False)
    assert tok.vocabulary == ["[PAD]", "[UNK]", "a", "red", "circle"] and tok.vocab_size == 5
    assert tok.special_ids == (0, 1) and tok.mask_id is None
    np.testing.assert_array_equal(
        tok(["A red, circle!", "a zebra"]), [[2, 3, 4, 0, 0, 0], [2, 1, 0, 0, 0, 0]]
    )
    assert tok.token_id("[MASK]") == tok.unk_id
    loaded = TextTokenizer.load(tok.save(tmp_path / "tokenizer.json"))
    assert loaded.get_config() == tok.get_config() and loaded.mask_id is None
    adapted = TextTokenizer("word", 6, max_tokens=4, mask_token=False).adapt(["b b a c"])
    assert adapted.vocabulary == ["[PAD]", "[UNK]", "b", "a"]
    with pytest.raises(ValueError, match="MASK"):
        make_mlm_dataset(["a red circle"], tok, batch_size=1)


def test_tokenizer_bad_arguments():
    with pytest.raises(ValueError, match="level"):
        TextTokenizer("byte")
    with pytest.raises(ValueError, match="sequence_length"):
        TextTokenizer("word", 0)
    with pytest.raises(ValueError, match="adapt"):
        TextTokenizer("word")(["x"])
    with pytest.raises(ValueError, match="max_tokens"):
        TextTokenizer("word", max_tokens=3)
    with pytest.raises(ValueError, match="whitespace"):
        TextTokenizer("word", vocabulary=["a b"])


# --- masking ---


def _random_ids(batch, length, vocab, seed=0, min_length=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, size=(batch, length))
    lengths = rng.integers(min_length, length + 1, size=batch)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int32)


def test_mask_tokens_proportions_on_a_large_batch():
    ids = _random_ids(2048, 64, 500)
    masked, targets, weights = (
        t.numpy() for t in mask_tokens(ids, 7, 2, 500, special_ids=SPECIALS)
    )
    real = ids != 0
    selected = weights == 1
    n = selected.sum()
    assert abs(n / real.sum() - 0.15) < 0.005
    assert not (selected & ~real).any()  # padding never selected
    np.testing.assert_array_equal(targets, ids)
    to_mask = (masked == 2) & selected
    unchanged = (masked == ids) & selected
    changed_random = selected & ~to_mask & ~unchanged
    assert abs(to_mask.sum() / n - 0.8) < 0.01
    # A random draw equal to the original token counts as "unchanged": 1/497 of the 10 %.
    assert abs(changed_random.sum() / n - 0.1 * 496 / 497) < 0.01
    assert abs(unchanged.sum() / n - (0.1 + 0.1 / 497)) < 0.01
    # Outside the selection nothing changes; random tokens are never special.
    np.testing.assert_array_equal(masked[~selected], ids[~selected])
    assert (masked[changed_random] >= 3).all() and (masked[changed_random] < 500).all()
    assert set(np.unique(weights)) <= {0.0, 1.0}


def test_mask_tokens_is_deterministic_by_seed_and_pure():
    ids = _random_ids(16, 32, 100)
    a = mask_tokens(ids, 3, 2, 100, special_ids=SPECIALS)
    b = tf.function(lambda x: mask_tokens(x, 3, 2, 100, special_ids=SPECIALS))(tf.constant(ids))
    c = mask_tokens(ids, 4, 2, 100, special_ids=SPECIALS)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])
    # zoo.ops.random.as_seed: an int, a scalar tensor and [s, 0] agree; the low 32 bits count.
    for same in (tf.constant([3, 0]), tf.constant(3, tf.int64), 2**32 + 3):
        np.testing.assert_array_equal(mask_tokens(ids, same, 2, 100, special_ids=SPECIALS)[0], a[0])
    spans = mask_spans(ids, 5, 2, special_ids=SPECIALS)
    np.testing.assert_array_equal(
        mask_spans(ids, tf.constant([5, 0]), 2, special_ids=SPECIALS)[2], spans[2]
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    rate=st.floats(0.0, 1.0),
    batch=st.integers(1, 6),
    length=st.integers(1, 20),
)
def test_mask_tokens_properties(seed, rate, batch, length):
    ids = _random_ids(batch, length, 30, seed=seed % 1000, min_length=0)
    ids[0, 0] = 1  # an [UNK]: special, never selected
    masked, targets, weights = (
        t.numpy() for t in mask_tokens(ids, seed, 2, 30, rate=rate, special_ids=SPECIALS)
    )
    assert not weights[np.isin(ids, SPECIALS)].any()
    np.testing.assert_array_equal(masked[weights == 0], ids[weights == 0])
    np.testing.assert_array_equal(targets, ids)
    if rate == 0.0:
        assert weights.sum() == 0
    if rate == 1.0:
        np.testing.assert_array_equal(weights == 1, ~np.isin(ids, SPECIALS))


def test_mask_tokens_bad_arguments():
    with pytest.raises(ValueError, match="rate"):
        mask_tokens([[3]], 0, 2, 10, rate=1.5)
    with pytest.raises(ValueError, match="mask_fraction \\+ random_fraction"):
        mask_tokens([[3]], 0, 2, 10, mask_fraction=0.8, random_fraction=0.3)


def test_mask_spans_covers_contiguous_spans_at_the_rate():
    ids = _random_ids(512, 96, 40, min_length=60)
    masked, targets, weights = (
        t.numpy() for t in mask_spans(ids, 5, 2, rate=0.15, mean_span=3, special_ids=SPECIALS)
    )
    real = ids != 0
    assert not (weights.astype(bool) & ~real).any()
    assert abs(weights.sum() / real.sum() - 0.15) < 0.02
    np.testing.assert_array_equal(masked == 2, weights == 1)  # spans are all [MASK]
    # Runs of masked positions: mean length about 3 (a bit more where spans merge).
    runs = []
    for row in weights:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row, [0]])))
        runs.extend(edges[1::2] - edges[::2])
    assert 2.5 < np.mean(runs) < 4.5 and max(runs) >= 5
    again = mask_spans(ids, 5, 2, rate=0.15, mean_span=3, special_ids=SPECIALS)[2].numpy()
    np.testing.assert_array_equal(again, weights)


def test_mask_spans_example_hides_characters_of_a_word(corpus):
    tok = TextTokenizer("char", 16).adapt(corpus)
    ids = tok(["aprender"] * 64)
    masked, _, weights = mask_spans(
        ids, 0, tok.mask_id, rate=0.4, mean_span=3, special_ids=tok.special_ids
    )
    shown = [s.replace("[MASK]", "_") for s in tok.decode(masked)]
    assert all(len(s) == 8 for s in shown)
    assert any("__" in s for s in shown)
    assert all(c == "_" or c == "aprender"[i] for s in shown for i, c in enumerate(s))


# --- pipeline ---


def test_make_mlm_dataset_shapes_and_determinism(word_tokenizer, corpus):
    ds = make_mlm_dataset(corpus, word_tokenizer, batch_size=8, seed=1)
    first = [tuple(t.numpy() for t in b) for b in ds.take(3)]
    again = [
        tuple(t.numpy() for t in b) for b in make_mlm_dataset(corpus, word_tokenizer, 8, 1).take(3)
    ]
    other = next(iter(make_mlm_dataset(corpus, word_tokenizer, 8, 2)))[2].numpy()
    masked, targets, weights = first[0]
    assert masked.shape == targets.shape == weights.shape == (8, 24)
    assert masked.dtype == np.int32 and weights.dtype == np.float32
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0][2], other)
    assert not (weights.astype(bool) & (targets == 0)).any()
    # Evaluation: one ordered pass over every text, last batch kept.
    eval_ds = make_mlm_dataset(corpus[:20], word_tokenizer, 8, 0, shuffle=False, repeat=False)
    sizes = [b[1].shape[0] for b in eval_ds]
    assert sizes == [8, 8, 4]
    np.testing.assert_array_equal(next(iter(eval_ds))[1], word_tokenizer(corpus[:8]))


def test_make_mlm_dataset_spans(corpus):
    tok = TextTokenizer("char", 112).adapt(corpus)
    masked, targets, weights = next(iter(make_mlm_dataset(corpus, tok, 16, 0, masking="spans")))
    np.testing.assert_array_equal(masked.numpy() == tok.mask_id, weights.numpy() == 1)
    assert 0.05 < weights.numpy().sum() / (targets.numpy() > 0).sum() < 0.3


def test_chunk_words_and_file_splits(tmp_path):
    assert chunk_words(["a b c d e", "f"], 2) == ["a b", "c d", "e", "f"]
    with pytest.raises(ValueError, match="max_words"):
        chunk_words(["a"], 0)
    assert words_per_text("word", 40) == 38 and words_per_text("char", 160) == 22
    path = tmp_path / "t.txt"
    path.write_text("\n".join(f"linha {i} com cinco palavras" for i in range(20)), encoding="utf-8")
    train, test = load_text_splits(paths=[path], test_fraction=0.25, seed=0, max_words=3)
    assert len(train) == 30 and len(test) == 10  # 15 + 5 lines, each cut in 2 pieces
    assert all(len(t.split()) <= 3 for t in train + test)
    whole_train, whole_test = load_text_splits(paths=[path], test_fraction=0.25, seed=0)
    assert not set(whole_train) & set(whole_test) and len(whole_test) == 5


def test_make_mlm_dataset_evaluation_passes(word_tokenizer, corpus):
    passes = list(make_mlm_dataset(corpus[:16], word_tokenizer, 8, 0, shuffle=False, repeat=2))
    assert len(passes) == 4
    np.testing.assert_array_equal(passes[0][1], passes[2][1])  # same texts...
    assert not np.array_equal(passes[0][2], passes[2][2])  # ...new masks
