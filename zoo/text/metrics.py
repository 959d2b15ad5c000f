"""Masked-token evaluation: accuracy on the selected positions, the unigram baseline, fill-ins.

- ``masked_accuracy(targets, logits, weights)``: the fraction of selected positions (weight 1)
  whose argmax prediction is the original token.
- The unigram-frequency baseline predicts, at every selected position, the most frequent
  (non-special) token of the TRAINING text (``unigram_counts`` -> ``most_frequent_token``);
  ``unigram_accuracy`` is its accuracy on the same positions. A model that uses context beats
  it by a wide margin on the grammar corpus.
- ``evaluate_mlm(model, dataset, unigram_token)`` does both over a dataset of
  ``(masked_ids, targets, weights)`` (``zoo.text.masking.make_mlm_dataset(..., shuffle=False,
  repeat=False)``), and returns the ratio and the margin.
- ``fill_in(model, tokenizer, "Deixa o menino ___ bola e __pren_____")`` completes blanks.
  Word level: a word made only of ``_`` is one hidden word; a word with letters and ``_``
  (``__pren_____``) is a hidden word that must match the visible letters, each run of ``_``
  standing for one or more letters (so ``aprender`` fits). Character level: every ``_`` is
  one hidden character (``_pren___`` -> ``aprender``).

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

__all__ = [
    "FILL_IN_SENTENCE",
    "FILL_IN_EXAMPLES",
    "evaluate_mlm",
    "fill_in",
    "fill_in_examples",
    "masked_accuracy",
    "most_frequent_token",
    "plot_loss_curve",
    "unigram_accuracy",
    "unigram_counts",
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


def evaluate_mlm(model, dataset, unigram_token):
    """Masked-token accuracy of ``model`` and of the unigram baseline on the same positions.

    Args:
        model: ids ``(B, L)`` -> logits ``(B, L, V)`` (``build_mlm_model``).
        dataset: finite iterable of ``(masked_ids, targets, weights)`` batches.
        unigram_token: The baseline's prediction (``most_frequent_token`` of the training
            counts).

    Returns:
        dict: ``masked_accuracy``, ``unigram_accuracy``, ``ratio`` (model / baseline; None
        when the baseline is 0), ``margin`` (model − baseline, in accuracy points as a
        fraction), ``loss`` (mean cross-entropy over the selected positions),
        ``num_selected``.
    """
    correct = baseline = total = loss_sum = 0.0
    for masked_ids, targets, weights in dataset:
        logits = _numpy(model(masked_ids, training=False)).astype(np.float64)
        targets, weights = _numpy(targets), _numpy(weights).astype(np.float64)
        correct += ((logits.argmax(-1) == targets) * weights).sum()
        baseline += ((targets == unigram_token) * weights).sum()
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, targets[..., None].astype(np.int64), -1)[..., 0]
        loss_sum += (-picked * weights).sum()
        total += weights.sum()
    if total == 0:
        raise ValueError("evaluate_mlm: the dataset has no selected position")
    accuracy, base = correct / total, baseline / total
    return {
        "masked_accuracy": float(accuracy),
        "unigram_accuracy": float(base),
        "ratio": float(accuracy / base) if base > 0 else None,
        "margin": float(accuracy - base),
        "loss": float(loss_sum / total),
        "num_selected": int(total),
    }


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


def fill_in(model, tokenizer, sentence, blank="_"):
    """The model's completion of the blanks in ``sentence`` (one forward pass).

    Args:
        model: ids ``(1, L)`` -> logits ``(1, L, V)``.
        tokenizer: The ``TextTokenizer`` the model was trained with (word or char level).
        sentence: Text with blanks, e.g. ``"Deixa o menino ___ bola e __pren_____"``.
        blank: The blank character.

    Returns:
        The sentence with every blank filled. Word level keeps the other words as written and
        fills a blank word with the most likely vocabulary word (matching the visible letters
        of a partly blank word when some vocabulary word does); character level returns the
        standardised (lowercased) text with one character per ``_``. Special tokens are never
        proposed.

    Raises:
        ValueError: no blank, or the sentence is longer than the tokenizer's sequence length.

    Example:
        >>> fill_in(mlm, tokenizer, "A menina ___ o livro na biblioteca.")
        'A menina lê o livro na biblioteca.'
    """
    if blank not in sentence:
        raise ValueError(f"fill_in: no blank {blank!r} in the sentence. Received: {sentence!r}")
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
    return [(s, fill_in(model, tokenizer, s, blank=blank)) for s in sentences]


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
