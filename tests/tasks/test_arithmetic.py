"""The arithmetic task: generated prompts and demonstrations, levels on both splits, its env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlhf_gym.models import load_tokenizer
from rlhf_gym.rewards import ArithmeticAnswer
from rlhf_gym.tasks import get_task
from rlhf_gym.tasks.arithmetic import (
    TASK,
    generate_demonstrations,
    generate_prompts,
    generate_questions,
)

# level -> (digits of the left operand, digits of the right operand, operators), as documented
DOCUMENTED_LEVELS = {
    1: (1, 1, {"+", "-", "*"}),
    2: (2, 2, {"+", "-"}),
    3: (2, 1, {"*"}),
    4: (3, 3, {"+", "-"}),
    5: (3, 1, {"*"}),
    6: (2, 2, {"*"}),
}


@pytest.fixture(scope="module")
def gold() -> ArithmeticAnswer:
    return ArithmeticAnswer()


def test_task_fields():
    task = get_task("arithmetic")
    assert task is TASK
    assert task.env_id == "rlhf_gym/Arithmetic-v0"
    assert task.gold_reward == task.default_reward == "arithmetic"
    assert task.reward_backbone is None


def test_shipped_files_are_the_generators_output():
    assert TASK.prompts("all") == generate_prompts()
    assert TASK.demonstrations() == generate_demonstrations()


def test_at_least_200_distinct_prompts():
    prompts = TASK.prompts("all")
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    assert all(p == p.strip() and p.startswith("Q: ") and p.endswith(" = ? A:") for p in prompts)


def test_levels_are_as_documented():
    for question in generate_questions():
        left_digits, right_digits, operators = DOCUMENTED_LEVELS[question.level]
        assert len(str(question.left)) == left_digits, question
        assert len(str(question.right)) == right_digits, question
        assert question.symbol in operators, question
    symbols = {q.symbol for q in generate_questions() if q.level == 1}
    assert symbols == {"+", "-", "*"}
    assert any(q.answer < 0 for q in generate_questions())


def test_split_is_disjoint_covering_and_holds_every_level_in_both_parts():
    train, test, every = TASK.prompts("train"), TASK.prompts("test"), TASK.prompts("all")
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(every)
    assert 0.18 <= len(test) / len(every) <= 0.22
    level_of = {q.prompt: q.level for q in generate_questions()}
    for split in (train, test):
        counts = np.bincount([level_of[p] for p in split], minlength=7)[1:]
        assert counts.min() >= 0.8 * counts.max(), counts  # every level, about evenly


def test_demonstrations_cover_the_train_prompts_only():
    prompts = [record["prompt"] for record in TASK.demonstrations()]
    assert set(prompts) == set(TASK.prompts("train"))
    assert all(prompts.count(p) == 2 for p in set(prompts))


def test_every_demonstration_scores_one(gold):
    records = TASK.demonstrations()
    completions = [r["completion"] for r in records]
    scores = gold([r["prompt"] for r in records], completions)
    assert scores.tolist() == [1.0] * len(records)
    assert len(set(completions)) > len(records) // 2  # several phrasings, not one


def test_the_gold_reads_each_prompts_question(gold):
    questions = generate_questions()
    prompts = [q.prompt for q in questions]
    assert gold(prompts, [f" {q.answer}" for q in questions]).min() == 1.0
    assert gold(prompts, [f" {q.answer + 1}" for q in questions]).max() == 0.0


def test_every_prompt_fits_the_budget_of_the_tiny_tokenizer(tiny_tokenizer):
    lengths = [len(tiny_tokenizer(p)["input_ids"]) for p in TASK.prompts("all")]
    assert max(lengths) <= TASK.max_prompt_tokens


def test_env_reward_is_the_gold_score(play, gold):
    env = gym.make("rlhf_gym/Arithmetic-v0", model="tiny").unwrapped
    assert env.task is TASK and isinstance(env.reward_predictor, ArithmeticAnswer)
    for completion, expected in [(" 85", 1.0), (" The answer is 85.", 1.0), (" 85 or 86", 0.0)]:
        reward, info = play(env, "Q: 37 + 48 = ? A:", completion)
        assert info["completion"] == completion and info["eos"]
        assert reward == expected == gold([info["prompt"]], [completion])[0]


@pytest.mark.slow
def test_prompts_and_demonstrations_fit_the_budgets_of_smollm2():
    tokenizer = load_tokenizer("smollm2-135m")
    prompts = [len(tokenizer(p)["input_ids"]) for p in TASK.prompts("all")]
    demos = [len(tokenizer(r["completion"])["input_ids"]) for r in TASK.demonstrations()]
    assert max(prompts) <= TASK.max_prompt_tokens
    assert max(demos) < TASK.max_new_tokens  # room for EOS
