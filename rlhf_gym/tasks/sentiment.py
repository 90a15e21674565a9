"""Sentiment: continue the opening of a short review so that the review reads positive.

The prompts are neutral openings written for this project (films, food, gadgets, places...);
the gold score is VADER's compound sentiment of the completion, in [-1, 1].
"""

from rlhf_gym.tasks.base import Task

TASK = Task(
    name="sentiment",
    env_name="Sentiment",
    version=0,
    description="Continue the start of a short review so that it reads positive.",
    prompts_resource="sentiment_prompts.txt",
    gold_reward="vader",
    default_reward="sentiment-rm",
    # a reward trunk that has learned sentiment words: a fresh tiny policy's text is mostly
    # neutral to the gold score (VADER), too few informative pairs to learn a lexicon from
    reward_backbone="sentiment-rm",
    max_new_tokens=24,
    max_prompt_tokens=32,
)
