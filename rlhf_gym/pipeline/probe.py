"""Held-out probes along training: the points a benchmark reads "gold at a KL budget" from.

An agent's own curve is measured on its training batches; a probe samples the policy being
trained on a fixed set of held-out prompts, with the same seed every time (so two probes, or two
agents, differ by the policy, not by the draw), and records gold, proxy and KL to the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rlhf_gym.rewards.learned import eval_mode

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class HeldOutProbe:
    """Call :meth:`maybe` after each iteration; every ``every``-th (and iteration 0) is probed.

    ``measure`` samples a policy on the held-out set (the same draw every time: its own seed)
    and returns at least its mean ``gold``, ``proxy`` and ``kl`` to the reference (completions
    of held-out prompts, or conversations of a dialogue task's held-out openings and secrets).
    ``points`` collects ``{"iteration", "kl", "proxy", "gold"}``, one per probe.
    """

    measure: Callable[[PreTrainedModel], Mapping[str, float]]
    every: int
    points: list[dict[str, float]] = field(default_factory=list)

    def maybe(self, policy: PreTrainedModel, iteration: int) -> None:
        """Probe ``policy`` if ``iteration`` is due (0, every, 2·every, ...)."""
        if iteration % self.every == 0:
            self.probe(policy, iteration)

    @torch.no_grad()
    def probe(self, policy: PreTrainedModel, iteration: int) -> dict[str, float]:
        """Measure ``policy`` on the held-out set (sampling draws from its own generator, so
        training's random streams are untouched)."""
        with eval_mode(policy):  # no dropout draw in the measurement
            result = self.measure(policy)
        point = {
            "iteration": iteration,
            "kl": float(result["kl"]),
            "proxy": float(result["proxy"]),
            "gold": float(result["gold"]),
        }
        self.points.append(point)
        return point
