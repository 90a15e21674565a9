"""A simulated labeler: a gold score turned into a noisy Bradley–Terry choice.

This is the synthetic-feedback setup of Gao et al. (2022): the labeler prefers ``a`` over ``b``
with probability ``sigmoid((gold(a) - gold(b)) / temperature)``. Because the noise is known, so
is the best accuracy any reward model can reach on the labels: :func:`bayes_optimal_accuracy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rlhf_gym.preferences.pair import Comparison, PreferencePair
from rlhf_gym.rewards.base import RewardSpec, check_scores, make_reward_predictor
from rlhf_gym.seeding import numpy_rng


def preference_probability(
    gold_a: np.ndarray, gold_b: np.ndarray, temperature: float
) -> np.ndarray:
    """P(a is chosen) = sigmoid((gold_a - gold_b) / temperature); (N,), (N,) -> (N,).

    Temperature 0 is a noiseless labeler: 1 if a scores higher, 0 if lower, 0.5 on a tie.
    """
    diff = np.asarray(gold_a, dtype=np.float64) - np.asarray(gold_b, dtype=np.float64)
    if temperature == 0:
        return 0.5 * (1.0 + np.sign(diff))
    return 0.5 * (1.0 + np.tanh(diff / (2.0 * temperature)))  # a stable sigmoid


def bayes_optimal_accuracy(gold_a: np.ndarray, gold_b: np.ndarray, temperature: float) -> float:
    """Best expected agreement with the simulated labels: mean of sigmoid(|gold_a - gold_b| / T).

    A predictor that always picks the higher gold score reaches it; no predictor can beat it.
    """
    return bayes_bound(gold_a, gold_b, temperature).accuracy


@dataclass(frozen=True)
class BayesBound:
    """What the best possible predictor reaches on a given set of simulated-label pairs."""

    accuracy: float
    """Expected accuracy of always picking the higher gold score."""
    standard_error: float
    """Standard deviation of that predictor's realised accuracy over the labels' coin flips."""
    gold_tie_share: float
    """Share of pairs whose gold scores tie: there every predictor is a coin flip."""
    pairs: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bayes_bound(gold_a: np.ndarray, gold_b: np.ndarray, temperature: float) -> BayesBound:
    """The Bayes-optimal accuracy of these pairs, its standard error and their gold-tie share.

    Compare a model with the bound of *the same* pairs: the bound depends on their gold gaps.
    """
    gap = np.abs(np.asarray(gold_a, dtype=np.float64) - np.asarray(gold_b, dtype=np.float64))
    if gap.size == 0:
        raise ValueError("the Bayes bound needs at least one pair")
    right = preference_probability(gap, np.zeros_like(gap), temperature)  # P(label = higher gold)
    return BayesBound(
        accuracy=float(right.mean()),
        standard_error=float(np.sqrt(np.sum(right * (1 - right))) / gap.size),
        gold_tie_share=float(np.mean(gap == 0)),
        pairs=int(gap.size),
    )


class SimulatedLabeler:
    """Labels comparisons with a gold score and Bradley–Terry noise, from a seeded RNG.

    Args:
        gold: the gold score (a predictor name such as ``"vader"``, or any predictor).
        temperature: noise level; 0 is noiseless, larger is noisier. Must be >= 0.
        seed: user seed; the labeler draws from its own ``"labeling"`` stream of it, so
            sharing a seed with :func:`pair_up` never ties the label to the display order.
    """

    def __init__(self, gold: RewardSpec = "vader", temperature: float = 0.1, seed: int = 0):
        if not np.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
        self.gold = make_reward_predictor(gold)
        self.temperature = float(temperature)
        self.rng = numpy_rng(seed, "labeling")

    def gold_scores(self, comparisons: Sequence[Comparison]) -> tuple[np.ndarray, np.ndarray]:
        """Gold scores of responses ``a`` and ``b``: two float32 arrays of shape (N,)."""
        n = len(comparisons)
        prompts = [c.prompt for c in comparisons] * 2
        texts = [c.a for c in comparisons] + [c.b for c in comparisons]
        scores = check_scores(self.gold(prompts, texts), 2 * n, self.gold)
        return scores[:n], scores[n:]

    def label(self, comparisons: Sequence[Comparison]) -> list[PreferencePair]:
        """One preference per comparison, drawn from the Bradley–Terry probabilities."""
        return self.choose(comparisons, *self.gold_scores(comparisons))

    def choose(
        self, comparisons: Sequence[Comparison], gold_a: np.ndarray, gold_b: np.ndarray
    ) -> list[PreferencePair]:
        """One preference per comparison from gold scores (N,) of ``a`` and ``b`` scored
        elsewhere (e.g. of the conversations the texts render), with this labeler's noise."""
        if not len(gold_a) == len(gold_b) == len(comparisons):
            raise ValueError(
                f"{len(comparisons)} comparisons but {len(gold_a)} and {len(gold_b)} gold scores"
            )
        p_a = preference_probability(gold_a, gold_b, self.temperature)
        picks_a = self.rng.random(len(comparisons)) < p_a
        return [
            PreferencePair(c.prompt, c.a, c.b) if a else PreferencePair(c.prompt, c.b, c.a)
            for c, a in zip(comparisons, picks_a, strict=True)
        ]

    @property
    def name(self) -> str:
        return f"simulated:{self.gold!r}:T={self.temperature:g}"

    def __repr__(self) -> str:
        return f"SimulatedLabeler(gold={self.gold!r}, temperature={self.temperature:g})"
