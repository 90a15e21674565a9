"""Gold scorers of writing tasks: what the completion says is read from its words.

* :class:`ConceptCoverage` (``"concepts"``): the share of the prompt's concepts that the
  completion uses, in any inflection, in [0, 1].
* :class:`Readability` (``"readability"``): Flesch reading ease rescaled to [-1, 1].

Both multiply in :func:`repetition_penalty`, so looping text ("a a a a", "dog dog dog") cannot
reach the top score. Words are the runs of ASCII letters and digits of the lower-cased text
(``"dog's"`` is ``dog`` and ``s``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from rlhf_gym.rewards.gold import _check_lengths

if TYPE_CHECKING:
    from pyphen import Pyphen

_WORD = re.compile(r"[a-z0-9]+")
_CONCEPT_LIST = re.compile(r":\s*([a-z]+(?:\s*,\s*[a-z]+)+)\s*\.?\s*$")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")

# Flesch (1948): reading ease = 206.835 - 1.015 * words/sentences - 84.6 * syllables/words.
FLESCH_BASE, FLESCH_PER_SENTENCE_WORD, FLESCH_PER_SYLLABLE = 206.835, 1.015, 84.6


def words_of(text: str) -> list[str]:
    """The lower-cased words of ``text``: runs of ASCII letters and digits."""
    return _WORD.findall(text.lower())


def repetition_penalty(words: Sequence[str], max_repeated_share: float = 0.1) -> float:
    """A factor in [0, 1] that falls as the text repeats itself.

    ``r`` is the share of the text's word bigrams that repeat an earlier bigram (0 with fewer
    than two bigrams). The factor is ``min(1, (1 - r) / (1 - max_repeated_share))``: 1 while
    ``r <= max_repeated_share``, then falling linearly to 0 when every bigram is a repeat.
    """
    bigrams = list(pairwise(words))
    if len(bigrams) < 2:
        return 1.0
    repeated_share = 1.0 - len(set(bigrams)) / len(bigrams)
    return min(1.0, (1.0 - repeated_share) / (1.0 - max_repeated_share))


def parse_concepts(prompt: str) -> tuple[str, ...]:
    """The concepts a prompt lists after its last colon: ``"...: dog, frisbee, park."``."""
    found = _CONCEPT_LIST.search(prompt.lower())
    if found is None:
        raise ValueError(
            f"cannot read concepts from prompt {prompt!r}; expected it to end with "
            "': word, word, word.'"
        )
    return tuple(dict.fromkeys(word.strip() for word in found.group(1).split(",")))


def _check_share(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a share in [0, 1), got {value}")
    return float(value)


def _check_positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be a positive number of words, got {value}")
    return int(value)


class ConceptCoverage:
    """How well the completion writes the prompt's concepts into a sentence, in [0, 1].

    ``score = coverage * fluency * repetition``, where

    * ``coverage`` = (concepts used) / (concepts listed). The concepts are read from the
      prompt (:func:`parse_concepts`; ``ValueError`` when it lists none); a concept is used when
      any completion word is one of its forms: the concept itself or any inflection lemminflect
      knows (``dogs``, ``caught`` for ``catch``, ``running`` for ``run``; for a word outside
      its dictionary, its regular noun and verb inflections).
    * ``fluency`` = ``(1 + min(o, min_other_words)) / (1 + min_other_words)``, with ``o`` the
      completion's words that are no concept form: a bare list of the concepts scores
      ``1 / (1 + min_other_words)`` of a sentence that weaves them together.
    * ``repetition`` = :func:`repetition_penalty` of the completion's words.

    An empty completion scores 0; a real sentence that uses all concepts scores 1.
    """

    def __init__(self, min_other_words: int = 4, max_repeated_share: float = 0.1) -> None:
        self.min_other_words = _check_positive("min_other_words", min_other_words)
        self.max_repeated_share = _check_share("max_repeated_share", max_repeated_share)
        self._forms: dict[str, frozenset[str]] = {}

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        _check_lengths(prompts, completions)
        scores = [self.score(p, c) for p, c in zip(prompts, completions, strict=True)]
        return np.asarray(scores, dtype=np.float32)

    def score(self, prompt: str, completion: str) -> float:
        """The score of one pair (see the class docstring)."""
        forms = [self.forms(concept) for concept in parse_concepts(prompt)]
        words = words_of(completion)
        present = set(words)
        coverage = sum(bool(f & present) for f in forms) / len(forms)
        every_form = frozenset().union(*forms)
        others = sum(word not in every_form for word in words)
        fluency = (1 + min(others, self.min_other_words)) / (1 + self.min_other_words)
        return coverage * fluency * repetition_penalty(words, self.max_repeated_share)

    def forms(self, concept: str) -> frozenset[str]:
        """``concept`` and every inflection of it (cached per concept)."""
        if concept not in self._forms:
            self._forms[concept] = _inflections(concept)
        return self._forms[concept]

    def __repr__(self) -> str:
        return (
            f"ConceptCoverage(min_other_words={self.min_other_words}, "
            f"max_repeated_share={self.max_repeated_share})"
        )


def _inflections(concept: str) -> frozenset[str]:
    """A word and its inflections: lemminflect's dictionary, else its regular-rule guesses."""
    from lemminflect import getAllInflections, getAllInflectionsOOV  # loads only when asked

    known = getAllInflections(concept)
    if not known:
        known = {**getAllInflectionsOOV(concept, "NOUN"), **getAllInflectionsOOV(concept, "VERB")}
    return frozenset({concept, *(form.lower() for forms in known.values() for form in forms)})


class Readability:
    """How easy the completion is to read: Flesch reading ease mapped to [-1, 1].

    ``ease = 206.835 - 1.015 * W / S - 84.6 * Y / W`` (Flesch, 1948), with ``W`` words,
    ``S`` sentences (runs of ``.``, ``!`` or ``?`` followed by a space or the end; at least 1)
    and ``Y`` syllables (per word: 1 + its hyphenation points in pyphen's ``en_US``
    dictionary, the counter textstat falls back to). Then

    * ``base = 2 * clip(ease, 0, 100) / 100 - 1``: 100 and above (first-grade text) is 1,
      0 and below (legal prose) is -1;
    * ``score = -1 + (base + 1) * min(1, W / min_words) * repetition``: a reply shorter than
      ``min_words`` words is pulled toward -1 in proportion (an empty reply scores -1, "Yes."
      at most ``-1 + 2 / min_words``), and :func:`repetition_penalty` pulls looping text
      ("a a a a") toward -1 the same way.

    The prompt is not scored, and neither is what the completion says: a simple reply that is
    off topic scores as well as one on topic.
    """

    def __init__(self, min_words: int = 8, max_repeated_share: float = 0.1) -> None:
        self.min_words = _check_positive("min_words", min_words)
        self.max_repeated_share = _check_share("max_repeated_share", max_repeated_share)
        self._dictionary: Pyphen | None = None

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        _check_lengths(prompts, completions)
        return np.asarray([self.score(text) for text in completions], dtype=np.float32)

    def score(self, completion: str) -> float:
        """The score of one completion (see the class docstring)."""
        words = words_of(completion)
        if not words:
            return -1.0
        base = 2.0 * np.clip(self.reading_ease(completion), 0.0, 100.0) / 100.0 - 1.0
        length = min(1.0, len(words) / self.min_words)
        repetition = repetition_penalty(words, self.max_repeated_share)
        return float(-1.0 + (base + 1.0) * length * repetition)

    def reading_ease(self, text: str) -> float:
        """Flesch reading ease of ``text`` (unclipped; 0 for a text without words)."""
        words = words_of(text)
        if not words:
            return 0.0
        sentences = max(1, len(_SENTENCE_END.findall(text)))
        syllables = sum(self.syllables(word) for word in words)
        return (
            FLESCH_BASE
            - FLESCH_PER_SENTENCE_WORD * len(words) / sentences
            - FLESCH_PER_SYLLABLE * syllables / len(words)
        )

    def syllables(self, word: str) -> int:
        """1 + the hyphenation points pyphen's ``en_US`` dictionary finds in ``word``."""
        if self._dictionary is None:
            from pyphen import Pyphen  # loads only when asked

            self._dictionary = Pyphen(lang="en_US")
        return 1 + len(self._dictionary.positions(word))

    def __repr__(self) -> str:
        return (
            f"Readability(min_words={self.min_words}, max_repeated_share={self.max_repeated_share})"
        )
