"""Fill-ins as one TensorFlow graph: raw sentences with blanks in, the top-k words out.

``BlankFiller(model, tokenizer)`` wraps a masked-token model (ids ``(B, L)`` -> logits
``(B, L, V)``) and its tokenizer (``WordPieceTokenizer``, or a word-level ``TextTokenizer``).
Calling it on a batch of sentences runs, inside one graph (so it exports as a SavedModel whose
tokenizer is part of the graph):

1. Words are split on whitespace. A word holding the blank character ``_`` is a blank:
   ``___`` is a whole unknown word; ``__pren_____`` a word whose visible letters are given,
   each run of ``_`` standing for one or more unknown letters (``aprender`` fits, as do
   ``aprende`` and ``aprenderam``). Punctuation around a blank (``___,``) is kept around the
   fill.
2. For each blank and each piece count ``k`` = 1 .. ``max_pieces`` the sentence is encoded
   with that blank as ``k`` ``[MASK]`` pieces (other blanks: one ``[MASK]`` each, the other
   words as their pieces) and run through the model: one forward pass per (blank, ``k``).
3. The candidates are the words the tokenizer was trained on (``tokenizer.candidate_words``:
   WordPiece, every training word of at most ``max_pieces`` pieces, also words seen once;
   word level, the vocabulary). A candidate of ``k`` pieces scores the sum of the model's
   log-probabilities of its pieces at the ``k`` masked positions (the pieces scored
   independently, as BERT's masked positions are). So the model ranks the fills; the letters
   only choose which candidates may be ranked: those matching the blank's pattern
   (``^.+pren.+$``), or every candidate when none matches (as ``zoo.text.fill_in`` does).
4. The top-k candidates per blank are returned with their scores.

Outputs of ``filler(sentences)`` (tf.string ``(B,)``), a dict:

- ``fills``: tf.string ``(B, M, top_k)``, best first; ``M`` = the most blanks in a sentence of
  the batch, at least 1. Blank ``j`` of sentence ``b`` is ``fills[b, j]``; entries past a
  sentence's blanks, past ``sequence_length`` (truncated away) or past the candidates are ``""``.
- ``scores``: float32 ``(B, M, top_k)``: the log-probability (natural log, summed over the
  candidate's pieces) of each fill; ``-inf`` where the fill is ``""``.
- ``num_blanks``: int32 ``(B,)``.
- ``sentences``: tf.string ``(B,)``: the sentence with each blank replaced by its best fill
  (words re-joined by single spaces); a sentence without blanks comes back as written
  (whitespace collapsed).

A sentence without blanks, or an empty one, is not an error: ``num_blanks`` is 0 and its
``fills`` are all ``""``. (``zoo.text.fill_in`` raises instead, for one sentence in Python.)

Example:
    >>> filler = BlankFiller(mlm, tokenizer, top_k=3)
    >>> out = filler(tf.constant(["Deixa o menino ___ bola e __pren_____"]))
    >>> out["fills"][0, 1]          # e.g. [b'aprender', b'aprende', b'aprenderam']
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from zoo.ops.checks import check_int

__all__ = ["BlankFiller"]


class BlankFiller(tf.Module):
    """Strings in, strings out fill-ins of a masked-token model (see the module docstring).

    Args:
        model: ids ``(B, L)`` -> logits ``(B, L, V)`` (``build_mlm_model``).
        tokenizer: The tokenizer the model was trained with: a ``WordPieceTokenizer`` or a
            word-level ``TextTokenizer``.
        top_k: Fills returned per blank.
        max_pieces: Longest candidate, in pieces (WordPiece; 1 at word level). Each piece count
            costs one forward pass per blank.
        max_candidates: At most this many candidate words (most frequent first); None: all.
        blank: The blank character.

    Call:
        ``filler(sentences)``: tf.string ``(B,)`` -> dict ``fills``, ``scores``,
        ``num_blanks``, ``sentences``.
    """

    def __init__(self, model, tokenizer, top_k=5, max_pieces=4, max_candidates=None, blank="_"):
        super().__init__(name="blank_filler")
        if getattr(tokenizer, "continuation", None) is None:
            raise ValueError(
                "BlankFiller needs a WordPiece or word-level tokenizer. "
                f"Received: level={getattr(tokenizer, 'level', None)!r}"
            )
        self.top_k = check_int("top_k", top_k)
        max_pieces = check_int("max_pieces", max_pieces)
        if not isinstance(blank, str) or len(blank) != 1 or blank.isalnum() or blank.isspace():
            raise ValueError(
                f"blank must be one character, not a letter, digit or space. Received: {blank!r}"
            )
        self.blank = blank
        self.model = model
        self.tokenizer = tokenizer
        self.sequence_length = tokenizer.sequence_length
        self.mask_id = int(tokenizer.mask_id)
        self.pad_id = int(tokenizer.pad_id)

        words = tokenizer.candidate_words(max_candidates)
        pieces = tokenizer.tokenize_words(tf.constant(words or [""], tf.string))
        lengths = pieces.row_lengths().numpy()
        padded = pieces.to_tensor(default_value=self.pad_id).numpy()
        special = np.isin(padded, list(tokenizer.special_ids)) & (
            np.arange(padded.shape[1])[None, :] < lengths[:, None]
        )
        keep = (lengths >= 1) & (lengths <= max_pieces) & ~special.any(axis=1)
        keep &= np.array([len(w.split()) == 1 for w in words or [""]])
        if not keep.any():
            raise ValueError(
                f"no candidate word of 1 to max_pieces={max_pieces} known pieces in the "
                "tokenizer's words"
            )
        self.max_pieces = int(lengths[keep].max())
        self.candidate_words = tf.constant([w for w, k in zip(words, keep, strict=True) if k])
        self.candidate_pieces = tf.constant(padded[keep, : self.max_pieces].astype(np.int32))
        self.candidate_lengths = tf.constant(lengths[keep].astype(np.int32))
        self.num_candidates = int(keep.sum())
        # Built on first use at word level: tracked here so that an export holds its table.
        self._word_lookup = getattr(tokenizer, "_lookup", None)

    def _patterns(self, blank_words):
        """``__pren_____`` -> ``.+pren.+`` (lowercase; ``___`` -> ``.+``)."""
        blank = re.escape(self.blank)
        core = tf.strings.regex_replace(blank_words, rf"[^\pL\pN{blank}]", "")
        core = tf.strings.lower(core, encoding="utf-8")
        return tf.strings.regex_replace(core, f"{blank}+", ".+")

    def __call__(self, sentences):
        sentences = tf.convert_to_tensor(sentences, tf.string)
        blank = re.escape(self.blank)
        K, L = self.max_pieces, self.sequence_length
        words_ragged = tf.strings.split(sentences)  # (B, None)
        words = words_ragged.to_tensor(default_value="")  # (B, W)
        batch, width = tf.shape(words)[0], tf.shape(words)[1]
        is_blank = tf.strings.regex_full_match(words, f".*{blank}.*")
        blank_count = tf.cumsum(tf.cast(is_blank, tf.int32), axis=1)
        blank_number = tf.where(is_blank, blank_count - 1, -1)  # (B, W)
        num_blanks = tf.reduce_sum(tf.cast(is_blank, tf.int32), axis=1)
        max_blanks = tf.maximum(tf.reduce_max(tf.concat([num_blanks, [0]], 0)), 1)

        # Pieces of every word; blank words get none here (their [MASK]s come per variant).
        blank_flat = tf.reshape(is_blank, [-1])
        pieces = self.tokenizer.tokenize_words(tf.reshape(words, [-1]))  # (B*W, None)
        lengths = tf.cast(pieces.row_lengths(), tf.int32)
        kept_values = tf.boolean_mask(pieces.flat_values, tf.repeat(~blank_flat, lengths))
        context = tf.RaggedTensor.from_row_lengths(kept_values, tf.where(blank_flat, 0, lengths))

        # Variants r = (b, j, k): sentence b with blank j as k [MASK]s.
        num_variants = batch * max_blanks * K
        r = tf.range(num_variants)
        b_r, j_r, k_r = r // (max_blanks * K), (r // K) % max_blanks, r % K + 1
        word_index = b_r[:, None] * width + tf.range(width)[None, :]  # (R, W)
        blank_rw = tf.gather(blank_flat, word_index)
        target_rw = tf.gather(tf.reshape(blank_number, [-1]), word_index) == j_r[:, None]
        mask_lengths = tf.where(blank_rw, tf.where(target_rw, k_r[:, None], 1), 0)
        source = tf.gather(context, tf.reshape(word_index, [-1]))  # (R*W, None)
        flat_masks = tf.reshape(mask_lengths, [-1])
        masks = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(flat_masks)], self.mask_id), flat_masks
        )
        per_word = tf.concat([source, masks], axis=1)  # one of the two is empty per word
        word_lengths = tf.reshape(tf.cast(per_word.row_lengths(), tf.int32), [-1, width])
        sequences = tf.RaggedTensor.from_row_lengths(
            per_word.flat_values, tf.reduce_sum(word_lengths, axis=1)
        )
        ids = sequences.to_tensor(default_value=self.pad_id, shape=[None, L])
        ids = tf.ensure_shape(tf.cast(ids, tf.int32), [None, L])
        starts = tf.reduce_sum(
            tf.where(target_rw, tf.cumsum(word_lengths, axis=1, exclusive=True), 0), axis=1
        )
        valid_r = (j_r < tf.gather(num_blanks, b_r)) & (starts + k_r <= L)

        # The model's log-probabilities at the masked positions, summed over each candidate.
        # One padding row more: the model never sees an empty batch (an empty input batch).
        padded = tf.concat([ids, tf.fill([1, L], self.pad_id)], axis=0)
        logits = tf.cast(self.model(padded, training=False), tf.float32)[:num_variants]
        positions = tf.minimum(starts[:, None] + tf.range(K)[None, :], L - 1)
        log_probs = tf.nn.log_softmax(tf.gather(logits, positions, batch_dims=1))  # (R, K, V)
        n = self.num_candidates
        pieces_kn = tf.broadcast_to(tf.transpose(self.candidate_pieces)[None], [num_variants, K, n])
        picked = tf.gather(log_probs, pieces_kn, batch_dims=2)  # (R, K, N)
        in_word = tf.range(K)[:, None] < self.candidate_lengths[None, :]  # (K, N)
        scores_r = tf.reduce_sum(tf.where(in_word[None], picked, 0.0), axis=1)  # (R, N)
        scores_bmkn = tf.reshape(scores_r, [batch, max_blanks, K, n])
        pick_k = tf.one_hot(self.candidate_lengths - 1, K, dtype=tf.float32)  # (N, K)
        scores = tf.einsum("bmkn,nk->bmn", scores_bmkn, pick_k)
        valid = tf.gather(
            tf.reshape(valid_r, [batch, max_blanks, K]), self.candidate_lengths - 1, axis=2
        )  # (B, M, N)

        # Candidates that fit the visible letters (all of them when none fits).
        blank_words = tf.ragged.boolean_mask(words, is_blank).to_tensor(
            default_value="", shape=tf.stack([batch, max_blanks])
        )
        patterns = tf.reshape(self._patterns(blank_words), [-1])
        fits = tf.map_fn(
            lambda pattern: tf.strings.regex_full_match(self.candidate_words, pattern),
            patterns,
            fn_output_signature=tf.TensorSpec([n], tf.bool),
        )
        fits = tf.reshape(fits, [batch, max_blanks, n])
        fits = fits | ~tf.reduce_any(fits, axis=-1, keepdims=True)
        scores = tf.where(fits & valid, scores, -np.inf)

        k = min(self.top_k, n)
        best, index = tf.math.top_k(scores, k=k)
        fills = tf.where(best > -np.inf, tf.gather(self.candidate_words, index), "")
        if k < self.top_k:
            padding = [[0, 0], [0, 0], [0, self.top_k - k]]
            best = tf.pad(best, padding, constant_values=-np.inf)
            fills = tf.pad(fills, padding, constant_values="")

        # The sentence with each blank replaced by its best fill, punctuation kept around it.
        top1 = tf.gather(fills[:, :, 0], tf.maximum(blank_number, 0), batch_dims=1)  # (B, W)
        word_char = rf"[\pL\pN{blank}]"
        prefix = tf.strings.regex_replace(words, rf"^([^\pL\pN{blank}]*){word_char}.*$", r"\1")
        suffix = tf.strings.regex_replace(words, rf"^.*{word_char}([^\pL\pN{blank}]*)$", r"\1")
        replaced = tf.where(
            is_blank & tf.not_equal(top1, ""),
            tf.strings.join([prefix, top1, suffix]),
            words,
        )
        completed = tf.strings.reduce_join(
            tf.RaggedTensor.from_tensor(replaced, lengths=words_ragged.row_lengths()),
            axis=1,
            separator=" ",
        )
        return {
            "fills": fills,
            "scores": best,
            "num_blanks": num_blanks,
            "sentences": completed,
        }
