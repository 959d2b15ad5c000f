"""Strings in, strings out: BlankFiller and the fill-in SavedModel on a tiny trained model, run
again in a subprocess that does not import zoo; bad input gives empty results, not errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.text.export import convert_fill_in_tflite, export_fill_in_model, verify_fill_in_export
from zoo.text.fill import BlankFiller
from zoo.text.grammar import grammar_corpus
from zoo.text.loss import MaskedTokenLoss
from zoo.text.masking import make_mlm_dataset
from zoo.text.metrics import FILL_IN_SENTENCE, fill_in
from zoo.text.model import build_mlm_model, build_text_encoder
from zoo.text.tokenizer import TextTokenizer
from zoo.text.wordpiece import WordPieceTokenizer

LENGTH = 16
SENTENCES = [
    FILL_IN_SENTENCE,
    "A menina ___ o livro.",
    "",  # empty: no blank
    "O menino pega a bola.",  # no blank
    "(___), ontem ___ e __pren_____!",  # punctuation around blanks, three blanks
]


def tiny_mlm(tokenizer, texts, steps=20):
    keras.utils.set_random_seed(0)
    encoder = build_text_encoder(
        tokenizer.vocab_size, LENGTH, embed_dim=16, num_heads=2, ff_dim=32, num_layers=1
    )
    model = build_mlm_model(encoder, tokenizer.vocab_size)
    if not steps:
        return model
    model.compile(keras.optimizers.Adam(5e-3), loss=MaskedTokenLoss(), jit_compile=False)
    masking = "words" if tokenizer.level == "wordpiece" else "tokens"
    ds = make_mlm_dataset(texts, tokenizer, 32, seed=0, masking=masking, rate=0.3)
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained():
    texts = grammar_corpus(400, seed=0)
    # A small budget: many words are split into pieces ("aprender" among them or not).
    tokenizer = WordPieceTokenizer(LENGTH, vocab_size=150).adapt(texts)
    return tiny_mlm(tokenizer, texts), tokenizer


def decode(array):
    return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array)


def test_filler_outputs_strings_of_the_right_shape(trained):
    model, tokenizer = trained
    filler = BlankFiller(model, tokenizer, top_k=3)
    out = filler(tf.constant(SENTENCES))
    assert out["fills"].dtype == tf.string and out["fills"].shape == (5, 3, 3)
    assert out["scores"].dtype == tf.float32 and out["scores"].shape == (5, 3, 3)
    assert out["num_blanks"].numpy().tolist() == [2, 1, 0, 0, 3]
    fills, scores = decode(out["fills"].numpy()), out["scores"].numpy()
    words = set(tokenizer.counts)
    # Whole blanks: three different training words, best first, finite log-probabilities.
    for b, j in [(0, 0), (1, 0), (4, 0), (4, 1)]:
        assert len(set(fills[b, j])) == 3 and set(fills[b, j]) <= words
        assert np.all(np.isfinite(scores[b, j])) and np.all(np.diff(scores[b, j]) <= 0)
        assert np.all(scores[b, j] < 0)
    # "__pren_____": only the training words of at most 4 pieces with "pren" inside, a letter
    # or more around it (two here: "aprende" takes 5 pieces), then "" with -inf.
    pren = {w for w in words if "pren" in w[1:-1] and len(tokenizer.pieces(w)) <= 4}
    assert pren == {"aprender", "aprenderam"}
    for b, j in [(0, 1), (4, 2)]:
        assert set(fills[b, j, :2]) == pren and fills[b, j, 2] == ""
        assert np.all(np.isfinite(scores[b, j, :2])) and np.isneginf(scores[b, j, 2])
    # Padding rows (past a sentence's blanks) and blank-free sentences: "" and -inf.
    assert (fills[0, 2] == "").all() and np.isneginf(scores[0, 2]).all()
    assert (fills[2:4] == "").all() and np.isneginf(scores[2:4]).all()
    completed = decode(out["sentences"].numpy())
    assert completed[0] == f"Deixa o menino {fills[0, 0, 0]} bola e {fills[0, 1, 0]}"
    assert completed[2] == "" and completed[3] == "O menino pega a bola."
    assert completed[4].startswith(f"({fills[4, 0, 0]}), ontem ") and completed[4].endswith("!")
    # The in-process helper gives the same top-1 sentence, and refuses a sentence without blank.
    assert fill_in(model, tokenizer, FILL_IN_SENTENCE, filler=filler) == completed[0]
    with pytest.raises(ValueError, match="no blank"):
        fill_in(model, tokenizer, "O menino pega a bola.")


def test_the_model_ranks_the_fills(trained):
    """The letters only filter the candidates: their order is the model's scores."""
    model, tokenizer = trained
    filler = BlankFiller(model, tokenizer, top_k=50)
    out = filler(tf.constant(["deixa o menino pegar a bola e __pren_____"]))
    fills = [w for w in decode(out["fills"].numpy())[0, 0] if w]
    assert fills == sorted(
        (w for w in tokenizer.counts if len(tokenizer.pieces(w)) <= 4 and "pren" in w[1:-1]),
        key=lambda w: -float(out["scores"].numpy()[0, 0, fills.index(w)]),
    )
    # The score of a fill is the sum of its pieces' log-probabilities at k [MASK]s.
    word = fills[0]
    pieces = [tokenizer.token_id(p) for p in tokenizer.pieces(word)]
    masked = tokenizer.pieces("deixa o menino pegar a bola e")
    ids = [tokenizer.token_id(p) for p in masked] + [tokenizer.mask_id] * len(pieces)
    logits = model(np.array([ids + [0] * (LENGTH - len(ids))], np.int32), training=False)
    log_probs = tf.nn.log_softmax(logits[0]).numpy()
    expected = sum(log_probs[len(masked) + i, p] for i, p in enumerate(pieces))
    assert float(out["scores"].numpy()[0, 0, 0]) == pytest.approx(expected, abs=1e-4)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, tokenizer = trained
    return export_fill_in_model(model, tokenizer, tmp_path_factory.mktemp("export") / "fill_in", 3)


def test_saved_model_without_zoo_gives_the_same_fills(trained, exported):
    model, tokenizer = trained
    path = exported
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["requires"] == ["tensorflow_text"] and manifest["top_k"] == 3
    assert manifest["signature"]["inputs"] == {"sentences": {"dtype": "string", "shape": [None]}}
    report = verify_fill_in_export(model, tokenizer, path, SENTENCES)
    assert report["ok"], report["failures"]
    assert report["imported"] == ["tensorflow_text"]
    exported = report["saved_model"]
    assert exported["fills"].shape == (5, 3, 3) and exported["num_blanks"].tolist() == [
        2, 1, 0, 0, 3,
    ]  # fmt: skip
    assert exported["sentences"][3] == "O menino pega a bola."
    with pytest.raises(FileExistsError):
        export_fill_in_model(model, tokenizer, path)


def test_word_level_filler_and_bad_arguments():
    texts = grammar_corpus(200, seed=1)
    tokenizer = TextTokenizer("word", LENGTH).adapt(texts)
    model = tiny_mlm(tokenizer, texts, steps=0)  # untrained: the shapes and errors only
    filler = BlankFiller(model, tokenizer, top_k=2)
    assert filler.max_pieces == 1 and filler.num_candidates == tokenizer.vocab_size - 3
    out = filler(tf.constant([FILL_IN_SENTENCE, "   "]))
    fills = decode(out["fills"].numpy())
    assert out["num_blanks"].numpy().tolist() == [2, 0] and "pren" in fills[0, 1, 0][1:-1]
    assert (fills[1] == "").all()
    # An empty batch is fine too.
    assert filler(tf.constant([], tf.string))["fills"].shape == (0, 1, 2)
    with pytest.raises(ValueError, match="WordPiece or word-level"):
        BlankFiller(model, TextTokenizer("char", LENGTH).adapt(texts))
    with pytest.raises(ValueError, match="blank must be one character"):
        BlankFiller(model, tokenizer, blank="a")
    with pytest.raises(ValueError, match="top_k"):
        BlankFiller(model, tokenizer, top_k=0)


@pytest.mark.slow
def test_wordpiece_export_does_not_convert_to_tflite(exported, tmp_path):
    """TensorFlow Text's WordPiece op is neither a TFLite builtin nor a Select TF op."""
    with pytest.raises(ValueError, match="FastWordpieceTokenizeWithOffsets"):
        convert_fill_in_tflite(exported, tmp_path / "fill_in.tflite")
