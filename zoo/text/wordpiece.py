"""A sub-word (WordPiece) tokenizer that runs inside ``tf.data`` and inside exported graphs.

``WordPieceTokenizer`` sees inside words: each word is split greedily, longest match first,
into pieces of a vocabulary learnt from the training text; a piece that continues a word starts
with ``##`` (``aprender`` -> ``aprend ##er`` when ``aprend`` and ``##er`` are pieces). Every
single letter of the training text, alone and as ``##`` piece, is in the vocabulary, so an
unseen word of known letters is never ``[UNK]``; a word holding a character never seen in
training is one ``[UNK]``.

Both halves come from TensorFlow Text (``tensorflow-text``, the same version line as
TensorFlow): the vocabulary from its WordPiece learner
(``tensorflow_text.tools.wordpiece_vocab.wordpiece_tokenizer_learner_lib.learn``, BERT's
algorithm: candidate pieces above a count threshold, the threshold searched so that the
vocabulary fits ``vocab_size``), the splitting from ``tensorflow_text.FastWordpieceTokenizer``
(a TensorFlow op, so a SavedModel that tokenizes needs ``import tensorflow_text`` before
``tf.saved_model.load``; it is not a TFLite builtin op either).

Words are found as at word level (``zoo.text.tokenizer.standardize_words``: Unicode lowercase,
punctuation replaced by spaces, split on whitespace). Ids 0, 1, 2 are ``[PAD]``, ``[UNK]``,
``[MASK]``.

Example:
    >>> tokenizer = WordPieceTokenizer(sequence_length=24, vocab_size=400)
    >>> tokenizer.adapt(grammar_corpus(2000))
    >>> tokenizer.pieces("Deixa o menino aprender")
    ['deixa', 'o', 'menino', 'aprend', '##er']
    >>> ids = tokenizer(["Deixa o menino aprender."])                        # (1, 24)
"""

from __future__ import annotations

import collections
import json

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.ops.checks import check_int
from zoo.text.corpora import read_utf8
from zoo.text.tokenizer import (
    RESERVED_TOKENS,
    UNK_TOKEN,
    JsonFileMixin,
    TextTokenizer,
    checked_vocabulary,
    standardize_words,
    training_texts,
)

__all__ = [
    "SUFFIX_INDICATOR",
    "TOKENIZER_LEVELS",
    "WORDPIECE_LEVEL",
    "WordPieceTokenizer",
    "learn_wordpiece_vocabulary",
    "load_tokenizer",
    "make_tokenizer",
]

SUFFIX_INDICATOR = "##"
WORDPIECE_LEVEL = "wordpiece"


def _tensorflow_text():
    """``tensorflow_text``, imported on first use (it registers the WordPiece ops)."""
    try:
        import tensorflow_text
    except ImportError as error:  # pragma: no cover - declared in requirements.txt
        raise ImportError(
            "WordPieceTokenizer needs tensorflow-text (pip install 'tensorflow-text>=2.21,<2.22')"
        ) from error
    return tensorflow_text


def learn_wordpiece_vocabulary(word_counts, vocab_size, reserved_tokens=RESERVED_TOKENS):
    """A WordPiece vocabulary for words with counts (TensorFlow Text's learner).

    The learner keeps every character of the words, alone and with ``##``, then adds the
    pieces (word starts and ``##`` continuations) counted at least a threshold times in the
    greedy splits of the words, the threshold chosen by binary search so that the vocabulary
    has at most ``vocab_size`` tokens. When even a threshold of 1 gives more (a small corpus
    with a large ``vocab_size``), the least frequent pieces are cut, never a character.

    Args:
        word_counts: ``{word: count}`` (standardised words without whitespace).
        vocab_size: Largest vocabulary size, the reserved tokens included.
        reserved_tokens: Tokens that take the first ids.

    Returns:
        List of tokens: the reserved ones, then the single characters, then the pieces by
        count (ties alphabetical).

    Example:
        >>> learn_wordpiece_vocabulary({"aprender": 5, "aprende": 4, "prender": 3}, 40)[:5]
        ['[PAD]', '[UNK]', '[MASK]', 'a', 'd']
    """
    vocab_size = check_int("vocab_size", vocab_size)
    reserved_tokens = list(reserved_tokens)
    counts = {str(w): int(n) for w, n in dict(word_counts).items() if str(w) and int(n) > 0}
    if not counts:
        raise ValueError("learn_wordpiece_vocabulary needs at least one word with a count > 0")
    bad = sorted(w for w in counts if len(w.split()) != 1 or w in reserved_tokens)[:5]
    if bad:
        raise ValueError(f"words must hold no whitespace and not be reserved. Received: {bad}")
    letters = sorted({c for w in counts for c in w})
    needed = len(reserved_tokens) + 2 * len(letters)
    if vocab_size < needed:
        raise ValueError(
            f"vocab_size must hold the {len(reserved_tokens)} reserved tokens and every character "
            f"alone and as '##' piece ({2 * len(letters)}): at least {needed}. "
            f"Received: vocab_size={vocab_size}"
        )
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    # Sorted input: the learner's result does not depend on the order the words were seen in.
    learnt = learner.learn(
        sorted(counts.items()),
        vocab_size,
        reserved_tokens,
        lower_thresh=1,
        joiner=SUFFIX_INDICATOR,
        include_joiner_token=True,
    )
    singles = set(letters) | {SUFFIX_INDICATOR + c for c in letters}
    head = [*reserved_tokens, *letters, *sorted(SUFFIX_INDICATOR + c for c in letters)]
    # The learner also lists the bare joiner "##": not a piece (a word never holds it).
    rest = [t for t in learnt if t not in singles | {SUFFIX_INDICATOR, *reserved_tokens}]
    return head + rest[: vocab_size - len(head)]


class WordPieceTokenizer(JsonFileMixin):
    """WordPiece tokenizer (sub-words, ``##`` continuations) that runs inside ``tf.data``.

    Args:
        sequence_length: Output length ``L`` (pieces): longer texts are truncated, shorter
            padded with 0.
        vocab_size: Largest vocabulary size for ``adapt`` (reserved tokens included).
        vocabulary: A vocabulary to use instead of ``adapt``: tokens by id, the reserved
            ``[PAD]``, ``[UNK]``, ``[MASK]`` first (added when missing).
        word_counts: ``{word: count}`` of the training text, kept with the vocabulary: the
            words a fill-in may propose (``zoo.text.BlankFiller``) and the unigram word
            baseline. ``adapt`` sets it.

    Call:
        ``tokenizer(texts)``: a string or a batch of strings ``(B,)`` -> int32 ids ``(B, L)``
        (``(L,)`` for one scalar string), in eager code, ``tf.function`` or ``tf.data``.

    Example:
        >>> tokenizer = WordPieceTokenizer(sequence_length=8, vocab_size=60)
        >>> tokenizer.adapt(["O menino aprende.", "A menina aprendeu a ler."])
        >>> tokenizer.pieces("aprender")
        ['aprende', '##r']
        >>> tokenizer.decode(tokenizer(["o menino aprender"]))
        ['o menino aprender']
    """

    level = WORDPIECE_LEVEL
    pad_id, unk_id, mask_id = 0, 1, 2
    special_ids = (0, 1, 2)
    reserved_tokens = RESERVED_TOKENS

    def __init__(self, sequence_length=32, vocab_size=2000, vocabulary=None, word_counts=None):
        self.sequence_length = check_int("sequence_length", sequence_length)
        self.vocab_size_limit = check_int(
            "vocab_size", vocab_size, minimum=len(RESERVED_TOKENS) + 1
        )
        self.counts = (
            None if word_counts is None else {str(w): int(n) for w, n in word_counts.items()}
        )
        self._tokens = None
        self._index = None
        self._tokenizer = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # --- vocabulary ---

    standardize = staticmethod(standardize_words)

    def split(self, texts):
        """Python words of each text (standardised as the tokenizer does), before WordPiece.

        Args:
            texts: A string or a list of strings.

        Returns:
            List (one per text) of lists of words.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return []
        standardized = self.standardize(tf.constant(texts, dtype=tf.string)).numpy()
        return [text.decode("utf-8").split() for text in standardized]

    def adapt(self, texts):
        """Counts the words of the training texts and learns the vocabulary from them.

        Args:
            texts: List of strings or a string dataset.

        Returns:
            self.
        """
        texts = training_texts(texts)
        counts = collections.Counter()
        for start in range(0, len(texts), 4096):
            for words in self.split(texts[start : start + 4096]):
                counts.update(w for w in words if w not in RESERVED_TOKENS)
        if not counts:
            raise ValueError("adapt found no word in the texts (all empty after standardising)")
        self.set_vocabulary(learn_wordpiece_vocabulary(counts, self.vocab_size_limit))
        self.counts = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        return self

    def set_vocabulary(self, tokens):
        """Uses ``tokens`` (the reserved tokens first, added when missing); pieces hold no
        whitespace and are unique."""
        tokens = checked_vocabulary(tokens, forbidden=(SUFFIX_INDICATOR,))
        self._tokens = tokens
        vocabulary = [*RESERVED_TOKENS, *tokens]
        self._index = {tok: i for i, tok in enumerate(vocabulary)}
        self._tokenizer = _tensorflow_text().FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator=SUFFIX_INDICATOR,
            token_out_type=tf.int32,
            unknown_token=UNK_TOKEN,
            no_pretokenization=True,
        )

    def _check_adapted(self):
        if self._tokenizer is None:
            raise ValueError("WordPieceTokenizer has no vocabulary: call adapt(texts) first")

    @property
    def vocabulary(self):
        """All tokens by id: ``["[PAD]", "[UNK]", "[MASK]", ...]``."""
        self._check_adapted()
        return [*RESERVED_TOKENS, *self._tokens]

    @property
    def vocab_size(self):
        self._check_adapted()
        return len(RESERVED_TOKENS) + len(self._tokens)

    @property
    def continuation(self):
        """NumPy bool ``(vocab_size,)``: True for ``##`` pieces (they continue a word)."""
        return np.array([t.startswith(SUFFIX_INDICATOR) for t in self.vocabulary], bool)

    def token_id(self, token):
        """Id of one piece; ``[UNK]``'s id when unknown."""
        self._check_adapted()
        return self._index.get(token, self.unk_id)

    # --- encode / decode ---

    def tokenize_words(self, words):
        """Pieces of words: string tensor of any shape ``S`` -> int32 ragged ``S + (None,)``.

        Each element is standardised first (a word with punctuation inside, such as
        ``d'água``, gives the pieces of both parts; a word of punctuation only gives none).
        Runs in graphs (the fill-in export uses it).
        """
        self._check_adapted()
        words = tf.convert_to_tensor(words, tf.string)
        parts = tf.strings.split(self.standardize(words))  # S + (None,)
        pieces = self._tokenizer.tokenize(parts)  # S + (None, None)
        return pieces.merge_dims(-2, -1)

    def __call__(self, texts):
        self._check_adapted()
        texts = tf.convert_to_tensor(texts, tf.string)
        single = texts.shape.rank == 0
        batch = tf.reshape(texts, [-1])
        pieces = self.tokenize_words(batch)  # (B, None)
        ids = pieces.to_tensor(default_value=self.pad_id, shape=[None, self.sequence_length])
        ids = tf.cast(ids, tf.int32)
        return ids[0] if single else ids

    def pieces(self, text):
        """The pieces of one text as strings, e.g. ``['deixa', 'o', 'aprend', '##er']``."""
        self._check_adapted()
        vocabulary = self.vocabulary
        ids = self.tokenize_words(tf.constant([text])).flat_values.numpy()
        return [vocabulary[int(i)] for i in ids]

    def decode(self, ids, skip_padding=True):
        """Ids back to text: pieces joined by spaces, ``##`` pieces glued to the one before.

        Args:
            ids: ``(L,)`` or ``(B, L)`` ints.
            skip_padding: Leave out ``[PAD]`` ids.

        Returns:
            A string for ``(L,)`` input, else a list of strings.
        """
        self._check_adapted()
        ids = np.asarray(ids)
        single = ids.ndim == 1
        vocabulary = self.vocabulary
        out = []
        for row in np.atleast_2d(ids):
            text = ""
            for i in row:
                i = int(i)
                if skip_padding and i == self.pad_id:
                    continue
                token = vocabulary[i] if 0 <= i < len(vocabulary) else UNK_TOKEN
                if token.startswith(SUFFIX_INDICATOR) and text:
                    text += token[len(SUFFIX_INDICATOR) :]
                else:
                    text += (" " if text else "") + token
            out.append(text)
        return out[0] if single else out

    def candidate_words(self, max_words=None):
        """Training words by count (most frequent first): the words a fill-in may propose."""
        if not self.counts:
            raise ValueError(
                "WordPieceTokenizer has no word counts: adapt(texts) or pass word_counts"
            )
        words = list(self.counts)
        return words if max_words is None else words[:max_words]

    # --- config / save ---

    def get_config(self):
        return {
            "level": WORDPIECE_LEVEL,
            "sequence_length": self.sequence_length,
            "vocab_size": self.vocab_size_limit,
            "vocabulary": list(self._tokens) if self._tokens is not None else None,
            "word_counts": self.counts,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        level = config.pop("level", WORDPIECE_LEVEL)
        if level != WORDPIECE_LEVEL:
            raise ValueError(f"not a WordPiece tokenizer config. Received: level={level!r}")
        return cls(**config)

    def __repr__(self):
        size = self.vocab_size if self._tokenizer is not None else "not adapted"
        return f"{type(self).__name__}(sequence_length={self.sequence_length}, vocab_size={size})"


TOKENIZER_LEVELS = ("word", "char", WORDPIECE_LEVEL)


def make_tokenizer(level, sequence_length, max_tokens=None, min_count=1):
    """A tokenizer of any level: ``TextTokenizer`` (``"word"``, ``"char"``) or
    ``WordPieceTokenizer`` (``"wordpiece"``), not adapted yet.

    Args:
        level: One of ``TOKENIZER_LEVELS``.
        sequence_length: Tokens per text.
        max_tokens: Largest vocabulary (WordPiece: the ``vocab_size`` the learner aims at,
            default 2,000; word / char: None, no limit).
        min_count: Word / char level: tokens seen fewer times become ``[UNK]``. (WordPiece
            keeps every word: rare words are split into known pieces.)

    Example:
        >>> tokenizer = make_tokenizer("wordpiece", 64, max_tokens=2000).adapt(train_texts)
    """
    if level not in TOKENIZER_LEVELS:
        raise ValueError(f"level must be one of {TOKENIZER_LEVELS}. Received: level={level!r}")
    if level == WORDPIECE_LEVEL:
        return WordPieceTokenizer(sequence_length, 2000 if max_tokens is None else max_tokens)
    return TextTokenizer(level, sequence_length, max_tokens=max_tokens, min_count=min_count)


def load_tokenizer(path):
    """Reads a tokenizer JSON file written by either tokenizer's ``save``."""
    try:
        config = json.loads(read_utf8(path))
    except json.JSONDecodeError as error:
        raise DataError(
            f"not a tokenizer JSON file ({error.msg})", file=path, field=f"line {error.lineno}"
        ) from None
    if not isinstance(config, dict):
        raise DataError("not a tokenizer JSON file (expected an object)", file=path)
    if config.get("level") == WORDPIECE_LEVEL:
        return WordPieceTokenizer.from_config(config)
    return TextTokenizer.from_config(config)
