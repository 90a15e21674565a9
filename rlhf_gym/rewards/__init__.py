"""Reward predictors: the protocols (text pairs, conversations), gold labelers, learned /
remote / ensemble predictors, and lookup by name or entry point."""

from typing import TYPE_CHECKING

from rlhf_gym.lazy import lazy_exports

if TYPE_CHECKING:
    from rlhf_gym.rewards.base import (
        ENTRY_POINT_GROUP,
        ConversationRewardPredictor,
        RewardPredictor,
        RewardSpec,
        available_predictors,
        check_scores,
        conversation_scores,
        make_reward_predictor,
    )
    from rlhf_gym.rewards.ensemble import EnsemblePredictor
    from rlhf_gym.rewards.gold import KeywordScore, LengthTarget, VaderSentiment
    from rlhf_gym.rewards.instructions import ArithmeticAnswer, InstructedLength
    from rlhf_gym.rewards.learned import LearnedRewardModel, sentiment_reward_model
    from rlhf_gym.rewards.remote import RemoteRewardError, RemoteRewardPredictor
    from rlhf_gym.rewards.writing import ConceptCoverage, Readability

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ENTRY_POINT_GROUP": "rlhf_gym.rewards.base",
        "ConversationRewardPredictor": "rlhf_gym.rewards.base",
        "conversation_scores": "rlhf_gym.rewards.base",
        "RewardPredictor": "rlhf_gym.rewards.base",
        "RewardSpec": "rlhf_gym.rewards.base",
        "available_predictors": "rlhf_gym.rewards.base",
        "check_scores": "rlhf_gym.rewards.base",
        "make_reward_predictor": "rlhf_gym.rewards.base",
        "EnsemblePredictor": "rlhf_gym.rewards.ensemble",
        "KeywordScore": "rlhf_gym.rewards.gold",
        "LengthTarget": "rlhf_gym.rewards.gold",
        "VaderSentiment": "rlhf_gym.rewards.gold",
        "ArithmeticAnswer": "rlhf_gym.rewards.instructions",
        "InstructedLength": "rlhf_gym.rewards.instructions",
        "LearnedRewardModel": "rlhf_gym.rewards.learned",
        "sentiment_reward_model": "rlhf_gym.rewards.learned",
        "RemoteRewardError": "rlhf_gym.rewards.remote",
        "RemoteRewardPredictor": "rlhf_gym.rewards.remote",
        "ConceptCoverage": "rlhf_gym.rewards.writing",
        "Readability": "rlhf_gym.rewards.writing",
    },
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArithmeticAnswer",
    "ConceptCoverage",
    "ConversationRewardPredictor",
    "EnsemblePredictor",
    "InstructedLength",
    "KeywordScore",
    "LearnedRewardModel",
    "LengthTarget",
    "Readability",
    "RemoteRewardError",
    "RemoteRewardPredictor",
    "RewardPredictor",
    "RewardSpec",
    "VaderSentiment",
    "available_predictors",
    "check_scores",
    "conversation_scores",
    "make_reward_predictor",
    "sentiment_reward_model",
]
