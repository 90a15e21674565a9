"""The environments: one text-generation env and its batched vector form."""

from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.envs.vector import TextGenerationVectorEnv

__all__ = ["TextGenerationEnv", "TextGenerationVectorEnv"]
