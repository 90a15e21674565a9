"""The concepts task: generated prompts, a held-out split of unseen combinations, demonstrations
that the gold scorer gives full marks, and the env built from the task."""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlhf_gym.rewards import ConceptCoverage, make_reward_predictor
from rlhf_gym.rewards.writing import parse_concepts
from rlhf_gym.tasks import Task, concepts, get_task


@pytest.fixture(scope="module")
def task() -> Task:
    return get_task("concepts")


def test_task_fields(task):
    assert task.env_id == "rlhf_gym/Concepts-v0"
    assert task.gold_reward == task.default_reward == "concepts"
    assert task.reward_backbone is None


def test_shipped_files_are_the_generators_output(task):
    assert task.prompts("all") == concepts.generate_prompts()
    assert task.demonstrations() == concepts.generate_demonstrations()


def test_at_least_200_distinct_concept_sets(task):
    prompts = task.prompts("all")
    sets = {frozenset(parse_concepts(p)) for p in prompts}
    assert len(prompts) >= 200 and len(sets) == len(prompts)
    assert all(len(parse_concepts(p)) == 3 for p in prompts)


def test_every_prompt_names_three_roles_of_one_scene(task):
    def roles(scene: concepts.Scene) -> list[set[str]]:
        actions, places = {verb for verb, _ in scene.actions}, {place for place, _ in scene.places}
        return [set(scene.agents), actions, set(scene.objects), places]

    for scene in concepts.SCENES:
        words = [word for role in roles(scene) for word in role]
        assert len(words) == len(set(words)), scene  # no word has two roles
    for prompt in task.prompts("all"):
        named = set(parse_concepts(prompt))
        assert any(
            sum(bool(named & role) for role in roles(scene)) == 3 for scene in concepts.SCENES
        ), prompt


def test_split_is_disjoint_and_holds_out_unseen_combinations(task):
    train, test, every = task.prompts("train"), task.prompts("test"), task.prompts("all")
    assert sorted(train + test) == sorted(every)
    assert len(test) == len(every) // 5
    seen = {frozenset(parse_concepts(p)) for p in train}
    assert not seen & {frozenset(parse_concepts(p)) for p in test}


def test_demonstrations_cover_train_prompts_only_and_score_full_marks(task):
    records = task.demonstrations()
    assert {r["prompt"] for r in records} == set(task.prompts("train"))
    scores = ConceptCoverage()([r["prompt"] for r in records], [r["completion"] for r in records])
    assert scores.min() == 1.0


def test_demonstrations_read_like_english():
    example = concepts.ConceptExample(
        "dog", ("catch", "caught"), "frisbee", ("park", "in"), ("park", "dog", "catch"), "{}"
    )
    assert example.sentences() == [
        "The dog caught the frisbee in the park.",
        "In the park, the dog caught the frisbee.",
    ]


def test_prompts_and_demonstrations_fit_the_budgets(task, tiny_tokenizer):
    prompt_lengths = [len(tiny_tokenizer(p)["input_ids"]) for p in task.prompts("all")]
    assert max(prompt_lengths) <= task.max_prompt_tokens
    completions = {r["completion"] for r in task.demonstrations()}
    lengths = [len(tiny_tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions]
    assert max(lengths) + 1 <= task.max_new_tokens  # + EOS


def test_env_reward_is_the_gold_score_of_the_completion(task, play):
    env = gym.make(task.env_id, model="tiny").unwrapped
    assert env.task is task and isinstance(env.reward_predictor, ConceptCoverage)
    prompt = task.prompts("test")[0]
    first, second, _ = parse_concepts(prompt)
    cases = [
        (f" Today the {first} was near the {second} for a while.", 2 / 3),
        (f" {first} {second}", 2 / 3 / 5),
        ("", 0.0),
    ]
    for completion, expected in cases:
        reward, info = play(env, prompt, completion)
        assert info["completion"] == completion and info["eos"]
        assert reward == pytest.approx(expected)
        assert reward == make_reward_predictor(task.gold_reward)([prompt], [completion])[0]
