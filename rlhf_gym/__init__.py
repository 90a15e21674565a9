"""rlhf-gym: LLM text generation as a Gymnasium environment rewarded by a learned reward model.

Importing the package registers its environments with Gymnasium (``rlhf_gym/Sentiment-v0``,
``rlhf_gym/TextGeneration-v0``...). Without the import, ``gym.make("rlhf_gym:rlhf_gym/...")``
imports it for you.
"""

from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv
from rlhf_gym.registration import register_envs
from rlhf_gym.rewards import RewardPredictor, VaderSentiment, make_reward_predictor
from rlhf_gym.tasks import Task, get_task, registered_tasks

__version__ = "0.1.0"
ENV_IDS = register_envs()

__all__ = [
    "ENV_IDS",
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
