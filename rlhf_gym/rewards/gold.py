"""Gold labelers: fixed, known scores that stand in for human judgement."""

from __future__ import annotations

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
