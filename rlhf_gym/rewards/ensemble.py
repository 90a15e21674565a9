"""EnsemblePredictor: several reward predictors combined by mean or min."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlhf_gym.rewards.base import RewardSpec, check_scores, make_reward_predictor

REDUCTIONS = ("mean", "min")


class EnsemblePredictor:
    """Scores with every member and combines the scores per completion.

    ``"mean"`` averages out members' independent errors; ``"min"`` is conservative: a policy
    must please every member, which makes exploiting one member's blind spot pay less.

    Args:
        members: predictors as names, instances or callables (at least one).
        reduce: ``"mean"`` or ``"min"``.
    """

    def __init__(self, members: Sequence[RewardSpec], reduce: str = "mean") -> None:
        if isinstance(members, str) or not members:
            raise ValueError(f"members must be a non-empty list of predictors, got {members!r}")
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.members = [make_reward_predictor(member) for member in members]
        self.reduce = reduce

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        scores = np.stack(
            [check_scores(m(prompts, completions), len(prompts), m) for m in self.members]
        )  # (M, N)
        combined = scores.mean(axis=0) if self.reduce == "mean" else scores.min(axis=0)
        return combined.astype(np.float32)

    def __repr__(self) -> str:
        return f"EnsemblePredictor({self.members!r}, reduce={self.reduce!r})"
