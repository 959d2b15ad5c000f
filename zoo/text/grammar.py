"""Portuguese sentences from a small probabilistic grammar: ``grammar_corpus(n, seed)``.

The words live in ``grammar_pt.json`` beside this module (shipped as package data): nouns with
gender and number, verbs with their forms in three tenses and the objects and places each one
takes, time adverbs by tense, adjectives, determiners and pronouns by gender and number. This
module holds the templates and the probabilities: subjects agree with their verbs, the verb
selects its objects and places, time adverbs fit the tense, later pronouns and adjectives agree
with the subject, and one template is the "Deixa o menino pegar a bola e aprender"
construction. Context predicts a hidden word far better than word frequency does.

Example:
    >>> train = grammar_corpus(2000, seed=0)
    >>> held_out = grammar_corpus(200, seed=1000, exclude=train)   # never seen in training
"""

from __future__ import annotations

import functools
import json
import random
from importlib import resources
from types import SimpleNamespace

from zoo.ops.checks import check_int

__all__ = ["GRAMMAR_LEXICON", "grammar_corpus", "grammar_lexicon"]

GRAMMAR_LEXICON = "grammar_pt.json"  # package data of zoo.text

# Index of a (gender, number) into the lexicon's [m sg, f sg, m pl, f pl] rows.
_AGREEMENT = {("m", 1): 0, ("f", 1): 1, ("m", 2): 2, ("f", 2): 3}
_DETERMINER_WEIGHTS = {
    "definite": 0.6,
    "indefinite": 0.12,
    "possessive": 0.18,
    "demonstrative": 0.1,
}
# How often each intransitive verb ends "deixa o menino pegar a bola e ___" (default 1).
_THEN_WEIGHTS = {"brincar": 3, "estudar": 2, "aprender": 5, "descansar": 2}


def _rows(items):
    return tuple(tuple(item) for item in items)


@functools.cache
def grammar_lexicon():
    """The grammar's words (``grammar_pt.json``), as tuples and dicts in the file's order.

    Returns:
        A namespace with ``people``, ``animals`` (``(singular, plural, gender)`` rows),
        ``names`` (``(name, gender)``), ``objects`` (singular -> ``(singular, plural or None,
        gender)``), ``games``, ``game_forms``, ``game_places``, ``transitive`` (infinitive ->
        ``(forms, subjects, objects, places)``), ``intransitive`` (infinitive -> ``(forms,
        subjects, places)``), ``modals``, ``times`` (tense -> adverbs), ``states``, ``traits``,
        ``determiners`` (kind -> 4 forms) and ``pronouns`` (4 forms).
    """
    text = resources.files("zoo.text").joinpath(GRAMMAR_LEXICON).read_text(encoding="utf-8")
    raw = json.loads(text)
    return SimpleNamespace(
        people=_rows(raw["people"]),
        animals=_rows(raw["animals"]),
        names=_rows(raw["names"]),
        objects={row[0]: tuple(row) for row in raw["objects"]},
        games=tuple(raw["games"]["objects"]),
        game_forms=tuple(raw["games"]["forms"]),
        game_places=tuple(raw["games"]["places"]),
        transitive={
            verb: (tuple(s["forms"]), s["subjects"], tuple(s["objects"]), tuple(s["places"]))
            for verb, s in raw["transitive"].items()
        },
        intransitive={
            verb: (tuple(s["forms"]), s["subjects"], tuple(s["places"]))
            for verb, s in raw["intransitive"].items()
        },
        modals=_rows(raw["modals"]),
        times={tense: tuple(words) for tense, words in raw["times"].items()},
        states=_rows(raw["states"]),
        traits=_rows(raw["traits"]),
        determiners={kind: tuple(forms) for kind, forms in raw["determiners"].items()},
        pronouns=tuple(raw["pronouns"]),
    )


class _Grammar:
    """One sentence at a time from ``random.Random``; every choice is a weighted draw."""

    def __init__(self, rng, lexicon):
        self.rng = rng
        self.lex = lexicon
        self.animal_nouns = {noun for row in lexicon.animals for noun in row[:2]}

    def pick(self, items, weights=None):
        return (
            self.rng.choices(items, weights=weights, k=1)[0] if weights else self.rng.choice(items)
        )

    def determiner(self, gender, number):
        kinds = list(self.lex.determiners)
        kind = self.pick(kinds, [_DETERMINER_WEIGHTS[k] for k in kinds])
        return self.lex.determiners[kind][_AGREEMENT[(gender, number)]]

    def subject(self, kind="any"):
        """Returns (words, gender, number) with number 1 or 2."""
        is_animal = kind == "any" and self.rng.random() < 0.3
        if not is_animal and self.rng.random() < 0.2:
            name, gender = self.pick(self.lex.names)
            return [name], gender, 1
        singular, plural, gender = self.pick(self.lex.animals if is_animal else self.lex.people)
        number = 2 if self.rng.random() < 0.35 else 1
        noun = plural if number == 2 else singular
        return [self.determiner(gender, number), noun], gender, number

    def obj(self, noun, verb):
        if verb == "jogar":
            return [noun]
        singular, plural, gender = self.lex.objects[noun]
        number = 2 if plural is not None and self.rng.random() < 0.2 else 1
        kind = self.pick(["definite", "indefinite", "possessive"], [0.7, 0.2, 0.1])
        det = self.lex.determiners[kind][_AGREEMENT[(gender, number)]]
        return [det, plural if number == 2 else singular]

    def verb(self, forms, infinitive, number, tense):
        if tense == "future":
            return ["vai" if number == 1 else "vão", infinitive]
        index = {"present": 0, "past": 2}[tense] + (number - 1)
        return [forms[index]]

    def tense(self):
        return self.pick(["present", "past", "future"], [0.5, 0.3, 0.2])

    def transitive(self, subject_kind):
        """Returns (infinitive, forms, objects, places); "jogar" (games) for people now and then."""
        choices = [
            v
            for v, spec in self.lex.transitive.items()
            if subject_kind == "person" or spec[1] == "any"
        ]
        if subject_kind == "person" and self.rng.random() < 0.12:
            return "jogar", self.lex.game_forms, self.lex.games, self.lex.game_places
        infinitive = self.pick(choices)
        forms, _, objects, places = self.lex.transitive[infinitive]
        return infinitive, forms, objects, places

    def with_time(self, words, tense, place=None):
        """Adds a place and a time adverb that fits the tense (before or after, or none)."""
        words = list(words) + (place.split() if place else [])
        r = self.rng.random()
        time = self.pick(self.lex.times[tense]).split()
        if r < 0.3:
            return time + words
        if r < 0.65:
            return words + time
        return words

    # --- templates ---

    def simple(self):
        subject, _, number = self.subject()
        kind = "animal" if subject[-1] in self.animal_nouns else "person"
        tense = self.tense()
        if self.rng.random() < 0.6:
            infinitive, forms, objects, places = self.transitive(kind)
            verb = self.verb(forms, infinitive, number, tense)
            noun = self.pick(objects)
            words = subject + verb + self.obj(noun, infinitive)
        else:
            candidates = [
                v for v, s in self.lex.intransitive.items() if kind == "person" or s[1] == "any"
            ]
            infinitive = self.pick(candidates)
            forms, _, places = self.lex.intransitive[infinitive]
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
        verbs = list(self.lex.intransitive)
        then = self.pick(verbs, [_THEN_WEIGHTS.get(v, 1) for v in verbs])
        return [verb] + subject + action + ["e", then]

    def modal(self):
        subject, _, number = self.subject("person")
        modal = self.pick(self.lex.modals)[number - 1].split()
        infinitive, _, objects, places = self.transitive("person")
        words = subject + modal + [infinitive] + self.obj(self.pick(objects), infinitive)
        if self.rng.random() < 0.5:
            words += self.pick(places).split()
        return words

    def copula(self):
        subject, gender, number = self.subject("person")
        index = _AGREEMENT[(gender, number)]
        if self.rng.random() < 0.6:
            words = subject + [("está", "estão")[number - 1], self.pick(self.lex.states)[index]]
            if self.rng.random() < 0.5:  # "... porque correu no parque": agreement, past tense
                infinitive = self.pick(list(self.lex.intransitive))
                forms, _, places = self.lex.intransitive[infinitive]
                words += ["porque"] + self.verb(forms, infinitive, number, "past")
                words += self.pick(places).split()
            return words
        return subject + [("é", "são")[number - 1], self.pick(self.lex.traits)[index]]

    def coordination(self):
        """ "a menina come a maçã e depois ela dorme": the pronoun agrees with the subject."""
        subject, gender, number = self.subject("person")
        tense = self.tense()
        infinitive, forms, objects, _ = self.transitive("person")
        first = subject + self.verb(forms, infinitive, number, tense)
        first += self.obj(self.pick(objects), infinitive)
        second_verb = self.pick(list(self.lex.intransitive))
        second_forms, _, places = self.lex.intransitive[second_verb]
        pronoun = self.lex.pronouns[_AGREEMENT[(gender, number)]]
        second = [pronoun] + self.verb(second_forms, second_verb, number, tense)
        return self.with_time(first + ["e", "depois"] + second, tense, self.pick(places))

    def when(self):
        subject, gender, number = self.subject("person")
        tense = self.pick(["present", "past"])
        first_verb = self.pick(list(self.lex.intransitive))
        first_forms, _, places = self.lex.intransitive[first_verb]
        first = ["quando"] + subject + self.verb(first_forms, first_verb, number, tense)
        first += self.pick(places).split()
        infinitive, forms, objects, _ = self.transitive("person")
        pronoun = self.lex.pronouns[_AGREEMENT[(gender, number)]]
        second = [pronoun] + self.verb(forms, infinitive, number, tense)
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
    copula + adjective (+ "porque" clause), "e depois" coordination, "quando" clause. The
    words come from ``grammar_pt.json`` (``grammar_lexicon()``).

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
    num_sentences = check_int("num_sentences", num_sentences, minimum=0)
    grammar = _Grammar(random.Random(seed), grammar_lexicon())
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
