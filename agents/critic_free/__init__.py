"""Critic-free policy gradients against the rlhf-gym env: GRPO, RLOO and REINFORCE, built on
TokenPPO's rollout (one batched generation of k completions per prompt), sampler, log-prob
and logging code."""

from agents.critic_free.config import CriticFreeConfig, GRPOConfig, ReinforceConfig, RLOOConfig
from agents.critic_free.trainer import GRPO, RLOO, CriticFreeTrainer, Reinforce

__all__ = [
    "GRPO", "RLOO", "CriticFreeConfig", "CriticFreeTrainer", "GRPOConfig", "RLOOConfig",
    "Reinforce", "ReinforceConfig",
]  # fmt: skip
