"""The readable task: generated prompts, a split by topic, demonstrations that read easily, and
the env built from the task."""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlhf_gym.rewards import Readability, make_reward_predictor
from rlhf_gym.tasks import Task, get_task, readable

DEMONSTRATION_FLOOR = 0.5
"""Every demonstration scores above this (a Flesch reading ease above 75: "fairly easy")."""


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("readable")


def test_task_fields(task):
    assert task.env_id == "rlhf_gym/Readable-v0"
    assert task.gold_reward == task.default_reward == "readability"
    assert task.reward_backbone is None


def test_shipped_files_are_the_generators_output(task):
    assert task.prompts("all") == readable.generate_prompts()
    assert task.demonstrations() == readable.generate_demonstrations()


def test_at_least_200_distinct_prompts_each_about_one_topic(task):
    prompts = task.prompts("all")
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    for prompt in prompts:
        assert sum(f" {topic}." in prompt for topic in readable.TOPICS) == 1, prompt


def test_split_holds_out_whole_topics(task):
    train, test, every = task.prompts("train"), task.prompts("test"), task.prompts("all")
    assert sorted(train + test) == sorted(every)
    assert len(test) == len(every) // 5

    def topics(prompts: list[str]) -> set[str]:
        return {topic for topic in readable.TOPICS for p in prompts if f" {topic}." in p}

    assert not topics(train) & topics(test)
    assert len(topics(test)) == len(readable.TOPICS) // 5


def test_demonstrations_cover_train_prompts_only_and_read_easily(task):
    records = task.demonstrations()
    assert [r["prompt"] for r in records] == task.prompts("train")
    scores = Readability()([r["prompt"] for r in records], [r["completion"] for r in records])
    assert scores.min() > DEMONSTRATION_FLOOR


def test_prompts_and_demonstrations_fit_the_budgets(task, tiny_tokenizer):
    prompt_lengths = [len(tiny_tokenizer(p)["input_ids"]) for p in task.prompts("all")]
    assert max(prompt_lengths) <= task.max_prompt_tokens
    completions = {r["completion"] for r in task.demonstrations()}
    lengths = [len(tiny_tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions]
    assert max(lengths) + 1 <= task.max_new_tokens  # + EOS


def test_env_reward_is_the_gold_score_of_the_completion(task, play):
    env = gym.make(task.env_id, model="tiny").unwrapped
    assert env.task is task and isinstance(env.reward_predictor, Readability)
    prompt = task.prompts("test")[0]
    cases = [(" It is not hard. You can see it for yourself each day.", 1.0), ("", -1.0)]
    for completion, expected in cases:
        reward, info = play(env, prompt, completion)
        assert info["completion"] == completion and info["eos"]
        assert reward == expected
        assert reward == make_reward_predictor(task.gold_reward)([prompt], [completion])[0]
