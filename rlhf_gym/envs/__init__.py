"""The environments: one text-generation env, its batched vector form, and the episode state
and step rules the two share."""

from rlhf_gym.envs.episode import EpisodeConfig, PlannedStep, PromptEncoder, TextEpisode
from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.envs.vector import TextGenerationVectorEnv

__all__ = [
    "EpisodeConfig",
    "PlannedStep",
    "PromptEncoder",
    "TextEpisode",
    "TextGenerationEnv",
    "TextGenerationVectorEnv",
]
