"""rlhf-gym: LLM text generation as a Gymnasium environment rewarded by a learned reward model.

Importing the package registers its environments with Gymnasium (``rlhf_gym/Sentiment-v0``,
``rlhf_gym/TextGeneration-v0``...). Without the import, ``gym.make("rlhf_gym:rlhf_gym/...")``
imports it for you.
"""

from typing import TYPE_CHECKING

from rlhf_gym.lazy import lazy_exports
from rlhf_gym.registration import register_envs
from rlhf_gym.tasks import Task, get_task, registered_tasks

if TYPE_CHECKING:
    from rlhf_gym.envs.dialogue import DialogueEnv
    from rlhf_gym.envs.text_generation import TextGenerationEnv
    from rlhf_gym.envs.vector import DialogueVectorEnv, TextGenerationVectorEnv
    from rlhf_gym.rewards.base import RewardPredictor, make_reward_predictor
    from rlhf_gym.rewards.gold import VaderSentiment

# the envs need torch and transformers: imported on first use, so the command line stays quick
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DialogueEnv": "rlhf_gym.envs.dialogue",
        "DialogueVectorEnv": "rlhf_gym.envs.vector",
        "TextGenerationEnv": "rlhf_gym.envs.text_generation",
        "TextGenerationVectorEnv": "rlhf_gym.envs.vector",
        "RewardPredictor": "rlhf_gym.rewards.base",
        "make_reward_predictor": "rlhf_gym.rewards.base",
        "VaderSentiment": "rlhf_gym.rewards.gold",
    },
)

__version__ = "0.1.0"
ENV_IDS = register_envs()

__all__ = [
    "ENV_IDS",
    "DialogueEnv",
    "DialogueVectorEnv",
    "RewardPredictor",
    "Task",
    "TextGenerationEnv",
    "TextGenerationVectorEnv",
    "VaderSentiment",
    "__version__",
    "get_task",
    "make_reward_predictor",
    "register_envs",
    "registered_tasks",
]
