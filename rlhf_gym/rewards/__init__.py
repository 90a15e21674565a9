"""Reward predictors: the protocol, gold labelers, and lookup by name or entry point."""

from rlhf_gym.rewards.base import (
    ENTRY_POINT_GROUP,
    RewardPredictor,
    RewardSpec,
    available_predictors,
    check_scores,
    make_reward_predictor,
)
from rlhf_gym.rewards.gold import VaderSentiment

__all__ = [
    "ENTRY_POINT_GROUP",
    "RewardPredictor",
    "RewardSpec",
    "VaderSentiment",
    "available_predictors",
    "check_scores",
    "make_reward_predictor",
]
