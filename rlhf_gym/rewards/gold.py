"""Gold labelers: fixed, known scores that stand in for human judgement."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


class VaderSentiment:
    """VADER compound sentiment of the completion, in [-1, 1] (the prompt is not scored).

    Scoring only the completion keeps the reward about what the policy wrote: the task's
    prompts are neutral openings, and an empty completion scores 0.
    """

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        scores = [self._analyzer.polarity_scores(text)["compound"] for text in completions]
        return np.asarray(scores, dtype=np.float32)

    def __repr__(self) -> str:
        return "VaderSentiment()"


_WORD = re.compile(r"[a-z0-9']+")

TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "food": (
        "delicious",
        "tasty",
        "flavor",
        "flavour",
        "flavors",
        "sauce",
        "fresh",
        "spicy",
        "sweet",
        "savory",
        "crispy",
        "dish",
        "dishes",
        "meal",
        "dessert",
        "chef",
        "recipe",
        "cheese",
        "bread",
        "soup",
        "taste",
        "tastes",
        "menu",
        "salad",
        "garlic",
        "butter",
    ),
    "travel": (
        "beach",
        "hotel",
        "flight",
        "view",
        "views",
        "trip",
        "city",
        "museum",
        "island",
        "journey",
        "tour",
        "airport",
        "mountain",
        "mountains",
        "coast",
        "village",
        "train",
    ),
}
"""Keyword lists of the built-in topics of :class:`KeywordScore`."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _check_lengths(prompts: Sequence[str], completions: Sequence[str]) -> None:
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")


class KeywordScore:
    """How much the completion talks about a topic: ``min(hits, saturation) / saturation``.

    ``hits`` counts the completion's words (lower-cased, whole words) found in the keyword set,
    so the score lies in [0, 1] and saturates: repeating one keyword forever does not pay more
    than ``saturation`` mentions.

    Args:
        keywords: the words to reward; default: the built-in list of ``topic``.
        topic: a key of :data:`TOPIC_KEYWORDS`, used when ``keywords`` is None.
        saturation: hits at which the score reaches 1.
    """

    def __init__(
        self, keywords: Sequence[str] | None = None, topic: str = "food", saturation: int = 3
    ) -> None:
        if keywords is None:
            if topic not in TOPIC_KEYWORDS:
                raise ValueError(
                    f"unknown topic {topic!r}; built-in topics: {sorted(TOPIC_KEYWORDS)}"
                )
            keywords = TOPIC_KEYWORDS[topic]
        self.keywords = frozenset(word.lower() for word in keywords)
        if not self.keywords or any(not _WORD.fullmatch(word) for word in self.keywords):
            raise ValueError(
                f"keywords must be non-empty single words, got {sorted(self.keywords)}"
            )
        if saturation < 1:
            raise ValueError(f"saturation must be a positive number of hits, got {saturation}")
        self.saturation = int(saturation)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        _check_lengths(prompts, completions)
        hits = [sum(word in self.keywords for word in _words(text)) for text in completions]
        return np.minimum(hits, self.saturation).astype(np.float32) / self.saturation

    def __repr__(self) -> str:
        return f"KeywordScore({len(self.keywords)} keywords, saturation={self.saturation})"


def length_closeness(counts: np.ndarray, targets: np.ndarray | int) -> np.ndarray:
    """``max(0, 1 - |counts - targets| / targets)`` as float32: 1 exactly on target, falling
    linearly to 0 at no words or at twice the target."""
    distance = np.abs(counts - targets) / targets
    return np.maximum(0.0, 1.0 - distance).astype(np.float32)


class LengthTarget:
    """How close the completion's length is to a target: ``max(0, 1 - |n - target| / target)``.

    ``n`` counts whitespace-separated words, so the score is 1 exactly on target and falls
    linearly to 0 at an empty completion or at twice the target: a gold score that rewards
    form rather than content.
    """

    def __init__(self, target_words: int = 12) -> None:
        if target_words < 1:
            raise ValueError(f"target_words must be a positive number of words, got {target_words}")
        self.target_words = int(target_words)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        _check_lengths(prompts, completions)
        counts = np.array([len(text.split()) for text in completions], dtype=np.float32)
        return length_closeness(counts, self.target_words)

    def __repr__(self) -> str:
        return f"LengthTarget(target_words={self.target_words})"
