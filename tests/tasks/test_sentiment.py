"""The sentiment task: prompts, the held-out split, and the prompt-length budget."""

from __future__ import annotations

import pytest

from rlhf_gym.models import load_tokenizer
from rlhf_gym.tasks import Task, get_task


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("sentiment")


def test_task_fields(task):
    assert task.env_id == "rlhf_gym/Sentiment-v0"
    assert task.gold_reward == "vader"
    assert task.max_new_tokens == 24 and task.max_prompt_tokens == 32


def test_at_least_200_distinct_prompts(task):
    prompts = task.prompts("all")
    assert len(prompts) >= 200
    assert len(set(prompts)) == len(prompts)
    assert all(p == p.strip() and p for p in prompts)


def test_split_is_disjoint_covering_and_about_a_fifth(task):
    train, test, every = task.prompts("train"), task.prompts("test"), task.prompts("all")
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(every)
    assert 0.18 <= len(test) / len(every) <= 0.22
    assert task.prompts() == train  # train is the default


def test_splits_are_stable_copies(task):
    first = task.prompts("train")
    first.append("mutated")
    assert task.prompts("train")[-1] != "mutated"


def test_unknown_split(task):
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        task.prompts("validation")


def test_every_prompt_fits_the_budget_of_the_tiny_tokenizer(task, tiny_tokenizer):
    lengths = [len(tiny_tokenizer(p)["input_ids"]) for p in task.prompts("all")]
    assert max(lengths) <= task.max_prompt_tokens


@pytest.mark.slow
def test_every_prompt_fits_the_budget_of_smollm2():
    task = get_task("sentiment")
    tokenizer = load_tokenizer("smollm2-135m")
    lengths = [len(tokenizer(p)["input_ids"]) for p in task.prompts("all")]
    assert max(lengths) <= task.max_prompt_tokens
