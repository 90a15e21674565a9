"""Training stages: one ``<stage>_config.py`` + ``<stage>_trainer.py`` pair each."""

from rlhf_gym.training.reward_config import RewardConfig
from rlhf_gym.training.reward_trainer import (
    RewardModelTrainer,
    bradley_terry_loss,
    build_reward_model,
    pairwise_accuracy,
)

__all__ = [
    "RewardConfig",
    "RewardModelTrainer",
    "bradley_terry_loss",
    "build_reward_model",
    "pairwise_accuracy",
]
