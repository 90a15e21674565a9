"""KLPenaltyCallback: per-token KL control for any SB3 on-policy algorithm, through a callback.

SB3's ``collect_rollouts`` calls ``callback.on_step()`` after ``env.step`` and before
``rollout_buffer.add``, with ``self.locals["rewards"]`` being the very array that is then
stored. Subtracting ``beta * (logp_policy - logp_ref)`` from it in place is how the penalty
reaches PPO / A2C / MaskablePPO without touching their code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from agents.kl import KLBudget, KLController, kl_k1, make_kl_controller
from agents.sb3.reference import ReferenceModel
from rlhf_gym.rewards import RewardPredictor, RewardSpec, make_reward_predictor


def kl_penalty(
    logp_policy: np.ndarray, logp_ref: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-token KL estimates (k1) and the reward to add, ``-beta * KL``; all shapes (N,)."""
    kl = kl_k1(torch.as_tensor(logp_policy), torch.as_tensor(logp_ref)).numpy()
    return kl, (-beta * kl).astype(np.float32)


class KLPenaltyCallback(BaseCallback):
    """Subtract ``kl_coef * (log pi(a_t) - log pi_ref(a_t))`` from every reward SB3 stores.

    The settings carry ``TokenPPOConfig``'s names for the same things.

    Args:
        kl_coef: the (initial) KL coefficient beta.
        adaptive_kl: adapt beta after each rollout so the episode KL tracks ``kl_target``
            (Ziegler et al. 2019); otherwise beta stays fixed.
        kl_target, kl_horizon: the adaptive controller's target episode KL (nats) and horizon
            (episodes).
        kl_budget, kl_budget_window: stop training (``_on_step`` returns False) once the mean
            episode KL of the last ``kl_budget_window`` rollouts reaches ``kl_budget`` nats;
            None never stops.
        reference: the frozen reference; by default a frozen copy of the policy when training
            starts (sharing its frozen layers).
        gold_reward: a reward predictor (name or callable) whose score of every finished episode
            is logged as ``rollout/gold_score`` next to the env's own ``rollout/proxy_score``.

    Logged through SB3's logger after each rollout: ``kl/beta``, ``kl/token_kl`` (mean per
    token), ``kl/episode_kl`` (mean summed KL of finished episodes), ``rollout/proxy_score`` and
    ``rollout/gold_score``.
    """

    def __init__(
        self,
        kl_coef: float = 0.05,
        adaptive_kl: bool = False,
        kl_target: float = 6.0,
        kl_horizon: int = 10_000,
        kl_budget: float | None = None,
        kl_budget_window: int = 3,
        reference: ReferenceModel | None = None,
        gold_reward: RewardSpec | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.controller: KLController = make_kl_controller(
            kl_coef, adaptive_kl, kl_target, kl_horizon
        )
        self.kl_budget = KLBudget(kl_budget, kl_budget_window)
        self.reference = reference
        self.gold: RewardPredictor | None = (
            make_reward_predictor(gold_reward) if gold_reward is not None else None
        )
        self._episode_kl = np.zeros(0)
        self._rollout: dict[str, list[float]] = {}
        self.history: list[dict[str, float]] = []
        """One entry per rollout: the means that were logged, and beta (for learning curves)."""

    def _init_callback(self) -> None:
        if self.reference is None:  # only once: a second learn() keeps the first reference
            self.reference = ReferenceModel.from_policy(self.model.policy)
        self._episode_kl = np.zeros(self.training_env.num_envs)

    def _on_rollout_start(self) -> None:
        self._rollout = {"token_kl": [], "episode_kl": [], "proxy": [], "gold": []}

    def _on_step(self) -> bool:
        obs = self.locals["obs_tensor"]
        actions = torch.as_tensor(np.asarray(self.locals["actions"]).reshape(-1))
        logp_ref = self.reference.logprobs(obs["input_ids"], obs["attention_mask"], actions)
        logp = self.locals["log_probs"].detach().float().cpu().numpy()
        kl, penalty = kl_penalty(logp, logp_ref.cpu().numpy(), self.controller.value)
        self.locals["rewards"] += penalty  # in place: this array is what the buffer stores
        self._track(kl, self.locals["dones"], self.locals["infos"])
        return not self.kl_budget.spent

    def _track(self, kl: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        self._rollout["token_kl"].extend(kl.tolist())
        self._episode_kl += kl
        finished = np.flatnonzero(dones)
        if finished.size == 0:
            return
        self._rollout["episode_kl"].extend(self._episode_kl[finished].tolist())
        self._episode_kl[finished] = 0.0
        ended = [infos[i] for i in finished if "score" in infos[i]]
        self._rollout["proxy"].extend(float(info["score"]) for info in ended)
        if self.gold is not None and ended:
            prompts = [info["prompt"] for info in ended]
            completions = [info["completion"] for info in ended]
            self._rollout["gold"].extend(np.asarray(self.gold(prompts, completions)).tolist())

    def _on_rollout_end(self) -> None:
        episode_kl = self._rollout["episode_kl"]
        if episode_kl:
            self.controller.update(float(np.mean(episode_kl)), len(episode_kl))
            self.kl_budget.update(float(np.mean(episode_kl)))
        self.logger.record("kl/beta", self.controller.value)
        names = {"token_kl": "kl/token_kl", "episode_kl": "kl/episode_kl"}
        names |= {"proxy": "rollout/proxy_score", "gold": "rollout/gold_score"}
        summary = {"beta": self.controller.value}
        for key, name in names.items():
            if self._rollout[key]:
                summary[key] = float(np.mean(self._rollout[key]))
                self.logger.record(name, summary[key])
        self.history.append(summary)
