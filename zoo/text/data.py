"""Text for masked-token pretraining: corpora, a tokenizer that runs inside tf.data, BERT masking.

Corpora (lists of Python strings, one sentence or passage each):

- ``grammar_corpus(n, seed)``: Portuguese sentences from a small probabilistic grammar written in
  code (subjects with gender and number, verbs that agree with them in three tenses, objects that
  the verb selects, places that fit the verb, time adverbs that fit the tense, pronouns that agree
  with the subject, the "Deixa o menino pegar a bola e aprender" construction). Context
  predicts a hidden word far better than word frequency does. Held-out sentences: another seed,
  with ``exclude=train`` to keep only sentences never seen in training.
- ``read_text_files(paths, unit="line" | "paragraph")``: UTF-8 text files.
- ``load_fortunes_br(unit="fortune" | "sentence")``: the Portuguese fortunes of the Debian
  package ``fortunes-br`` (``apt-get install fortunes-br``).

``TextTokenizer(level="word" | "char")`` wraps ``keras.layers.TextVectorization`` (word split on
whitespace after Unicode lowercasing and punctuation stripping, or ``split="character"``) with a
vocabulary built from the training text and the reserved ids ``[PAD] = 0``, ``[UNK] = 1``,
``[MASK] = 2``. Calling it on a batch of strings gives int32 ids ``(B, L)``, in eager code or
inside ``tf.data``.

``mask_tokens`` is BERT's masking as one pure batched function with stateless random ops:
each non-special token is selected with probability ``rate`` (15 %); a selected token becomes
``[MASK]`` with probability ``mask_fraction`` (80 %), a random non-special token with probability
``random_fraction`` (10 %), and stays unchanged otherwise (10 %). ``mask_spans`` hides contiguous
spans (e.g. characters of a word: ``aprender`` -> ``a______r``), as in "__pren_____".
Both return ``(masked_ids, targets, weights)``, with ``weights = 1`` exactly on the selected
positions; ``make_mlm_dataset`` turns texts into such batches, reproducibly from a seed.

Example:
    >>> train = grammar_corpus(2000, seed=0)
    >>> tokenizer = TextTokenizer("word", sequence_length=24)
    >>> tokenizer.adapt(train)
    >>> ds = make_mlm_dataset(train, tokenizer, batch_size=32, seed=0)
    >>> masked_ids, targets, weights = next(iter(ds))     # each (32, 24)
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError

__all__ = [
    "CHAR_LEVEL",
    "LEVELS",
    "MASK_TOKEN",
    "PAD_TOKEN",
    "RESERVED_TOKENS",
    "TEXT_CORPORA",
    "UNK_TOKEN",
    "WORD_LEVEL",
    "TextTokenizer",
    "chunk_words",
    "grammar_corpus",
    "load_fortunes_br",
    "load_text_splits",
    "make_mlm_dataset",
    "mask_spans",
    "mask_tokens",
    "read_text_files",
    "split_sentences",
    "words_per_text",
]

PAD_TOKEN, UNK_TOKEN, MASK_TOKEN = "[PAD]", "[UNK]", "[MASK]"
RESERVED_TOKENS = (PAD_TOKEN, UNK_TOKEN, MASK_TOKEN)  # ids 0, 1, 2
WORD_LEVEL, CHAR_LEVEL = "word", "char"
LEVELS = (WORD_LEVEL, CHAR_LEVEL)


# === Grammar corpus ===================================================================

# (singular, plural, gender)
_PEOPLE = (
    ("menino", "meninos", "m"),
    ("menina", "meninas", "f"),
    ("professor", "professores", "m"),
    ("professora", "professoras", "f"),
    ("aluno", "alunos", "m"),
    ("aluna", "alunas", "f"),
    ("criança", "crianças", "f"),
    ("pai", "pais", "m"),
    ("mãe", "mães", "f"),
    ("avô", "avôs", "m"),
    ("avó", "avós", "f"),
    ("vizinho", "vizinhos", "m"),
    ("vizinha", "vizinhas", "f"),
    ("médico", "médicos", "m"),
    ("jogador", "jogadores", "m"),
)
_ANIMALS = (
    ("gato", "gatos", "m"),
    ("gata", "gatas", "f"),
    ("cachorro", "cachorros", "m"),
    ("pássaro", "pássaros", "m"),
    ("vaca", "vacas", "f"),
)
_NAMES = (
    ("João", "m"),
    ("Maria", "f"),
    ("Pedro", "m"),
    ("Ana", "f"),
    ("Lucas", "m"),
    ("Beatriz", "f"),
)

# (singular, plural or None, gender)
_OBJECTS = {
    "bola": ("bola", "bolas", "f"),
    "livro": ("livro", "livros", "m"),
    "caneta": ("caneta", "canetas", "f"),
    "chave": ("chave", "chaves", "f"),
    "brinquedo": ("brinquedo", "brinquedos", "m"),
    "caixa": ("caixa", "caixas", "f"),
    "maçã": ("maçã", "maçãs", "f"),
    "pão": ("pão", "pães", "m"),
    "banana": ("banana", "bananas", "f"),
    "bolo": ("bolo", "bolos", "m"),
    "sopa": ("sopa", None, "f"),
    "sorvete": ("sorvete", "sorvetes", "m"),
    "água": ("água", None, "f"),
    "leite": ("leite", None, "m"),
    "suco": ("suco", "sucos", "m"),
    "café": ("café", None, "m"),
    "revista": ("revista", "revistas", "f"),
    "jornal": ("jornal", "jornais", "m"),
    "carta": ("carta", "cartas", "f"),
    "história": ("história", "histórias", "f"),
    "poema": ("poema", "poemas", "m"),
    "bilhete": ("bilhete", "bilhetes", "m"),
    "porta": ("porta", "portas", "f"),
    "janela": ("janela", "janelas", "f"),
    "garrafa": ("garrafa", "garrafas", "f"),
    "fruta": ("fruta", "frutas", "f"),
    "carro": ("carro", "carros", "m"),
    "prato": ("prato", "pratos", "m"),
    "roupa": ("roupa", "roupas", "f"),
    "filme": ("filme", "filmes", "m"),
    "mar": ("mar", None, "m"),
    "lua": ("lua", None, "f"),
}
# Games take no article: "jogar bola", "jogar futebol".
_GAMES = ("bola", "futebol", "xadrez", "vôlei", "basquete")

# infinitive: ((3sg present, 3pl present, 3sg past, 3pl past), subjects, objects, places)
_TRANSITIVE = {
    "pegar": (
        ("pega", "pegam", "pegou", "pegaram"),
        "person",
        ("bola", "livro", "caneta", "chave", "brinquedo", "caixa"),
        ("no parque", "na sala", "no quintal"),
    ),
    "chutar": (
        ("chuta", "chutam", "chutou", "chutaram"),
        "person",
        ("bola",),
        ("no campo", "no quintal", "na rua"),
    ),
    "comer": (
        ("come", "comem", "comeu", "comeram"),
        "any",
        ("maçã", "pão", "banana", "bolo", "sopa", "sorvete", "fruta"),
        ("na cozinha", "no restaurante", "na mesa"),
    ),
    "beber": (
        ("bebe", "bebem", "bebeu", "beberam"),
        "any",
        ("água", "leite", "suco", "café"),
        ("na cozinha", "no restaurante", "na mesa"),
    ),
    "ler": (
        ("lê", "leem", "leu", "leram"),
        "person",
        ("livro", "revista", "jornal", "carta", "história"),
        ("na biblioteca", "em casa", "na sala"),
    ),
    "escrever": (
        ("escreve", "escrevem", "escreveu", "escreveram"),
        "person",
        ("carta", "poema", "história", "bilhete"),
        ("na escola", "em casa", "na biblioteca"),
    ),
    "abrir": (
        ("abre", "abrem", "abriu", "abriram"),
        "person",
        ("porta", "janela", "caixa", "garrafa"),
        ("na sala", "na cozinha", "em casa"),
    ),
    "comprar": (
        ("compra", "compram", "comprou", "compraram"),
        "person",
        ("pão", "fruta", "livro", "bola", "sorvete", "carro"),
        ("no mercado", "na loja", "na feira"),
    ),
    "lavar": (
        ("lava", "lavam", "lavou", "lavaram"),
        "person",
        ("prato", "roupa", "carro", "janela"),
        ("na cozinha", "no quintal", "em casa"),
    ),
    "ver": (
        ("vê", "veem", "viu", "viram"),
        "person",
        ("filme", "mar", "lua"),
        ("da janela", "da varanda", "de longe"),
    ),
}
_INTRANSITIVE = {
    "correr": (
        ("corre", "correm", "correu", "correram"),
        "any",
        ("no parque", "na praia", "na rua"),
    ),
    "dormir": (("dorme", "dormem", "dormiu", "dormiram"), "any", ("na cama", "no sofá", "em casa")),
    "brincar": (
        ("brinca", "brincam", "brincou", "brincaram"),
        "any",
        ("no parque", "no quintal", "na praça"),
    ),
    "nadar": (("nada", "nadam", "nadou", "nadaram"), "any", ("no mar", "na piscina", "no rio")),
    "estudar": (
        ("estuda", "estudam", "estudou", "estudaram"),
        "person",
        ("na escola", "na biblioteca", "em casa"),
    ),
    "cantar": (
        ("canta", "cantam", "cantou", "cantaram"),
        "any",
        ("na festa", "no coral", "no jardim"),
    ),
    "aprender": (
        ("aprende", "aprendem", "aprendeu", "aprenderam"),
        "person",
        ("na escola", "com a professora", "muito"),
    ),
    "descansar": (
        ("descansa", "descansam", "descansou", "descansaram"),
        "any",
        ("em casa", "no sofá", "na rede"),
    ),
}
# Modal verbs (3sg, 3pl) followed by an infinitive.
_MODALS = (
    ("quer", "querem"),
    ("gosta de", "gostam de"),
    ("precisa", "precisam"),
    ("pode", "podem"),
)
_TIMES = {
    "present": ("hoje", "sempre", "todos os dias", "de manhã", "à noite"),
    "past": ("ontem", "ontem à noite", "na semana passada"),
    "future": ("amanhã", "amanhã de manhã", "na próxima semana"),
}
# (m sg, f sg, m pl, f pl)
_STATES = (
    ("cansado", "cansada", "cansados", "cansadas"),
    ("feliz", "feliz", "felizes", "felizes"),
    ("contente", "contente", "contentes", "contentes"),
    ("triste", "triste", "tristes", "tristes"),
    ("animado", "animada", "animados", "animadas"),
    ("ocupado", "ocupada", "ocupados", "ocupadas"),
)
_TRAITS = (
    ("alto", "alta", "altos", "altas"),
    ("bonito", "bonita", "bonitos", "bonitas"),
    ("inteligente", "inteligente", "inteligentes", "inteligentes"),
    ("simpático", "simpática", "simpáticos", "simpáticas"),
)
_DETERMINERS = {
    "definite": {("m", 1): "o", ("f", 1): "a", ("m", 2): "os", ("f", 2): "as"},
    "indefinite": {("m", 1): "um", ("f", 1): "uma", ("m", 2): "uns", ("f", 2): "umas"},
    "possessive": {("m", 1): "meu", ("f", 1): "minha", ("m", 2): "meus", ("f", 2): "minhas"},
    "demonstrative": {("m", 1): "esse", ("f", 1): "essa", ("m", 2): "esses", ("f", 2): "essas"},
}
_PRONOUNS = {("m", 1): "ele", ("f", 1): "ela", ("m", 2): "eles", ("f", 2): "elas"}
_GENDER_ADJ = {("m", 1): 0, ("f", 1): 1, ("m", 2): 2, ("f", 2): 3}


class _Grammar:
    """One sentence at a time from ``random.Random``; every choice is a weighted draw."""

    def __init__(self, rng):
        self.rng = rng

    def pick(self, items, weights=None):
        return (
            self.rng.choices(items, weights=weights, k=1)[0] if weights else self.rng.choice(items)
        )

    def determiner(self, gender, number):
        kind = self.pick(list(_DETERMINERS), [0.6, 0.12, 0.18, 0.1])
        return _DETERMINERS[kind][(gender, number)]

    def subject(self, kind="any"):
        """Returns (words, gender, number) with number 1 or 2."""
        is_animal = kind == "any" and self.rng.random() < 0.3
        if not is_animal and self.rng.random() < 0.2:
            name, gender = self.pick(_NAMES)
            return [name], gender, 1
        singular, plural, gender = self.pick(_ANIMALS if is_animal else _PEOPLE)
        number = 2 if self.rng.random() < 0.35 else 1
        noun = plural if number == 2 else singular
        return [self.determiner(gender, number), noun], gender, number

    def obj(self, noun, verb):
        if verb == "jogar":
            return [noun]
        singular, plural, gender = _OBJECTS[noun]
        number = 2 if plural is not None and self.rng.random() < 0.2 else 1
        det = _DETERMINERS[self.pick(["definite", "indefinite", "possessive"], [0.7, 0.2, 0.1])]
        return [det[(gender, number)], plural if number == 2 else singular]

    def verb(self, forms, infinitive, number, tense):
        if tense == "future":
            return ["vai" if number == 1 else "vão", infinitive]
        index = {"present": 0, "past": 2}[tense] + (number - 1)
        return [forms[index]]

    def tense(self):
        return self.pick(["present", "past", "future"], [0.5, 0.3, 0.2])

    def transitive(self, subject_kind):
        choices = [
            v for v, spec in _TRANSITIVE.items() if subject_kind == "person" or spec[1] == "any"
        ]
        if subject_kind == "person" and self.rng.random() < 0.12:
            return "jogar", None, _GAMES, ("no parque", "na escola", "na praia")
        infinitive = self.pick(choices)
        forms, _, objects, places = _TRANSITIVE[infinitive]
        return infinitive, forms, objects, places

    def with_time(self, words, tense, place=None):
        """Adds a place and a time adverb that fits the tense (before or after, or none)."""
        words = list(words) + (place.split() if place else [])
        r = self.rng.random()
        time = self.pick(_TIMES[tense]).split()
        if r < 0.3:
            return time + words
        if r < 0.65:
            return words + time
        return words

    # --- templates ---

    def simple(self):
        subject, _, number = self.subject()
        kind = "animal" if subject[-1] in {a for row in _ANIMALS for a in row[:2]} else "person"
        tense = self.tense()
        if self.rng.random() < 0.6:
            infinitive, forms, objects, places = self.transitive(kind)
            if infinitive == "jogar":
                verb = self.verb(("joga", "jogam", "jogou", "jogaram"), "jogar", number, tense)
            else:
                verb = self.verb(forms, infinitive, number, tense)
            noun = self.pick(objects)
            words = subject + verb + self.obj(noun, infinitive)
        else:
            candidates = [v for v, s in _INTRANSITIVE.items() if kind == "person" or s[1] == "any"]
            infinitive = self.pick(candidates)
            forms, _, places = _INTRANSITIVE[infinitive]
            words = subject + self.verb(forms, infinitive, number, tense)
        place = self.pick(places) if self.rng.random() < 0.6 else None
        return self.with_time(words, tense, place)

    def let(self):
        """The example sentence's construction: "deixa o menino pegar a bola e aprender"."""
        if self.rng.random() < 0.3:
            subject = ["o", "menino"]  # the example sentence's subject
        else:
            subject = self.subject("person")[0]
        verb = self.pick(["deixa", "deixe"], [0.8, 0.2])
        if self.rng.random() < 0.5:
            action = ["pegar"] + (["bola"] if self.rng.random() < 0.5 else ["a", "bola"])
        else:
            infinitive, _, objects, _ = self.transitive("person")
            action = [infinitive] + self.obj(self.pick(objects), infinitive)
        then = self.pick(list(_INTRANSITIVE), [1, 1, 3, 1, 2, 1, 5, 2])
        return [verb] + subject + action + ["e", then]

    def modal(self):
        subject, _, number = self.subject("person")
        modal = self.pick(_MODALS)[number - 1].split()
        infinitive, _, objects, places = self.transitive("person")
        words = subject + modal + [infinitive] + self.obj(self.pick(objects), infinitive)
        if self.rng.random() < 0.5:
            words += self.pick(places).split()
        return words

    def copula(self):
        subject, gender, number = self.subject("person")
        index = _GENDER_ADJ[(gender, number)]
        if self.rng.random() < 0.6:
            words = subject + [("está", "estão")[number - 1], self.pick(_STATES)[index]]
            if self.rng.random() < 0.5:  # "... porque correu no parque": agreement, past tense
                infinitive = self.pick(list(_INTRANSITIVE))
                forms, _, places = _INTRANSITIVE[infinitive]
                words += ["porque"] + self.verb(forms, infinitive, number, "past")
                words += self.pick(places).split()
            return words
        return subject + [("é", "são")[number - 1], self.pick(_TRAITS)[index]]

    def coordination(self):
        """ "a menina come a maçã e depois ela dorme": the pronoun agrees with the subject."""
        subject, gender, number = self.subject("person")
        tense = self.tense()
        infinitive, forms, objects, _ = self.transitive("person")
        if infinitive == "jogar":
            forms = ("joga", "jogam", "jogou", "jogaram")
        first = subject + self.verb(forms, infinitive, number, tense)
        first += self.obj(self.pick(objects), infinitive)
        second_verb = self.pick(list(_INTRANSITIVE))
        second_forms, _, places = _INTRANSITIVE[second_verb]
        second = [_PRONOUNS[(gender, number)]] + self.verb(second_forms, second_verb, number, tense)
        return self.with_time(first + ["e", "depois"] + second, tense, self.pick(places))

    def when(self):
        subject, gender, number = self.subject("person")
        tense = self.pick(["present", "past"])
        first_verb = self.pick(list(_INTRANSITIVE))
        first_forms, _, places = _INTRANSITIVE[first_verb]
        first = ["quando"] + subject + self.verb(first_forms, first_verb, number, tense)
        first += self.pick(places).split()
        infinitive, forms, objects, _ = self.transitive("person")
        if infinitive == "jogar":
            forms = ("joga", "jogam", "jogou", "jogaram")
        second = [_PRONOUNS[(gender, number)]] + self.verb(forms, infinitive, number, tense)
        return first + second + self.obj(self.pick(objects), infinitive)

    def sentence(self):
        template = self.pick(
            [self.simple, self.let, self.modal, self.copula, self.coordination, self.when],
            [0.38, 0.14, 0.12, 0.14, 0.12, 0.10],
        )
        words = template()
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."


def grammar_corpus(num_sentences, seed=0, exclude=()):
    """Portuguese sentences from a small probabilistic grammar (deterministic by seed).

    Subjects carry gender and number (``o menino``, ``as meninas``, ``meu avô``, ``joão``);
    verbs agree with them in the present, past and ``vai``/``vão`` future; the verb selects its
    objects (one eats ``a maçã``, reads ``o jornal``, plays ``bola`` without an article) and
    places (one swims ``no mar``); time adverbs fit the tense (``ontem`` with the past); later
    pronouns (``ele``/``elas``) and adjectives (``cansadas``) agree with the subject. Six
    templates: simple clause, "deixa o menino pegar a bola e aprender", modal + infinitive,
    copula + adjective (+ "porque" clause), "e depois" coordination, "quando" clause.

    Args:
        num_sentences: How many sentences (>= 0).
        seed: Random seed; held-out sentences use another seed.
        exclude: Sentences to leave out (e.g. the training set, for held-out sentences that
            were never seen); drawing continues until ``num_sentences`` new ones are found.

    Returns:
        List of ``num_sentences`` strings, capitalised and ending with ``"."``.

    Example:
        >>> grammar_corpus(2, seed=0)   # e.g. ['A menina come a maçã na cozinha.', ...]
    """
    if isinstance(num_sentences, bool) or not isinstance(num_sentences, int) or num_sentences < 0:
        raise ValueError(
            f"num_sentences must be an integer >= 0. Received: num_sentences={num_sentences!r}"
        )
    grammar = _Grammar(random.Random(seed))
    excluded = set(exclude)
    sentences = []
    attempts = 0
    while len(sentences) < num_sentences:
        attempts += 1
        if attempts > 50 * num_sentences + 1000:
            raise ValueError(
                f"could not draw {num_sentences} sentences outside `exclude` "
                f"({len(excluded)} excluded); the grammar is too small for that many"
            )
        sentence = grammar.sentence()
        if sentence not in excluded:
            sentences.append(sentence)
    return sentences


# === Text files ========================================================================


def _read_utf8(path):
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a file", file=path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1]
        raise DataError(
            f"not UTF-8 text (byte {byte!r} at offset {error.start}); re-encode the file as UTF-8",
            file=path,
            field=f"line {line}",
        ) from None


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
        text = _read_utf8(path)
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
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"max_words must be an integer >= 1. Received: max_words={max_words!r}")
    out = []
    for text in texts:
        words = text.split()
        out.extend(" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words))
    return out


def words_per_text(level, sequence_length):
    """How many words to put in one text (``chunk_words``) so it fills ``sequence_length``
    tokens: ``sequence_length - 2`` words (punctuation split off a word adds a token now and
    then), or ``sequence_length // 7`` at character level (Portuguese words average about 6
    characters with the space)."""
    if level == WORD_LEVEL:
        return max(1, sequence_length - 2)
    return max(1, sequence_length // 7)


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
    text = _read_utf8(path)
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


# === Tokenizer ===========================================================================

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


class TextTokenizer:
    """Word- or character-level tokenizer that runs inside ``tf.data``.

    A thin owner of ``keras.layers.TextVectorization``: the vocabulary is built by ``adapt``
    from the training text (most frequent first, ties alphabetical, so it is deterministic);
    ids 0, 1, 2 are ``[PAD]``, ``[UNK]`` (out of vocabulary) and ``[MASK]``.

    Args:
        level: ``"word"`` (Unicode lowercase, punctuation stripped, split on whitespace) or
            ``"char"`` (Unicode lowercase, whitespace collapsed, one id per character,
            punctuation kept).
        sequence_length: Output length ``L``: longer texts are truncated, shorter padded with 0.
        max_tokens: Largest vocabulary size, the 3 reserved tokens included (None: no limit).
        min_count: Tokens seen fewer times in ``adapt`` are left out (they become ``[UNK]``).
        vocabulary: A vocabulary to use instead of ``adapt`` (tokens after the 3 reserved ones).

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

    def __init__(
        self, level="word", sequence_length=32, max_tokens=None, min_count=1, vocabulary=None
    ):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}. Received: level={level!r}")
        if (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, int)
            or sequence_length < 1
        ):
            raise ValueError(
                f"sequence_length must be an integer >= 1. Received: sequence_length={sequence_length!r}"
            )
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 4):
            raise ValueError(
                f"max_tokens must be None or an integer >= 4 (3 reserved tokens + 1). "
                f"Received: max_tokens={max_tokens!r}"
            )
        if not isinstance(min_count, int) or min_count < 1:
            raise ValueError(
                f"min_count must be an integer >= 1. Received: min_count={min_count!r}"
            )
        self.level = level
        self.sequence_length = sequence_length
        self.max_tokens = max_tokens
        self.min_count = min_count
        self._layer = None
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
        if isinstance(texts, tf.data.Dataset):
            if texts.element_spec.shape.rank:
                texts = texts.unbatch()
            texts = [t.decode("utf-8") for t in texts.as_numpy_iterator()]
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("adapt needs at least one text. Received: an empty list")
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
            ranked = ranked[: self.max_tokens - len(RESERVED_TOKENS)]
        if not ranked:
            raise ValueError("adapt found no token in the texts (all empty after standardising)")
        self.set_vocabulary(ranked)
        self.counts = {tok: counts[tok] for tok in ranked}
        return self

    def set_vocabulary(self, tokens):
        """Uses ``tokens`` (ids 3, 4, ...); the reserved tokens may lead the list."""
        tokens = [str(t) for t in tokens]
        while tokens and tokens[0] in ("", *RESERVED_TOKENS):
            tokens = tokens[1:]
        bad = [t for t in tokens if t in ("", *RESERVED_TOKENS)]
        if bad or len(set(tokens)) != len(tokens):
            raise ValueError(
                "vocabulary tokens must be unique and not reserved. Received duplicates or "
                f"reserved tokens: {sorted(set(bad) or {t for t in tokens if tokens.count(t) > 1})[:5]}"
            )
        self._tokens = tokens
        self._index = {tok: i + len(RESERVED_TOKENS) for i, tok in enumerate(tokens)}
        self._layer = keras.layers.TextVectorization(
            standardize=self.standardize,
            split="whitespace" if self.level == WORD_LEVEL else "character",
            output_mode="int",
            output_sequence_length=self.sequence_length,
            vocabulary=[MASK_TOKEN, *tokens],
            name=f"{self.level}_vectorizer",
        )

    def _check_adapted(self):
        if self._layer is None:
            raise ValueError("TextTokenizer has no vocabulary: call adapt(texts) first")

    @property
    def vocabulary(self):
        """All tokens by id: ``["[PAD]", "[UNK]", "[MASK]", ...]``."""
        self._check_adapted()
        return [*RESERVED_TOKENS, *self._tokens]

    @property
    def vocab_size(self):
        self._check_adapted()
        return len(RESERVED_TOKENS) + len(self._tokens)

    pad_id, unk_id, mask_id = 0, 1, 2

    @property
    def special_ids(self):
        """Ids never selected for masking nor drawn as random tokens: (pad, unk, mask)."""
        return (self.pad_id, self.unk_id, self.mask_id)

    def token_id(self, token):
        """Id of one (already standardised) token; ``[UNK]``'s id when unknown."""
        self._check_adapted()
        if token in RESERVED_TOKENS:
            return RESERVED_TOKENS.index(token)
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
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, path):
        """Writes the config and vocabulary as JSON (UTF-8); ``TextTokenizer.load`` reads it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(self.get_config(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        return path

    @classmethod
    def load(cls, path):
        try:
            config = json.loads(_read_utf8(path))
        except json.JSONDecodeError as error:
            raise DataError(
                f"not a tokenizer JSON file ({error.msg})", file=path, field=f"line {error.lineno}"
            ) from None
        return cls.from_config(config)

    def __repr__(self):
        size = self.vocab_size if self._layer is not None else "not adapted"
        return f"TextTokenizer(level={self.level!r}, sequence_length={self.sequence_length}, vocab_size={size})"


# === Masking ============================================================================


def _seed_tensor(seed):
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros_like(seed)])
    return tf.cast(seed, tf.int64)


def _candidates(ids, special_ids):
    candidate = tf.ones_like(ids, dtype=tf.bool)
    for special in special_ids:
        candidate &= tf.not_equal(ids, special)
    return candidate


def _check_fraction(name, value):
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]. Received: {name}={value!r}")


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
        seed: int or int tensor ``(2,)`` (``tf.random.stateless_*`` seed).
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
    _check_fraction("rate", rate)
    _check_fraction("mask_fraction", mask_fraction)
    _check_fraction("random_fraction", random_fraction)
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
    seeds = tf.random.experimental.stateless_split(_seed_tensor(seed), num=3)
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


def mask_spans(ids, seed, mask_id, rate=0.15, mean_span=3, special_ids=(0,)):
    """Masks contiguous spans (e.g. runs of characters: ``aprender`` -> ``a____der``).

    Span starts are drawn independently at each non-special position with probability
    ``p = -ln(1 - rate) / mean_span`` and span lengths uniformly in ``[1, 2 * mean_span - 1]``
    (mean ``mean_span``), so that about ``rate`` of the tokens end up covered (overlapping
    spans merge). Covered positions that are special (padding) are left alone. Every covered
    position becomes ``[MASK]`` (as in "__pren_____"; no random/unchanged share).

    Args:
        ids: int ``(B, L)`` token ids.
        seed: int or int tensor ``(2,)``.
        mask_id: Id of ``[MASK]``.
        rate: Target fraction of non-special tokens covered.
        mean_span: Mean span length (integer >= 1).
        special_ids: Ids never covered.

    Returns:
        ``(masked_ids, targets, weights)`` as ``mask_tokens``.

    Example:
        >>> masked, targets, weights = mask_spans(char_ids, seed=0, mask_id=2, mean_span=4)
    """
    _check_fraction("rate", rate)
    if rate >= 1.0:
        raise ValueError(f"rate must be < 1 for span masking. Received: rate={rate!r}")
    if isinstance(mean_span, bool) or not isinstance(mean_span, int) or mean_span < 1:
        raise ValueError(f"mean_span must be an integer >= 1. Received: mean_span={mean_span!r}")
    special_ids = tuple(int(s) for s in special_ids)
    ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
    shape = tf.shape(ids)
    seeds = tf.random.experimental.stateless_split(_seed_tensor(seed), num=2)
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
    (see ``zoo.text.loss.MaskedTokenLoss``). A new mask is drawn for every batch of every
    epoch (dynamic masking); the same seed gives the same batches. The tokenizer's special ids
    (``[PAD]``, ``[UNK]``, ``[MASK]``) are never selected, so ``[UNK]`` is never a target.

    Args:
        texts: List of strings.
        tokenizer: An adapted ``TextTokenizer``.
        batch_size: Texts per batch.
        seed: Seed of the shuffle and of the masks.
        masking: ``"tokens"`` (BERT, ``mask_tokens``) or ``"spans"`` (``mask_spans``).
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
    if masking not in ("tokens", "spans"):
        raise ValueError(f"masking must be 'tokens' or 'spans'. Received: masking={masking!r}")
    texts = list(texts)
    if not texts:
        raise ValueError("make_mlm_dataset needs at least one text. Received: an empty list")
    if drop_remainder is None:
        drop_remainder = repeat is True
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
