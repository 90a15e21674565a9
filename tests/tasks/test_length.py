"""The length task: generated prompts and demonstrations, targets on both splits, its env."""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlhf_gym.models import load_tokenizer
from rlhf_gym.rewards import InstructedLength
from rlhf_gym.rewards.instructions import count_words, parse_target_words
from rlhf_gym.tasks import get_task
from rlhf_gym.tasks.length import (
    SENTENCES,
    TASK,
    generate_demonstrations,
    generate_prompts,
    generate_requests,
)


@pytest.fixture(scope="module")
def gold() -> InstructedLength:
    return InstructedLength()


def test_task_fields():
    task = get_task("length")
    assert task is TASK
    assert task.env_id == "rlhf_gym/Length-v0"
    assert task.gold_reward == task.default_reward == "instructed-length"
    assert task.reward_backbone is None


def test_shipped_files_are_the_generators_output():
    assert TASK.prompts("all") == generate_prompts()
    assert TASK.demonstrations() == generate_demonstrations()


def test_at_least_200_distinct_prompts_each_asking_for_its_target():
    requests = generate_requests()
    prompts = [prompt for _, _, prompt in requests]
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    assert all(p == p.strip() for p in prompts)
    for target, subject, prompt in requests:
        assert parse_target_words(prompt) == target and subject in prompt
    assert {target for target, _, _ in requests} == set(range(5, 21))


def test_split_is_disjoint_covering_with_every_target_and_subject_in_both_parts():
    train, test, every = TASK.prompts("train"), TASK.prompts("test"), TASK.prompts("all")
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(every)
    assert 0.18 <= len(test) / len(every) <= 0.22
    for split in (train, test):
        assert {parse_target_words(p) for p in split} == set(range(5, 21))
        assert {s for s in SENTENCES for p in split if s in p} == set(SENTENCES)


def test_demonstrations_cover_the_train_prompts_only():
    prompts = [record["prompt"] for record in TASK.demonstrations()]
    assert set(prompts) == set(TASK.prompts("train"))
    assert all(prompts.count(p) == 2 for p in set(prompts))


def test_every_demonstration_scores_one(gold):
    records = TASK.demonstrations()
    scores = gold([r["prompt"] for r in records], [r["completion"] for r in records])
    assert scores.tolist() == [1.0] * len(records)
    by_prompt: dict[str, set[str]] = {}
    for r in records:
        by_prompt.setdefault(r["prompt"], set()).add(r["completion"])
    assert all(len(completions) == 2 for completions in by_prompt.values())  # two different


def test_a_demonstration_reads_as_sentences():
    first = TASK.demonstrations()[0]
    assert first["completion"].startswith(" ") and first["completion"].endswith(".")
    words = first["completion"].split()
    assert count_words(first["completion"]) == len(words)  # no punctuation-only tokens


def test_every_prompt_fits_the_budget_of_the_tiny_tokenizer(tiny_tokenizer):
    lengths = [len(tiny_tokenizer(p)["input_ids"]) for p in TASK.prompts("all")]
    assert max(lengths) <= TASK.max_prompt_tokens


def test_env_reward_is_the_gold_score(play, gold):
    env = gym.make("rlhf_gym/Length-v0", model="tiny").unwrapped
    assert env.task is TASK and isinstance(env.reward_predictor, InstructedLength)
    prompt = "In exactly 5 words, describe a rainy morning."
    cases = [(" Puddles fill streets. Rain falls.", 1.0), (" Rain falls.", 0.4), ("", 0.0)]
    for completion, expected in cases:
        reward, info = play(env, prompt, completion)
        assert info["completion"] == completion and info["eos"]
        assert reward == pytest.approx(expected)
        assert reward == gold([prompt], [completion])[0]


@pytest.mark.slow
def test_prompts_and_demonstrations_fit_the_budgets_of_smollm2():
    tokenizer = load_tokenizer("smollm2-135m")
    prompts = [len(tokenizer(p)["input_ids"]) for p in TASK.prompts("all")]
    demos = [len(tokenizer(r["completion"])["input_ids"]) for r in TASK.demonstrations()]
    assert max(prompts) <= TASK.max_prompt_tokens
    assert max(demos) < TASK.max_new_tokens  # room for EOS
