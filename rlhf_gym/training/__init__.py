"""Training stages: one ``<stage>_config.py`` + ``<stage>_trainer.py`` pair each."""

from rlhf_gym.training.dpo_config import DPOConfig
from rlhf_gym.training.dpo_trainer import DPOTrainer, dpo_loss
from rlhf_gym.training.reward_backbone import build_reward_model
from rlhf_gym.training.reward_config import RewardConfig
from rlhf_gym.training.reward_trainer import (
    RewardModelTrainer,
    bradley_terry_loss,
    pairwise_accuracy,
)
from rlhf_gym.training.sft_config import SFTConfig
from rlhf_gym.training.sft_trainer import SFTTrainer, sft_loss

__all__ = [
    "DPOConfig",
    "DPOTrainer",
    "RewardConfig",
    "RewardModelTrainer",
    "SFTConfig",
    "SFTTrainer",
    "bradley_terry_loss",
    "build_reward_model",
    "dpo_loss",
    "pairwise_accuracy",
    "sft_loss",
]
