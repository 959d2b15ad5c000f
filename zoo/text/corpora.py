"""Text corpora as lists of Python strings (one sentence or passage each), and their splits.

- ``grammar_corpus(n, seed)`` (``zoo.text.grammar``): Portuguese sentences from a small
  probabilistic grammar; held-out sentences come from another seed with ``exclude=train``.
- ``read_text_files(paths, unit="line" | "paragraph")``: UTF-8 text files.
- ``load_fortunes_br(unit="fortune" | "sentence")``: the Portuguese fortunes of the Debian
  package ``fortunes-br`` (``apt-get install fortunes-br``).
- ``load_text_splits``: training and held-out texts of any of them, without overlap;
  ``split_sentences`` and ``chunk_words`` cut texts into sentences or pieces of a few words.

Example:
    >>> train, test = load_text_splits("grammar", num_train=5000, num_test=500)
    >>> texts = read_text_files(["a.txt", "b.txt"], unit="paragraph")
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from zoo.data.errors import DataError
from zoo.ops.checks import check_int
from zoo.text.grammar import grammar_corpus

__all__ = [
    "FORTUNES_BR_PACKAGE",
    "TEXT_CORPORA",
    "chunk_words",
    "load_fortunes_br",
    "load_text_splits",
    "read_text_files",
    "read_utf8",
    "split_sentences",
]


def read_utf8(path):
    """The text of a UTF-8 file (a byte-order mark is dropped).

    Raises:
        DataError: naming the file: missing, not a file, unreadable, not UTF-8 (with the line),
            or holding NUL bytes (UTF-16 / binary data).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a file", file=path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read the file ({error.strerror or error})", file=path) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            "UTF-16 text (it starts with a UTF-16 byte-order mark); re-encode the file as UTF-8",
            file=path,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1]
        raise DataError(
            f"not UTF-8 text (byte {byte!r} at offset {error.start}); re-encode the file as UTF-8",
            file=path,
            field=f"line {line}",
        ) from None
    if "\x00" in text:
        offset = data.index(b"\x00")
        line = data[:offset].count(b"\n") + 1
        raise DataError(
            f"NUL byte at offset {offset}: binary data or UTF-16 text, not UTF-8; re-encode "
            "the file as UTF-8",
            file=path,
            field=f"line {line}",
        )
    return text


def _paragraphs(text):
    blocks = re.split(r"\n\s*\n", text)
    return [" ".join(block.split()) for block in blocks if block.strip()]


def read_text_files(paths, unit="line"):
    """Reads UTF-8 text files into a list of texts.

    Args:
        paths: A path or a list of paths.
        unit: ``"line"`` (one sentence per line; blank lines skipped) or ``"paragraph"``
            (blocks separated by blank lines, each joined into one line).

    Returns:
        List of non-empty strings, whitespace collapsed, files in the given order.

    Raises:
        DataError: naming the file: missing, not UTF-8 (with the line), or without any text.

    Example:
        >>> texts = read_text_files(["a.txt", "b.txt"])
    """
    if unit not in ("line", "paragraph"):
        raise ValueError(f"unit must be 'line' or 'paragraph'. Received: unit={unit!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError("read_text_files needs at least one path. Received: paths=[]")
    texts = []
    for path in paths:
        text = read_utf8(path)
        if unit == "line":
            found = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        else:
            found = _paragraphs(text)
        if not found:
            raise DataError("no text (the file is empty or only whitespace)", file=path)
        texts.extend(found)
    return texts


def split_sentences(texts, min_words=3):
    """Splits texts after ``.``, ``!``, ``?`` or ``…`` followed by whitespace.

    Args:
        texts: List of strings.
        min_words: Sentences with fewer words are dropped.

    Returns:
        List of sentences (whitespace collapsed).

    Example:
        >>> split_sentences(["Eu não bebo água! Peixes transam nela."], min_words=2)
        ['Eu não bebo água!', 'Peixes transam nela.']
    """
    out = []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?…])\s+", " ".join(text.split())):
            if len(sentence.split()) >= min_words:
                out.append(sentence)
    return out


def chunk_words(texts, max_words):
    """Cuts each text into consecutive pieces of at most ``max_words`` words.

    Long passages (a fortune, a paragraph) then fit the tokenizer's sequence length without
    losing their ends, and short ones stay whole, so little of each batch is padding.

    Args:
        texts: List of strings.
        max_words: Words per piece (>= 1).

    Returns:
        List of strings, in order.

    Example:
        >>> chunk_words(["a b c d e"], 2)
        ['a b', 'c d', 'e']
    """
    max_words = check_int("max_words", max_words)
    out = []
    for text in texts:
        words = text.split()
        out.extend(" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words))
    return out


FORTUNES_BR_PACKAGE = "fortunes-br"


def _fortunes_br_files():
    """The fortune files of the installed Debian package (``dpkg -L fortunes-br``)."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        raise FileNotFoundError(
            "the fortunes-br corpus needs the Debian package 'fortunes-br' (dpkg not found on "
            "this system); pass text files instead (--data FILE)"
        )
    proc = subprocess.run([dpkg, "-L", FORTUNES_BR_PACKAGE], capture_output=True, text=True)
    if proc.returncode != 0:
        raise FileNotFoundError(
            "the Debian package 'fortunes-br' is not installed (sudo apt-get install "
            "fortunes-br); pass text files instead (--data FILE)"
        )
    files = []
    for line in proc.stdout.splitlines():
        path = Path(line.strip())
        if "fortunes" in path.parts and path.suffix not in (".dat", ".u8") and path.is_file():
            files.append(path)
    if not files:
        raise FileNotFoundError(
            f"dpkg lists no fortune files for 'fortunes-br':\n{proc.stdout.strip()}"
        )
    return sorted(files)


def _parse_fortunes(path):
    text = read_utf8(path)
    fortunes = []
    for block in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        # Attribution lines ("-- Author") are names, not sentences: left out.
        lines = [line for line in block.splitlines() if not line.strip().startswith("--")]
        joined = " ".join(" ".join(lines).split())
        if joined:
            fortunes.append(joined)
    if not fortunes:
        raise DataError("no fortunes (expected text blocks separated by '%' lines)", file=path)
    return fortunes


def load_fortunes_br(unit="fortune", paths=None):
    """The Portuguese fortunes of the Debian package ``fortunes-br``.

    Fortune files are blocks of text separated by lines holding ``%``; attribution lines
    (``-- Author``) are dropped and each fortune's whitespace is collapsed to single spaces.

    Args:
        unit: ``"fortune"`` (one string per fortune) or ``"sentence"`` (fortunes split with
            ``split_sentences``, sentences of fewer than 3 words dropped).
        paths: Fortune files to read instead of the package's (same format).

    Returns:
        List of strings (about 2,500 fortunes in fortunes-br 2010).

    Raises:
        FileNotFoundError: the package is not installed (and ``paths`` not given).
        DataError: a file is not UTF-8 or holds no fortune.

    Example:
        >>> fortunes = load_fortunes_br()
        >>> fortunes[0]
        'Porque a galinha atravessa a rua? Porque o upstream mandou!'
    """
    if unit not in ("fortune", "sentence"):
        raise ValueError(f"unit must be 'fortune' or 'sentence'. Received: unit={unit!r}")
    files = _fortunes_br_files() if paths is None else [Path(p) for p in paths]
    fortunes = [f for path in files for f in _parse_fortunes(path)]
    return split_sentences(fortunes) if unit == "sentence" else fortunes


TEXT_CORPORA = ("grammar", "fortunes-br")


def load_text_splits(
    corpus="grammar",
    paths=None,
    num_train=None,
    num_test=None,
    test_fraction=0.1,
    seed=0,
    unit="line",
    max_words=None,
):
    """Training and held-out texts of a corpus, split without overlap.

    Args:
        corpus: ``"grammar"`` (``grammar_corpus``) or ``"fortunes-br"`` (``load_fortunes_br``,
            split by fortune). Ignored when ``paths`` is given.
        paths: Text file(s) (``read_text_files(paths, unit)``), split by line/paragraph.
        num_train: Grammar: sentences to generate (default 20,000). Files and fortunes: at
            most this many training texts (default: all).
        num_test: Grammar: held-out sentences, all different from the training ones (default
            2,000). Files and fortunes: at most this many held-out texts (default: all).
        test_fraction: Files and fortunes: the share held out (whole fortunes/lines).
        seed: Seed of the grammar (held-out: ``seed + 1000``) and of the split.
        unit: ``read_text_files`` unit.
        max_words: Files and fortunes: after the split, cut every text into pieces of at most
            this many words (``chunk_words``); None keeps them whole (fortunes: then split
            into sentences).

    Returns:
        ``(train_texts, test_texts)``, lists of strings.

    Example:
        >>> train, test = load_text_splits("grammar", num_train=5000, num_test=500)
    """
    if paths is None and corpus not in TEXT_CORPORA:
        raise ValueError(f"corpus must be one of {TEXT_CORPORA}. Received: corpus={corpus!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}"
        )
    if paths is None and corpus == "grammar":
        train = grammar_corpus(20000 if num_train is None else num_train, seed=seed)
        test = grammar_corpus(
            2000 if num_test is None else num_test, seed=seed + 1000, exclude=train
        )
        return train, test
    texts = load_fortunes_br("fortune") if paths is None else read_text_files(paths, unit)
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = max(1, int(round(len(texts) * test_fraction)))
    if cut >= len(texts):
        raise ValueError(
            f"{len(texts)} texts are too few to hold out test_fraction={test_fraction} and train "
            "on the rest"
        )
    test = [texts[i] for i in order[:cut]]
    train = [texts[i] for i in order[cut:]]
    if max_words is not None:
        train, test = chunk_words(train, max_words), chunk_words(test, max_words)
    elif paths is None:  # whole fortunes are long: sentences
        train, test = split_sentences(train), split_sentences(test)
    return train[:num_train], test[:num_test]
