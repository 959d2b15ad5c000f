"""A word- or character-level tokenizer that runs inside ``tf.data``: ``TextTokenizer``.

``TextTokenizer(level="word" | "char")`` wraps ``keras.layers.TextVectorization`` (word split on
whitespace after Unicode lowercasing and punctuation stripping, or ``split="character"``) with a
vocabulary built from the training text (or given) and the reserved ids ``[PAD] = 0``,
``[UNK] = 1``, ``[MASK] = 2`` (``mask_token=False``: no ``[MASK]``, words from id 2, for models
that never see masked text, e.g. the multimodal captions). Calling it on a batch of strings
gives int32 ids ``(B, L)``, in eager code or inside ``tf.data``.

Example:
    >>> tokenizer = TextTokenizer("word", sequence_length=24).adapt(grammar_corpus(2000))
    >>> ids = tokenizer(["Deixa o menino pegar a bola e aprender."])        # (1, 24)
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.ops.checks import check_int
from zoo.text.corpora import read_utf8

__all__ = [
    "CHAR_LEVEL",
    "LEVELS",
    "MASK_TOKEN",
    "PAD_TOKEN",
    "RESERVED_TOKENS",
    "UNK_TOKEN",
    "WORD_LEVEL",
    "TextTokenizer",
    "checked_vocabulary",
    "standardize_chars",
    "standardize_words",
    "words_per_text",
]

PAD_TOKEN, UNK_TOKEN, MASK_TOKEN = "[PAD]", "[UNK]", "[MASK]"
RESERVED_TOKENS = (PAD_TOKEN, UNK_TOKEN, MASK_TOKEN)  # ids 0, 1, 2
WORD_LEVEL, CHAR_LEVEL = "word", "char"
LEVELS = (WORD_LEVEL, CHAR_LEVEL)


def words_per_text(level, sequence_length):
    """How many words to put in one text (``chunk_words``) so it fills ``sequence_length``
    tokens: ``sequence_length - 2`` words (punctuation split off a word adds a token now and
    then), ``sequence_length // 2`` at WordPiece level (held-out fortunes-br words take 1.7
    pieces on average with a 2,000-piece vocabulary), or ``sequence_length // 7`` at character
    level (Portuguese words average about 6 characters with the space)."""
    if level == WORD_LEVEL:
        return max(1, sequence_length - 2)
    if level == "wordpiece":
        return max(1, sequence_length // 2)
    return max(1, sequence_length // 7)


_PUNCTUATION = r"[^\pL\pN\s]"  # everything but letters, digits and whitespace (RE2, Unicode)


@keras.saving.register_keras_serializable(package="zoo")
def standardize_words(texts):
    """Unicode lowercase, punctuation replaced by spaces (word level)."""
    texts = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.regex_replace(texts, _PUNCTUATION, " ")


@keras.saving.register_keras_serializable(package="zoo")
def standardize_chars(texts):
    """Unicode lowercase, runs of whitespace collapsed to one space, ends stripped (char level)."""
    texts = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.strip(tf.strings.regex_replace(texts, r"\s+", " "))


def training_texts(texts):
    """``adapt``'s input as a non-empty list of strings: a string, a list of strings or a
    (batched or not) string dataset."""
    if isinstance(texts, tf.data.Dataset):
        if texts.element_spec.shape.rank:
            texts = texts.unbatch()
        texts = [t.decode("utf-8") for t in texts.as_numpy_iterator()]
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("adapt needs at least one text. Received: an empty list")
    return texts


class JsonFileMixin:
    """``save`` / ``load`` of a tokenizer's ``get_config()`` as a UTF-8 JSON file."""

    def save(self, path):
        """Writes the config and vocabulary as JSON (UTF-8); ``load`` reads it back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(self.get_config(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        return path

    @classmethod
    def load(cls, path):
        try:
            config = json.loads(read_utf8(path))
        except json.JSONDecodeError as error:
            raise DataError(
                f"not a tokenizer JSON file ({error.msg})", file=path, field=f"line {error.lineno}"
            ) from None
        return cls.from_config(config)


def checked_vocabulary(tokens, *, forbidden=(), whole_words=True):
    """``tokens`` as strings without the leading reserved tokens; raises on a bad vocabulary.

    Args:
        tokens: the vocabulary; ``""`` and ``RESERVED_TOKENS`` may lead it (they are dropped).
        forbidden: further strings no token may be (e.g. WordPiece's suffix indicator).
        whole_words: tokens may hold no whitespace.

    Raises:
        ValueError: a duplicate, a reserved or forbidden token, or (``whole_words``) whitespace.
    """
    tokens = [str(t) for t in tokens]
    while tokens and tokens[0] in ("", *RESERVED_TOKENS):
        tokens = tokens[1:]
    bad = [t for t in tokens if t in ("", *RESERVED_TOKENS, *forbidden)]
    if whole_words:
        bad += [t for t in tokens if len(t.split()) != 1]
    if bad or len(set(tokens)) != len(tokens):
        raise ValueError(
            "vocabulary tokens must be unique and not reserved (words without whitespace). "
            "Received duplicates or reserved tokens: "
            f"{sorted(set(bad) or {t for t in tokens if tokens.count(t) > 1})[:5]}"
        )
    return tokens


class TextTokenizer(JsonFileMixin):
    """Word- or character-level tokenizer that runs inside ``tf.data``.

    A thin owner of ``keras.layers.TextVectorization``: the vocabulary is built by ``adapt``
    from the training text (most frequent first, ties alphabetical, so it is deterministic)
    or given; ids 0, 1, 2 are ``[PAD]``, ``[UNK]`` (out of vocabulary) and ``[MASK]``.

    Args:
        level: ``"word"`` (Unicode lowercase, punctuation stripped, split on whitespace) or
            ``"char"`` (Unicode lowercase, whitespace collapsed, one id per character,
            punctuation kept).
        sequence_length: Output length ``L``: longer texts are truncated, shorter padded with 0.
        max_tokens: Largest vocabulary size, the reserved tokens included (None: no limit).
        min_count: Tokens seen fewer times in ``adapt`` are left out (they become ``[UNK]``).
        vocabulary: A vocabulary to use instead of ``adapt`` (tokens after the reserved ones).
        mask_token: Reserve id 2 for ``[MASK]`` (masked-token pretraining). False: only
            ``[PAD]`` and ``[UNK]`` are reserved and the vocabulary starts at id 2 (a model
            that never sees masked text, e.g. ``zoo.multimodal.CaptionTokenizer``).

    Call:
        ``tokenizer(texts)``: a string or a batch of strings ``(B,)`` (list or tensor) ->
        int32 ids ``(B, L)`` (``(L,)`` for one scalar string).

    Example:
        >>> tokenizer = TextTokenizer("word", sequence_length=8)
        >>> tokenizer.adapt(["O menino pega a bola.", "A menina lê o livro."])
        >>> ids = tokenizer(["o menino lê a bola"])          # (1, 8)
        >>> tokenizer.decode(ids)
        ['o menino lê a bola']
        >>> ds = tf.data.Dataset.from_tensor_slices(texts).batch(32).map(tokenizer)
    """

    pad_id, unk_id = 0, 1

    def __init__(
        self,
        level="word",
        sequence_length=32,
        max_tokens=None,
        min_count=1,
        vocabulary=None,
        mask_token=True,
    ):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}. Received: level={level!r}")
        self.level = level
        self.sequence_length = check_int("sequence_length", sequence_length)
        self.mask_token = bool(mask_token)
        self.reserved_tokens = RESERVED_TOKENS if self.mask_token else RESERVED_TOKENS[:2]
        reserved = len(self.reserved_tokens)
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens <= reserved):
            raise ValueError(
                f"max_tokens must be None or an integer >= {reserved + 1} ({reserved} reserved "
                f"tokens + 1). Received: max_tokens={max_tokens!r}"
            )
        self.max_tokens = max_tokens
        self.min_count = check_int("min_count", min_count)
        self._layer = None
        self._lookup = None
        self.counts = None  # token -> count in the adapted texts
        self._tokens = None
        self._index = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # --- vocabulary ---

    @property
    def standardize(self):
        return standardize_words if self.level == WORD_LEVEL else standardize_chars

    def split(self, texts):
        """Python tokens of each text (standardised like the layer does), for counting and
        fill-ins.

        Args:
            texts: A string or a list of strings.

        Returns:
            List (one per text) of lists of token strings.
        """
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if not texts:
            return []
        standardized = self.standardize(tf.constant(texts, dtype=tf.string)).numpy()
        out = []
        for text in standardized:
            text = text.decode("utf-8")
            out.append(text.split() if self.level == WORD_LEVEL else list(text))
        return out

    def adapt(self, texts):
        """Builds the vocabulary from training texts (list of strings or a string dataset).

        Returns:
            self.
        """
        texts = training_texts(texts)
        counts = collections.Counter()
        for start in range(0, len(texts), 4096):
            for tokens in self.split(texts[start : start + 4096]):
                counts.update(tokens)
        ranked = sorted(
            (
                tok
                for tok, n in counts.items()
                if n >= self.min_count and tok not in RESERVED_TOKENS
            ),
            key=lambda tok: (-counts[tok], tok),
        )
        if self.max_tokens is not None:
            ranked = ranked[: self.max_tokens - len(self.reserved_tokens)]
        if not ranked:
            raise ValueError("adapt found no token in the texts (all empty after standardising)")
        self.set_vocabulary(ranked)
        self.counts = {tok: counts[tok] for tok in ranked}
        return self

    def set_vocabulary(self, tokens):
        """Uses ``tokens`` (ids 3, 4, ...; 2, 3, ... without ``[MASK]``); the reserved tokens
        may lead the list. Word-level tokens hold no whitespace."""
        tokens = checked_vocabulary(tokens, whole_words=self.level == WORD_LEVEL)
        self._tokens = tokens
        self._index = {tok: i + len(self.reserved_tokens) for i, tok in enumerate(tokens)}
        self._lookup = None
        # TextVectorization keeps ids 0 ("") and 1 (its OOV token, "[UNK]") for itself.
        self._layer = keras.layers.TextVectorization(
            standardize=self.standardize,
            split="whitespace" if self.level == WORD_LEVEL else "character",
            output_mode="int",
            output_sequence_length=self.sequence_length,
            vocabulary=[MASK_TOKEN, *tokens] if self.mask_token else tokens,
            name=f"{self.level}_vectorizer",
        )

    def _check_adapted(self):
        if self._layer is None:
            raise ValueError("TextTokenizer has no vocabulary: call adapt(texts) first")

    @property
    def vocabulary(self):
        """All tokens by id: ``["[PAD]", "[UNK]", "[MASK]", ...]`` (no ``[MASK]`` without
        ``mask_token``)."""
        self._check_adapted()
        return [*self.reserved_tokens, *self._tokens]

    @property
    def vocab_size(self):
        self._check_adapted()
        return len(self.reserved_tokens) + len(self._tokens)

    @property
    def mask_id(self):
        """Id of ``[MASK]`` (2), or None without ``mask_token``."""
        return 2 if self.mask_token else None

    @property
    def special_ids(self):
        """Ids never selected for masking nor drawn as random tokens: (pad, unk, mask), or
        (pad, unk) without ``mask_token``."""
        return tuple(range(len(self.reserved_tokens)))

    @property
    def continuation(self):
        """NumPy bool ``(vocab_size,)`` marking tokens that continue a word: none at word level
        (every token is a whole word), None at character level (no word structure)."""
        if self.level != WORD_LEVEL:
            return None
        return np.zeros(self.vocab_size, bool)

    def candidate_words(self, max_words=None):
        """The vocabulary's words (most frequent first): the words a fill-in may propose."""
        self._check_adapted()
        return list(self._tokens) if max_words is None else list(self._tokens[:max_words])

    def tokenize_words(self, words):
        """Word level: ids of words, string tensor of any shape ``S`` -> int32 ragged
        ``S + (None,)`` (a word with punctuation inside gives the ids of its parts). Runs in
        graphs (the fill-in export uses it)."""
        self._check_adapted()
        if self.level != WORD_LEVEL:
            raise ValueError(
                f"tokenize_words needs a word-level tokenizer. Received: level={self.level!r}"
            )
        if self._lookup is None:
            # The same ids as the TextVectorization layer: "" -> 0, out of vocabulary -> 1.
            self._lookup = keras.layers.StringLookup(
                vocabulary=self._layer.get_vocabulary()[2:],
                mask_token="",
                oov_token=UNK_TOKEN,
                num_oov_indices=1,
                output_mode="int",
                name="word_lookup",
            )
        words = tf.convert_to_tensor(words, tf.string)
        parts = tf.strings.split(self.standardize(words))
        return tf.cast(self._lookup(parts), tf.int32)

    def token_id(self, token):
        """Id of one (already standardised) token; ``[UNK]``'s id when unknown."""
        self._check_adapted()
        if token in self.reserved_tokens:
            return self.reserved_tokens.index(token)
        return self._index.get(token, self.unk_id)

    # --- encode / decode ---

    def __call__(self, texts):
        self._check_adapted()
        ids = self._layer(texts)
        return tf.cast(ids, tf.int32)

    def decode(self, ids, skip_padding=True):
        """Ids back to text (tokens joined by spaces at word level, directly at char level).

        Args:
            ids: ``(L,)`` or ``(B, L)`` ints (tensor, array or list).
            skip_padding: Leave out ``[PAD]`` ids (``[UNK]`` and ``[MASK]`` are always shown by
                name).

        Returns:
            A string for ``(L,)`` input, else a list of strings.
        """
        self._check_adapted()
        ids = np.asarray(ids)
        single = ids.ndim == 1
        vocabulary = self.vocabulary
        joiner = " " if self.level == WORD_LEVEL else ""
        out = []
        for row in np.atleast_2d(ids):
            tokens = [
                vocabulary[int(i)] if 0 <= int(i) < len(vocabulary) else UNK_TOKEN
                for i in row
                if not (skip_padding and int(i) == self.pad_id)
            ]
            out.append(joiner.join(tokens))
        return out[0] if single else out

    # --- config / save ---

    def get_config(self):
        return {
            "level": self.level,
            "sequence_length": self.sequence_length,
            "max_tokens": self.max_tokens,
            "min_count": self.min_count,
            "vocabulary": list(self._tokens) if self._tokens is not None else None,
            "mask_token": self.mask_token,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        size = self.vocab_size if self._layer is not None else "not adapted"
        return (
            f"{type(self).__name__}(level={self.level!r}, "
            f"sequence_length={self.sequence_length}, vocab_size={size})"
        )
