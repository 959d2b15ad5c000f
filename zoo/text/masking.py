"""BERT-style masking of token ids and the masked-language-model ``tf.data`` pipeline.

``mask_tokens`` is BERT's masking as one pure batched function with stateless random ops:
each non-special token is selected with probability ``rate`` (15 %); a selected token becomes
``[MASK]`` with probability ``mask_fraction`` (80 %), a random non-special token with probability
``random_fraction`` (10 %), and stays unchanged otherwise (10 %). ``mask_words`` applies the
same rule to whole words of sub-word pieces (every ``##`` piece goes with its word).
``mask_spans`` hides contiguous spans (e.g. characters of a word: ``aprender`` -> ``a______r``),
as in "__pren_____". All return ``(masked_ids, targets, weights)``, with ``weights = 1``
exactly on the selected positions; ``make_mlm_dataset`` turns texts into such batches,
reproducibly from a seed.

Example:
    >>> train = grammar_corpus(2000, seed=0)
    >>> tokenizer = TextTokenizer("word", sequence_length=24)
    >>> tokenizer.adapt(train)
    >>> ds = make_mlm_dataset(train, tokenizer, batch_size=32, seed=0)
    >>> masked_ids, targets, weights = next(iter(ds))     # each (32, 24)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.ops.checks import check_fraction, check_int
from zoo.ops.random import as_seed

__all__ = [
    "MASKINGS",
    "make_mlm_dataset",
    "mask_spans",
    "mask_tokens",
    "mask_words",
    "word_numbers",
]

MASKINGS = ("tokens", "words", "spans")


def _candidates(ids, special_ids):
    candidate = tf.ones_like(ids, dtype=tf.bool)
    for special in special_ids:
        candidate &= tf.not_equal(ids, special)
    return candidate


def mask_tokens(
    ids,
    seed,
    mask_id,
    vocab_size,
    rate=0.15,
    mask_fraction=0.8,
    random_fraction=0.1,
    special_ids=(0,),
):
    """BERT masking of a batch of token ids: a pure function of ``(ids, seed)``.

    Each token whose id is not in ``special_ids`` is selected independently with probability
    ``rate``. A selected token is replaced by ``mask_id`` with probability ``mask_fraction``, by
    a random token (uniform over the ids in ``[0, vocab_size)`` that are not special) with
    probability ``random_fraction``, and kept otherwise. Only stateless random ops are used, so
    the same ``(ids, seed)`` gives the same result in eager code, in ``tf.function`` and in
    ``tf.data``.

    Args:
        ids: int ``(B, L)`` (any shape works) token ids; padding is 0.
        seed: int, scalar int tensor or int tensor ``(2,)`` (``zoo.ops.random.as_seed``: the
            low 32 bits of each word are used).
        mask_id: Id of ``[MASK]``.
        vocab_size: Number of ids (random tokens are drawn below it).
        rate: Fraction of non-special tokens selected (BERT: 0.15).
        mask_fraction: Of the selected, fraction replaced by ``[MASK]`` (0.8).
        random_fraction: Of the selected, fraction replaced by a random token (0.1); the rest
            (0.1) is left unchanged.
        special_ids: Ids never selected nor drawn as random tokens (padding at least; with a
            ``TextTokenizer``: ``tokenizer.special_ids`` = pad, unk, mask).

    Returns:
        ``(masked_ids, targets, weights)``: int32 ``masked_ids`` (the model input), int32
        ``targets`` (the original ids), float32 ``weights`` (1 exactly on selected positions,
        else 0).

    Example:
        >>> ids = tokenizer(["deixa o menino pegar a bola e aprender"])
        >>> masked, targets, weights = mask_tokens(ids, seed=0, mask_id=2, vocab_size=100,
        ...                                        special_ids=(0, 1, 2))
    """
    rate = check_fraction("rate", rate)
    mask_fraction = check_fraction("mask_fraction", mask_fraction)
    random_fraction = check_fraction("random_fraction", random_fraction)
    if mask_fraction + random_fraction > 1.0 + 1e-9:
        raise ValueError(
            "mask_fraction + random_fraction must be <= 1. Received: "
            f"mask_fraction={mask_fraction!r}, random_fraction={random_fraction!r}"
        )
    special_ids = tuple(int(s) for s in special_ids)
    allowed = [i for i in range(int(vocab_size)) if i not in set(special_ids)]
    if random_fraction > 0 and not allowed:
        raise ValueError(
            f"no id below vocab_size={vocab_size} is outside special_ids={special_ids}: "
            "nothing to draw random tokens from"
        )
    ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
    shape = tf.shape(ids)
    seeds = tf.random.experimental.stateless_split(as_seed(seed), num=3)
    selected = _candidates(ids, special_ids) & (
        tf.random.stateless_uniform(shape, seed=seeds[0]) < rate
    )
    action = tf.random.stateless_uniform(shape, seed=seeds[1])
    to_mask = selected & (action < mask_fraction)
    to_random = selected & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    masked = tf.where(to_mask, tf.cast(mask_id, tf.int32), ids)
    if allowed:
        draw = tf.random.stateless_uniform(
            shape, seed=seeds[2], minval=0, maxval=len(allowed), dtype=tf.int32
        )
        random_tokens = tf.gather(tf.constant(allowed, tf.int32), draw)
        masked = tf.where(to_random, random_tokens, masked)
    return masked, ids, tf.cast(selected, tf.float32)


def word_numbers(ids, continuation, special_ids=(0,)):
    """Which word each token belongs to: int32 ``(B, L)``, words numbered from 0 in each row.

    A word starts at every non-special token that is not a continuation (``##`` piece), and
    at a continuation that follows a special token or starts the row (a word cut by
    truncation). Special tokens take the number of the word before them and never join it.

    Args:
        ids: int ``(B, L)`` token ids.
        continuation: bool ``(vocab_size,)``, True for continuation pieces.
        special_ids: Ids outside every word (padding, ``[UNK]``, ``[MASK]``).

    Returns:
        ``(numbers, starts)``: int32 word numbers and the bool word starts, both ``(B, L)``.
    """
    ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
    candidate = _candidates(ids, special_ids)
    continues = tf.gather(tf.constant(np.asarray(continuation, bool)), ids)
    previous = tf.pad(candidate, [[0, 0], [1, 0]])[:, :-1]
    starts = candidate & (~continues | ~previous)
    numbers = tf.maximum(tf.cumsum(tf.cast(starts, tf.int32), axis=-1) - 1, 0)
    return numbers, starts


def mask_words(
    ids,
    seed,
    mask_id,
    vocab_size,
    continuation,
    rate=0.15,
    mask_fraction=0.8,
    random_fraction=0.1,
    special_ids=(0,),
):
    """Whole-word BERT masking of sub-word ids: every piece of a selected word is selected.

    As ``mask_tokens``, but the draws are made per word (``word_numbers``): a word is selected
    with probability ``rate`` and then all its pieces become ``[MASK]`` (``mask_fraction``),
    all become random pieces (``random_fraction``), or all stay unchanged. So the model never
    sees half of a word it has to restore, and a masked word's pieces can be scored together
    (masked word accuracy). With no continuation pieces this is ``mask_tokens``'s rule.

    Args:
        ids: int ``(B, L)`` token ids.
        seed: int, scalar int tensor or int tensor ``(2,)``.
        mask_id: Id of ``[MASK]``.
        vocab_size: Number of ids (random pieces are drawn below it).
        continuation: bool ``(vocab_size,)``: True for pieces that continue a word
            (``tokenizer.continuation``).
        rate, mask_fraction, random_fraction, special_ids: see ``mask_tokens``.

    Returns:
        ``(masked_ids, targets, weights)`` as ``mask_tokens``.

    Example:
        >>> masked, targets, weights = mask_words(tokenizer(texts), 0, tokenizer.mask_id,
        ...     tokenizer.vocab_size, tokenizer.continuation, special_ids=tokenizer.special_ids)
    """
    rate = check_fraction("rate", rate)
    mask_fraction = check_fraction("mask_fraction", mask_fraction)
    random_fraction = check_fraction("random_fraction", random_fraction)
    if mask_fraction + random_fraction > 1.0 + 1e-9:
        raise ValueError(
            "mask_fraction + random_fraction must be <= 1. Received: "
            f"mask_fraction={mask_fraction!r}, random_fraction={random_fraction!r}"
        )
    continuation = np.asarray(continuation, bool)
    if continuation.shape != (int(vocab_size),):
        raise ValueError(
            f"continuation must have one entry per id ({vocab_size}). "
            f"Received: shape {continuation.shape}"
        )
    special_ids = tuple(int(s) for s in special_ids)
    allowed = [i for i in range(int(vocab_size)) if i not in set(special_ids)]
    ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
    if ids.shape.rank != 2:
        raise ValueError(f"mask_words takes ids of shape (B, L). Received: shape {ids.shape}")
    shape = tf.shape(ids)
    seeds = tf.random.experimental.stateless_split(as_seed(seed), num=3)
    numbers, _ = word_numbers(ids, continuation, special_ids)
    # One draw per word: the draw of position n is used by word n of the row (n < L).
    word_draw = tf.gather(tf.random.stateless_uniform(shape, seed=seeds[0]), numbers, batch_dims=1)
    action = tf.gather(tf.random.stateless_uniform(shape, seed=seeds[1]), numbers, batch_dims=1)
    selected = _candidates(ids, special_ids) & (word_draw < rate)
    to_mask = selected & (action < mask_fraction)
    to_random = selected & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    masked = tf.where(to_mask, tf.cast(mask_id, tf.int32), ids)
    if allowed:
        draw = tf.random.stateless_uniform(
            shape, seed=seeds[2], minval=0, maxval=len(allowed), dtype=tf.int32
        )
        masked = tf.where(to_random, tf.gather(tf.constant(allowed, tf.int32), draw), masked)
    return masked, ids, tf.cast(selected, tf.float32)


def mask_spans(ids, seed, mask_id, rate=0.15, mean_span=3, special_ids=(0,)):
    """Masks contiguous spans (e.g. runs of characters: ``aprender`` -> ``a____der``).

    Span starts are drawn independently at each non-special position with probability
    ``p = -ln(1 - rate) / mean_span`` and span lengths uniformly in ``[1, 2 * mean_span - 1]``
    (mean ``mean_span``), so that about ``rate`` of the tokens end up covered (overlapping
    spans merge). Covered positions that are special (padding) are left alone. Every covered
    position becomes ``[MASK]`` (as in "__pren_____"; no random/unchanged share).

    Args:
        ids: int ``(B, L)`` token ids.
        seed: int, scalar int tensor or int tensor ``(2,)`` (as ``mask_tokens``).
        mask_id: Id of ``[MASK]``.
        rate: Target fraction of non-special tokens covered.
        mean_span: Mean span length (integer >= 1).
        special_ids: Ids never covered.

    Returns:
        ``(masked_ids, targets, weights)`` as ``mask_tokens``.

    Example:
        >>> masked, targets, weights = mask_spans(char_ids, seed=0, mask_id=2, mean_span=4)
    """
    rate = check_fraction("rate", rate)
    if rate >= 1.0:
        raise ValueError(f"rate must be < 1 for span masking. Received: rate={rate!r}")
    mean_span = check_int("mean_span", mean_span)
    special_ids = tuple(int(s) for s in special_ids)
    ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
    shape = tf.shape(ids)
    seeds = tf.random.experimental.stateless_split(as_seed(seed), num=2)
    candidate = _candidates(ids, special_ids)
    start_p = -np.log1p(-rate) / mean_span
    starts = candidate & (tf.random.stateless_uniform(shape, seed=seeds[0]) < start_p)
    max_span = 2 * mean_span - 1
    lengths = tf.random.stateless_uniform(
        shape, seed=seeds[1], minval=1, maxval=max_span + 1, dtype=tf.int32
    )
    covered = tf.zeros_like(candidate)
    length = shape[-1]
    for offset in range(max_span):
        reach = starts & (lengths > offset)
        shifted = tf.pad(reach, [[0, 0]] * (ids.shape.rank - 1) + [[offset, 0]])[..., :length]
        covered |= shifted
    selected = covered & candidate
    masked = tf.where(selected, tf.cast(mask_id, tf.int32), ids)
    return masked, ids, tf.cast(selected, tf.float32)


# === tf.data pipeline ========================================================================


def make_mlm_dataset(
    texts,
    tokenizer,
    batch_size,
    seed=0,
    *,
    masking="tokens",
    rate=0.15,
    mask_fraction=0.8,
    random_fraction=0.1,
    mean_span=3,
    shuffle=True,
    repeat=True,
    drop_remainder=None,
):
    """Masked-language-model batches ``(masked_ids, targets, weights)`` from texts.

    Pipeline: texts -> shuffle (seeded) -> repeat -> batch -> tokenize the batch -> mask the
    whole batch with the seed ``(seed, batch_index)`` -> prefetch. The element is Keras's
    ``(x, y, sample_weight)``: ``model.fit`` passes ``weights`` to the loss as sample weights
    (see ``zoo.text.MaskedTokenLoss``). A new mask is drawn for every batch of every
    epoch (dynamic masking); the same seed gives the same batches. The tokenizer's special ids
    (``[PAD]``, ``[UNK]``, ``[MASK]``) are never selected, so ``[UNK]`` is never a target.

    Args:
        texts: List of strings.
        tokenizer: An adapted ``TextTokenizer`` or ``WordPieceTokenizer``.
        batch_size: Texts per batch.
        seed: Seed of the shuffle and of the masks.
        masking: ``"tokens"`` (BERT, ``mask_tokens``), ``"words"`` (whole words of sub-word
            pieces, ``mask_words``; the WordPiece default) or ``"spans"`` (``mask_spans``).
        rate, mask_fraction, random_fraction: see ``mask_tokens``.
        mean_span: see ``mask_spans``.
        shuffle: Shuffle the texts (training); False for evaluation.
        repeat: True: repeat forever (training; use ``steps_per_epoch``); False: one pass;
            an integer ``k``: ``k`` passes, each with its own masks (a steadier evaluation of
            a small held-out set).
        drop_remainder: Drop a last partial batch (default: True when repeating forever).

    Returns:
        ``tf.data.Dataset`` of int32 ``(B, L)``, int32 ``(B, L)``, float32 ``(B, L)``.

    Example:
        >>> ds = make_mlm_dataset(train_texts, tokenizer, batch_size=64, seed=0)
        >>> model.fit(ds, steps_per_epoch=100)
    """
    if masking not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}. Received: masking={masking!r}")
    continuation = getattr(tokenizer, "continuation", None) if masking == "words" else None
    if masking == "words" and continuation is None:
        raise ValueError(
            "masking='words' needs a tokenizer with words (word or WordPiece level). "
            f"Received: level={getattr(tokenizer, 'level', None)!r}"
        )
    texts = list(texts)
    if not texts:
        raise ValueError("make_mlm_dataset needs at least one text. Received: an empty list")
    if drop_remainder is None:
        drop_remainder = repeat is True
    if tokenizer.mask_id is None:
        raise ValueError("make_mlm_dataset needs a tokenizer with a [MASK] token (mask_token=True)")
    specials = tokenizer.special_ids
    vocab_size = tokenizer.vocab_size
    mask_id = tokenizer.mask_id

    def transform(index, batch):
        ids = tokenizer(batch)
        batch_seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
        if masking == "tokens":
            return mask_tokens(
                ids, batch_seed, mask_id, vocab_size, rate, mask_fraction, random_fraction, specials
            )
        if masking == "words":
            return mask_words(
                ids,
                batch_seed,
                mask_id,
                vocab_size,
                continuation,
                rate,
                mask_fraction,
                random_fraction,
                specials,
            )
        return mask_spans(ids, batch_seed, mask_id, rate, mean_span, specials)

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(texts, dtype=tf.string))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if repeat is True:
        ds = ds.repeat()
    elif repeat is not False and int(repeat) > 1:
        ds = ds.repeat(int(repeat))
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).enumerate()
    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
