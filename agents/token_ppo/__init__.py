"""TokenPPO: fast sequence-level PPO for a causal LM, trained against the rlhf-gym env."""

from agents.token_ppo.config import TokenPPOConfig
from agents.token_ppo.trainer import TokenPPO

__all__ = ["TokenPPO", "TokenPPOConfig"]
