"""RL-agent plug-ins for rlhf-gym: an SB3 language-model policy with KL control, TokenPPO, and
the critic-free GRPO, RLOO and REINFORCE.

Names are imported on first use, so ``import agents`` stays cheap and a missing optional
dependency (``sb3-contrib``) only matters to the agent that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CausalLMPolicy": "agents.sb3.policy",
    "KLPenaltyCallback": "agents.sb3.kl_callback",
    "TokenPPO": "agents.token_ppo.trainer",
    "TokenPPOConfig": "agents.token_ppo.config",
    "GRPO": "agents.critic_free.trainer",
    "GRPOConfig": "agents.critic_free.config",
    "RLOO": "agents.critic_free.trainer",
    "RLOOConfig": "agents.critic_free.config",
    "Reinforce": "agents.critic_free.trainer",
    "ReinforceConfig": "agents.critic_free.config",
    "FixedKLController": "agents.kl",
    "AdaptiveKLController": "agents.kl",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
