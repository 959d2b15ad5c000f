"""Masked-token evaluation: accuracy on the selected positions, the unigram baseline, fill-ins.

- ``masked_accuracy(targets, logits, weights)``: the fraction of selected positions (weight 1)
  whose argmax prediction is the original token.
- The unigram-frequency baseline predicts, at every selected position, the most frequent
  (non-special) token of the TRAINING text (``unigram_counts`` -> ``most_frequent_token``);
  ``unigram_accuracy`` is its accuracy on the same positions. A model that uses context beats
  it by a wide margin on the grammar corpus.
- ``evaluate_mlm(model, dataset, unigram_token)`` does both over a dataset of
  ``(masked_ids, targets, weights)`` (``zoo.text.masking.make_mlm_dataset(..., shuffle=False,
  repeat=False)``), and returns the ratio and the margin. Given the tokenizer's
  ``continuation`` it also scores masked WORDS (right when all their pieces are), against the
  most frequent training word (``unigram_word``): the figures that compare a word-level and a
  WordPiece tokenizer.
- ``fill_in(model, tokenizer, "Deixa o menino ___ bola e __pren_____")`` completes blanks.
  Word and WordPiece level: a word made only of ``_`` is one hidden word; a word with letters
  and ``_`` (``__pren_____``) is a hidden word that must match the visible letters, each run of
  ``_`` standing for one or more letters (so ``aprender`` fits). Character level: every ``_``
  is one hidden character (``_pren___`` -> ``aprender``).

Example:
    >>> counts = unigram_counts(tokenizer(train_texts), tokenizer.vocab_size, tokenizer.special_ids)
    >>> result = evaluate_mlm(mlm, test_ds, most_frequent_token(counts))
    >>> result["masked_accuracy"], result["unigram_accuracy"], result["ratio"]
    >>> fill_in(mlm, tokenizer, "Deixa o menino ___ bola e __pren_____")
    'Deixa o menino pegar bola e aprender'
"""

from __future__ import annotations

import math
import re

import numpy as np
import tensorflow as tf

from zoo.text.fill import BlankFiller

__all__ = [
    "FILL_IN_SENTENCE",
    "FILL_IN_EXAMPLES",
    "evaluate_mlm",
    "fill_in",
    "fill_in_examples",
    "known_word_ids",
    "masked_accuracy",
    "most_frequent_token",
    "plot_loss_curve",
    "unigram_accuracy",
    "unigram_counts",
    "unigram_word",
    "word_spans",
]

# The fill-in example: "Deixa o menino pegar bola e aprender" with blanks.
FILL_IN_SENTENCE = "Deixa o menino ___ bola e __pren_____"
FILL_IN_EXAMPLES = (
    FILL_IN_SENTENCE,
    "Deixa o menino _____ bola e _pren___",  # the same with one "_" per hidden letter
    "A menina ___ o livro na biblioteca.",
    "Ontem os meninos ___ no mar.",
    "As meninas estão ___ porque correram no parque.",
    "Quando ___ professora cantou na festa ela pegou a caixa.",
    "Amanhã o gato ___ dormir no sofá.",
)


def _numpy(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def _predictions(logits_or_ids):
    values = _numpy(logits_or_ids)
    return values.argmax(-1) if values.ndim == 3 else values


def masked_accuracy(targets, predictions, weights):
    """Accuracy over the selected positions.

    Args:
        targets: int ``(B, L)`` original ids.
        predictions: float logits ``(B, L, V)`` or int predicted ids ``(B, L)``.
        weights: ``(B, L)``, 1 on selected positions (a weighted mean for other weights).

    Returns:
        float in [0, 1]; NaN when no position is selected.

    Example:
        >>> masked_accuracy([[3, 4]], [[3, 9]], [[1, 1]])
        0.5
    """
    targets, weights = _numpy(targets), _numpy(weights).astype(np.float64)
    correct = (_predictions(predictions) == targets).astype(np.float64)
    total = weights.sum()
    return float((correct * weights).sum() / total) if total > 0 else math.nan


def unigram_counts(ids, vocab_size, special_ids=(0,)):
    """Token counts of (training) ids, the special ids set to 0.

    Args:
        ids: int array of any shape (e.g. ``tokenizer(train_texts)``).
        vocab_size: Number of ids.
        special_ids: Ids not counted (padding, ``[UNK]``, ``[MASK]``).

    Returns:
        int64 ``(vocab_size,)`` counts.
    """
    ids = _numpy(ids).reshape(-1).astype(np.int64)
    counts = np.bincount(ids[(ids >= 0) & (ids < vocab_size)], minlength=vocab_size)
    counts[[s for s in special_ids if 0 <= s < vocab_size]] = 0
    return counts


def most_frequent_token(counts):
    """Id of the most frequent token (the lowest id among ties)."""
    counts = _numpy(counts)
    if counts.sum() <= 0:
        raise ValueError("most_frequent_token: all counts are 0 (no non-special training token)")
    return int(np.argmax(counts))


def unigram_accuracy(targets, weights, token_id):
    """Accuracy of predicting ``token_id`` at every selected position (NaN if none)."""
    targets = _numpy(targets)
    return masked_accuracy(targets, np.full_like(targets, token_id), weights)


def word_spans(targets, continuation, special_ids=(0,)):
    """The words of one row of token ids as ``(start, end)`` index pairs (end excluded).

    A word is a token that does not continue a word followed by its continuation pieces
    (``##`` pieces); special tokens belong to no word, and a continuation after one (or at the
    start) begins a word of its own. Every token is a word when nothing continues.

    Args:
        targets: int ``(L,)`` ids.
        continuation: bool ``(vocab_size,)``, True for continuation pieces.
        special_ids: Ids outside every word (padding, ``[UNK]``, ``[MASK]``).

    Returns:
        List of ``(start, end)``.

    Example:
        >>> word_spans([5, 7, 8, 6, 0], continuation=[0, 0, 0, 0, 0, 0, 0, 0, 1])  # 8 is "##"
        [(0, 1), (1, 3), (3, 4)]
    """
    targets = _numpy(targets).astype(np.int64)
    continuation = np.asarray(continuation, bool)
    special = np.isin(targets, list(special_ids))
    spans, start = [], None
    for i, token in enumerate(targets):
        if special[i]:
            if start is not None:
                spans.append((start, i))
            start = None
        elif start is None or not continuation[token]:
            if start is not None:
                spans.append((start, i))
            start = i
    if start is not None:
        spans.append((start, len(targets)))
    return spans


def unigram_word(ids, continuation, special_ids=(0,)):
    """The most frequent word of (training) ids as a tuple of piece ids (ties: lowest ids).

    The word-level unigram baseline predicts it for every masked word; with a word-level
    tokenizer it is ``(most_frequent_token(...),)``.

    Args:
        ids: int ``(B, L)`` (e.g. ``tokenizer(train_texts)``).
        continuation: bool ``(vocab_size,)`` (``tokenizer.continuation``).
        special_ids: Ids outside every word.

    Returns:
        Tuple of ints.
    """
    counts = {}
    for row in np.atleast_2d(_numpy(ids)):
        for start, end in word_spans(row, continuation, special_ids):
            word = tuple(int(i) for i in row[start:end])
            counts[word] = counts.get(word, 0) + 1
    if not counts:
        raise ValueError("unigram_word: no word in the ids (all special)")
    return min(counts, key=lambda word: (-counts[word], word))


def known_word_ids(tokenizer, texts, min_count=2):
    """The words seen at least ``min_count`` times in ``texts`` as tuples of their ids: the
    words a word-level vocabulary with that ``min_count`` keeps (``evaluate_mlm``'s
    ``known_words``), for any tokenizer with ``split`` and ``tokenize_words``.

    Example:
        >>> known = known_word_ids(tokenizer, train_texts, min_count=2)
    """
    counts = {}
    for words in tokenizer.split(texts):
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    words = sorted(w for w, n in counts.items() if n >= min_count)
    if not words:
        return set()
    pieces = tokenizer.tokenize_words(tf.constant(words)).to_list()
    return {tuple(int(i) for i in ids) for ids in pieces if ids}


def evaluate_mlm(
    model,
    dataset,
    unigram_token,
    *,
    continuation=None,
    unigram_word=None,
    known_words=None,
    special_ids=(0, 1, 2),
):
    """Masked-token accuracy of ``model`` and of the unigram baseline on the same positions.

    With ``continuation`` (sub-word tokenizers; also word level, where it is all False) the
    same is reported per masked WORD, comparable across tokenizers: a word is masked when any
    of its pieces is selected and right when every selected piece is predicted right (with
    ``mask_words`` all its pieces are selected); the word baseline is right when the masked
    word is ``unigram_word``.

    Args:
        model: ids ``(B, L)`` -> logits ``(B, L, V)`` (``build_mlm_model``).
        dataset: finite iterable of ``(masked_ids, targets, weights)`` batches.
        unigram_token: The baseline's prediction (``most_frequent_token`` of the training
            counts).
        continuation: bool ``(vocab_size,)`` (``tokenizer.continuation``): adds the word
            metrics.
        unigram_word: Tuple of piece ids, the word baseline's prediction (``unigram_word``);
            default ``(unigram_token,)``.
        known_words: Optional set of words (tuples of piece ids): the word metrics are also
            reported on the masked words in it (``known_*``), e.g. the words a word-level
            vocabulary holds, so that two tokenizers are scored on the same words.
        special_ids: Ids outside every word (``tokenizer.special_ids``).

    Returns:
        dict: ``masked_accuracy``, ``unigram_accuracy``, ``ratio`` (model / baseline; None
        when the baseline is 0), ``margin`` (model − baseline, in accuracy points as a
        fraction), ``loss`` (mean cross-entropy over the selected positions),
        ``num_selected``; with ``continuation`` also ``word_accuracy``,
        ``unigram_word_accuracy``, ``word_ratio``, ``num_words``; with ``known_words`` also
        ``known_word_accuracy``, ``known_unigram_word_accuracy``, ``known_word_ratio``,
        ``num_known_words``.
    """
    correct = baseline = total = loss_sum = 0.0
    word_counts = np.zeros((2, 3))  # rows: all / known words; columns: model, baseline, total
    if unigram_word is None:
        unigram_word = (int(unigram_token),)
    unigram_word = tuple(int(i) for i in unigram_word)
    for masked_ids, targets, weights in dataset:
        logits = _numpy(model(masked_ids, training=False)).astype(np.float64)
        targets, weights = _numpy(targets), _numpy(weights).astype(np.float64)
        predictions = logits.argmax(-1)
        correct += ((predictions == targets) * weights).sum()
        baseline += ((targets == unigram_token) * weights).sum()
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, targets[..., None].astype(np.int64), -1)[..., 0]
        loss_sum += (-picked * weights).sum()
        total += weights.sum()
        if continuation is None:
            continue
        for row in range(targets.shape[0]):
            for start, end in word_spans(targets[row], continuation, special_ids):
                selected = weights[row, start:end] > 0
                if not selected.any():
                    continue
                word = tuple(int(i) for i in targets[row, start:end])
                hit = bool(
                    np.all(
                        predictions[row, start:end][selected] == targets[row, start:end][selected]
                    )
                )
                scores = (hit, word == unigram_word, 1.0)
                word_counts[0] += scores
                if known_words is not None and word in known_words:
                    word_counts[1] += scores
    if total == 0:
        raise ValueError("evaluate_mlm: the dataset has no selected position")
    accuracy, base = correct / total, baseline / total
    result = {
        "masked_accuracy": float(accuracy),
        "unigram_accuracy": float(base),
        "ratio": float(accuracy / base) if base > 0 else None,
        "margin": float(accuracy - base),
        "loss": float(loss_sum / total),
        "num_selected": int(total),
    }
    for prefix, (hits, base_hits, count), wanted in (
        ("", word_counts[0], continuation is not None),
        ("known_", word_counts[1], continuation is not None and known_words is not None),
    ):
        if not wanted:
            continue
        accuracy = hits / count if count else math.nan
        base = base_hits / count if count else math.nan
        result.update(
            {
                f"{prefix}word_accuracy": float(accuracy),
                f"{prefix}unigram_word_accuracy": float(base),
                f"{prefix}word_ratio": float(accuracy / base) if base > 0 else None,
                f"num_{prefix}words": int(count),
            }
        )
    return result


# === Fill-ins ===============================================================================

_WORD = re.compile(r"^(\W*?)([\w]+)(\W*)$")


def _blank_pattern(core, blank):
    """``__pren_____`` -> regex ``^.+pren.+$`` (None for a word of blanks only)."""
    if set(core) <= {blank}:
        return None
    parts = re.split(f"({re.escape(blank)}+)", core.lower())
    return re.compile(
        "^" + "".join(".+" if p and set(p) <= {blank} else re.escape(p) for p in parts) + "$"
    )


def _best(logits, allowed):
    scores = np.where(allowed, logits, -np.inf)
    return int(np.argmax(scores))


def _special_free(tokenizer, vocab_size):
    allowed = np.ones(vocab_size, bool)
    allowed[list(tokenizer.special_ids)] = False
    return allowed


def fill_in(model, tokenizer, sentence, blank="_", filler=None):
    """The model's completion of the blanks in ``sentence`` (one forward pass; WordPiece: one
    per blank and piece count).

    Args:
        model: ids ``(1, L)`` -> logits ``(1, L, V)``.
        tokenizer: The ``TextTokenizer`` (word or char level) or ``WordPieceTokenizer`` the
            model was trained with.
        sentence: Text with blanks, e.g. ``"Deixa o menino ___ bola e __pren_____"``.
        blank: The blank character.
        filler: WordPiece: a ``zoo.text.BlankFiller`` to reuse (built when None).

    Returns:
        The sentence with every blank filled. Word level keeps the other words as written and
        fills a blank word with the most likely vocabulary word (matching the visible letters
        of a partly blank word when some vocabulary word does); character level returns the
        standardised (lowercased) text with one character per ``_``. WordPiece level fills
        each blank with the training word (of up to 4 pieces) that the model scores best
        among those matching the visible letters (``zoo.text.fill.BlankFiller``), keeping
        punctuation around the blank. Special tokens are never proposed.

    Raises:
        ValueError: no blank, or the sentence is longer than the tokenizer's sequence length.

    Example:
        >>> fill_in(mlm, tokenizer, "A menina ___ o livro na biblioteca.")
        'A menina lê o livro na biblioteca.'
    """
    if blank not in sentence:
        raise ValueError(f"fill_in: no blank {blank!r} in the sentence. Received: {sentence!r}")
    if tokenizer.level == "wordpiece":
        filler = filler or BlankFiller(model, tokenizer, top_k=1, blank=blank)
        out = filler(tf.constant([sentence]))
        fills = out["fills"].numpy()[0, : int(out["num_blanks"].numpy()[0]), 0]
        if any(f == b"" for f in fills):
            raise ValueError(
                f"fill_in: a blank lies past sequence_length={tokenizer.sequence_length} "
                f"pieces: {sentence!r}"
            )
        return out["sentences"].numpy()[0].decode("utf-8")
    vocabulary = tokenizer.vocabulary
    allowed = _special_free(tokenizer, len(vocabulary))
    length = tokenizer.sequence_length
    if tokenizer.level == "char":
        chars = tokenizer.split(sentence)[0]  # lowercased; "_" survives standardising
        ids = [tokenizer.mask_id if c == blank else tokenizer.token_id(c) for c in chars]
        if len(ids) > length:
            raise ValueError(
                f"fill_in: {len(ids)} characters exceed sequence_length={length}: {sentence!r}"
            )
        logits = _numpy(
            model(np.array([ids + [0] * (length - len(ids))], np.int32), training=False)
        )
        return "".join(
            vocabulary[_best(logits[0, i], allowed)] if c == blank else c
            for i, c in enumerate(chars)
        )

    words = sentence.split()
    ids, slots = [], {}  # slots: word index -> (token position, pattern, prefix, suffix)
    for w, word in enumerate(words):
        match = _WORD.match(word)
        if blank in word and match:
            prefix, core, suffix = match.groups()
            slots[w] = (len(ids), _blank_pattern(core, blank), prefix, suffix)
            ids.append(tokenizer.mask_id)
        else:
            ids.extend(tokenizer.token_id(t) for t in tokenizer.split(word)[0])
    if len(ids) > length:
        raise ValueError(f"fill_in: {len(ids)} words exceed sequence_length={length}: {sentence!r}")
    logits = _numpy(model(np.array([ids + [0] * (length - len(ids))], np.int32), training=False))
    out = list(words)
    for w, (position, pattern, prefix, suffix) in slots.items():
        choice = allowed
        if pattern is not None:
            fits = allowed & np.array([bool(pattern.match(tok)) for tok in vocabulary])
            choice = fits if fits.any() else allowed
        out[w] = prefix + vocabulary[_best(logits[0, position], choice)] + suffix
    return " ".join(out)


def fill_in_examples(model, tokenizer, sentences=FILL_IN_EXAMPLES, blank="_"):
    """``[(sentence, completion), ...]`` for a few example sentences (the fill-in example first)."""
    filler = None
    if tokenizer.level == "wordpiece":
        filler = BlankFiller(model, tokenizer, top_k=1, blank=blank)
    return [(s, fill_in(model, tokenizer, s, blank=blank, filler=filler)) for s in sentences]


# === Plot ==================================================================================


def plot_loss_curve(history, path, title="Masked-token pretraining"):
    """Writes a PNG of the training loss and masked-token accuracy per epoch.

    Args:
        history: ``keras.callbacks.History`` or its ``.history`` dict.
        path: Output ``.png`` (parents created).
        title: Figure title.

    Returns:
        The path.
    """
    from zoo.metrics.plots import plot_history

    return plot_history(history, path, title=title)
