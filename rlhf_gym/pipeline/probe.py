"""Held-out probes along training: the points a benchmark reads "gold at a KL budget" from.

An agent's own curve is measured on its training batches; a probe samples the policy being
trained on a fixed set of held-out prompts, with the same seed every time (so two probes, or two
agents, differ by the policy, not by the draw), and records gold, proxy and KL to the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rlhf_gym.evaluation import evaluate_policy
from rlhf_gym.rewards.learned import eval_mode

if TYPE_CHECKING:
    from transformers import PreTrainedModel
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    from rlhf_gym.rewards.base import RewardPredictor


@dataclass
class HeldOutProbe:
    """Call :meth:`maybe` after each iteration; every ``every``-th (and iteration 0) is probed.

    ``points`` collects ``{"iteration", "kl", "proxy", "gold"}``, one per probe.
    """

    reference: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    prompts: list[str]
    gold: RewardPredictor
    proxy: RewardPredictor
    every: int
    max_new_tokens: int
    temperature: float
    seed: int
    points: list[dict[str, float]] = field(default_factory=list)

    def maybe(self, policy: PreTrainedModel, iteration: int) -> None:
        """Probe ``policy`` if ``iteration`` is due (0, every, 2·every, ...)."""
        if iteration % self.every == 0:
            self.probe(policy, iteration)

    @torch.no_grad()
    def probe(self, policy: PreTrainedModel, iteration: int) -> dict[str, float]:
        """Sample one completion per held-out prompt and measure it (sampling draws from its own
        generator, so training's random streams are untouched)."""
        with eval_mode(policy):  # no dropout draw in the measurement
            result, _ = evaluate_policy(
                policy, self.reference, self.tokenizer, self.prompts, self.gold, self.proxy,
                samples_per_prompt=1, max_new_tokens=self.max_new_tokens, seed=self.seed,
                temperature=self.temperature, progress_bar=False,
            )  # fmt: skip
        point = {
            "iteration": iteration,
            "kl": result.kl,
            "proxy": result.proxy,
            "gold": result.gold,
        }
        self.points.append(point)
        return point
