"""The environments: the single-turn text-generation env, the multi-turn dialogue env, their
batched vector forms, and the episode state and step rules each pair shares."""

from rlhf_gym.envs.dialogue import DialogueEnv
from rlhf_gym.envs.dialogue_episode import (
    DialogueConfig,
    DialogueEpisode,
    DialoguePlannedStep,
    DialogueScorer,
)
from rlhf_gym.envs.episode import (
    EpisodeConfig,
    PlannedStep,
    PromptEncoder,
    TextEpisode,
    TextScorer,
    TokenWindow,
)
from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.envs.vector import DialogueVectorEnv, TextGenerationVectorEnv, make_vector_env

__all__ = [
    "DialogueConfig",
    "DialogueEnv",
    "DialogueEpisode",
    "DialoguePlannedStep",
    "DialogueScorer",
    "DialogueVectorEnv",
    "EpisodeConfig",
    "PlannedStep",
    "PromptEncoder",
    "TextEpisode",
    "TextGenerationEnv",
    "TextGenerationVectorEnv",
    "TextScorer",
    "TokenWindow",
    "make_vector_env",
]
