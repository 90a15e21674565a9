"""Reward predictors: the protocol, gold labelers, learned / remote / ensemble predictors, and
lookup by name or entry point."""

from rlhf_gym.rewards.base import (
    ENTRY_POINT_GROUP,
    RewardPredictor,
    RewardSpec,
    available_predictors,
    check_scores,
    make_reward_predictor,
)
from rlhf_gym.rewards.ensemble import EnsemblePredictor
from rlhf_gym.rewards.gold import KeywordScore, LengthTarget, VaderSentiment
from rlhf_gym.rewards.learned import LearnedRewardModel, sentiment_reward_model
from rlhf_gym.rewards.remote import RemoteRewardError, RemoteRewardPredictor

__all__ = [
    "ENTRY_POINT_GROUP",
    "EnsemblePredictor",
    "KeywordScore",
    "LearnedRewardModel",
    "LengthTarget",
    "RemoteRewardError",
    "RemoteRewardPredictor",
    "RewardPredictor",
    "RewardSpec",
    "VaderSentiment",
    "available_predictors",
    "check_scores",
    "make_reward_predictor",
    "sentiment_reward_model",
]
