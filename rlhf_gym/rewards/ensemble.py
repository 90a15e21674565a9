"""EnsemblePredictor: several reward predictors combined per completion, with the conservative
objectives of Coste et al. (2023, "Reward Model Ensembles Help Mitigate Overoptimization")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlhf_gym.rewards.base import RewardSpec, check_scores, make_reward_predictor
from rlhf_gym.validation import require, require_non_negative

REDUCTIONS = ("mean", "min", "mean-minus-std")


class EnsemblePredictor:
    """Scores with every member and combines the scores per completion.

    ``"mean"`` averages out members' independent errors; ``"min"`` (worst-case optimisation) is
    conservative: a policy must please every member, which makes exploiting one member's blind
    spot pay less; ``"mean-minus-std"`` (uncertainty-weighted) subtracts ``uncertainty_coef``
    times the members' standard deviation, so completions the members disagree on pay less.
    :meth:`disagreement` is that standard deviation, to watch along training.

    Args:
        members: predictors as names, instances or callables (at least one).
        reduce: ``"mean"``, ``"min"`` or ``"mean-minus-std"``.
        uncertainty_coef: lambda of ``"mean-minus-std"`` (>= 0).
    """

    def __init__(
        self, members: Sequence[RewardSpec], reduce: str = "mean", uncertainty_coef: float = 1.0
    ) -> None:
        if isinstance(members, str) or not members:
            raise ValueError(f"members must be a non-empty list of predictors, got {members!r}")
        require("reduce", reduce, reduce in REDUCTIONS, f"one of {REDUCTIONS}")
        self.members = [make_reward_predictor(member) for member in members]
        self.reduce = reduce
        self.uncertainty_coef = uncertainty_coef
        require_non_negative(self, "uncertainty_coef")

    def member_scores(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Every member's scores, (M, N) float32."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        return np.stack(
            [check_scores(m(prompts, completions), len(prompts), m) for m in self.members]
        )  # (M, N)

    def disagreement(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The members' standard deviation per completion, (N,) float32."""
        return self.member_scores(prompts, completions).std(axis=0).astype(np.float32)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        scores = self.member_scores(prompts, completions)  # (M, N)
        if self.reduce == "min":
            combined = scores.min(axis=0)
        elif self.reduce == "mean-minus-std":
            combined = scores.mean(axis=0) - self.uncertainty_coef * scores.std(axis=0)
        else:
            combined = scores.mean(axis=0)
        return combined.astype(np.float32)

    def __repr__(self) -> str:
        return (
            f"EnsemblePredictor({self.members!r}, reduce={self.reduce!r}, "
            f"uncertainty_coef={self.uncertainty_coef!r})"
        )
