"""``rlhf-gym run`` on a dialogue task: preferences over whole conversations, a reward model on
their transcripts, the native agents on the dialogue env, and a held-out evaluation that plays
the test secrets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlhf_gym.dialogue import reward_texts
from rlhf_gym.dialogue.guess_number import GuessNumberUser
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.dialogue import best_of_n_conversations
from rlhf_gym.pipeline.run import Pipeline
from rlhf_gym.preferences.io import read_json_lines, read_jsonl
from rlhf_gym.tasks import get_task

FAST = {
    "task": "guess_number",
    "model": "tiny",
    "preference_prompts": 6,
    "completions_per_prompt": 3,
    "reward_epochs": 1,
    "iterations": 2,
    "batch_size": 4,
    "num_generations": 2,
    "eval_samples_per_prompt": 6,
    "max_new_tokens": 4,
    "eval_every": 1,
    "probe_prompts": 4,
}
AGENTS = ("token-ppo", "grpo")


@pytest.fixture(scope="module")
def dialogue_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dialogue")
    config = RunConfig(output_dir=str(out), agent=",".join(AGENTS), **FAST)
    Pipeline(config, log=lambda _: None).run()
    return out


def _summary(run, stage: str) -> dict:
    return json.loads((run / stage / "DONE.json").read_text())["summary"]


def test_a_preset_without_demonstrations_skips_sft(dialogue_run):
    assert _summary(dialogue_run, "sft")["skipped"]


def test_conversation_pairs_and_their_text_pairs_line_up(dialogue_run):
    pairs = read_jsonl(dialogue_run / "preferences" / "pairs.jsonl")
    records = read_json_lines(dialogue_run / "preferences" / "conversations.jsonl")
    assert len(pairs) == len(records) == _summary(dialogue_run, "preferences")["pairs"] > 0
    for pair, record in zip(pairs, records, strict=True):
        chosen = reward_texts([*record["prompt"], *record["chosen"]])
        rejected = reward_texts([*record["prompt"], *record["rejected"]])
        assert (pair.prompt, pair.chosen) == chosen and (pair.prompt, pair.rejected) == rejected
        assert record["chosen"][0]["role"] == "assistant"  # TRL's conversational format
    summary = _summary(dialogue_run, "preferences")
    assert summary["conversations"] == 6 * 3


def test_the_reward_model_is_compared_with_the_bound_of_its_held_out_pairs(dialogue_run):
    reward = _summary(dialogue_run, "reward")
    assert reward["bayes_bound"]["pairs"] == reward["heldout_pairs"] > 0
    assert reward["heldout_prompts"] == 1  # whole openings held out


def test_held_out_evaluation_plays_every_policy_against_the_same_test_secrets(dialogue_run):
    evaluation = _summary(dialogue_run, "evaluate")
    assert evaluation["held_out_conversations"] == 6
    policies = evaluation["policies"]
    played = {"before (reference)", *(f"after ({a})" for a in AGENTS)}
    assert played | {"best-of-16 (reference)"} <= set(policies)
    assert all(name in played or name.startswith("best-of-") for name in policies)
    assert policies["before (reference)"]["kl"] == pytest.approx(0.0, abs=1e-4)
    for result in (policies[name] for name in played):
        assert 0.0 <= result["success_rate"] <= 1.0 and 1.0 <= result["mean_turns"] <= 6.0
        assert result["num_samples"] == 6
    details = json.loads((dialogue_run / "evaluate" / "details.json").read_text())
    columns = {"prompt", "before", *(f"after ({a})" for a in AGENTS)}
    assert details["samples"] and all(set(row) == columns for row in details["samples"])
    assert len(details["calibration"]["gold"]) == 6 * (1 + len(AGENTS))
    report = (dialogue_run / "report" / "report.md").read_text()
    assert "success_rate" in report and "mean_turns" in report


@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_is_probed_on_held_out_conversations(dialogue_run, agent):
    points = json.loads((dialogue_run / f"agent-{agent}" / "heldout_curve.json").read_text())
    assert [p["iteration"] for p in points] == [0, 1, 2]
    assert points[0]["kl"] == pytest.approx(0.0, abs=1e-4)
    curve = json.loads((dialogue_run / f"agent-{agent}" / "curve.json").read_text())
    assert len(curve) == 2 and all(0.0 <= p["gold"] <= 1.0 for p in curve)


@pytest.mark.parametrize("agent", ["dpo", "sb3-ppo"])
def test_agents_that_do_not_train_on_conversations_are_refused_before_anything_runs(
    tmp_path, agent
):
    config = RunConfig(output_dir=str(tmp_path / "run"), agent=agent, **FAST)
    with pytest.raises(ValueError, match="dialogue"):
        Pipeline(config, log=lambda _: None).run()
    assert not (tmp_path / "run" / "sft").exists()


def test_human_labels_are_refused_for_a_dialogue_task(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(ValueError, match="whole conversations"):
        RunConfig(output_dir=str(tmp_path), human_labels=str(labels), **FAST)


def test_a_turn_reward_reaches_the_agent_but_not_gold(tmp_path):
    settings = {**FAST, "iterations": 1, "eval_every": None}
    config = RunConfig(
        output_dir=str(tmp_path), agent="token-ppo", turn_reward="guess-number-off-rules",
        reward_source="gold", **settings,
    )  # fmt: skip
    Pipeline(config, log=lambda _: None).run()
    (point,) = json.loads((tmp_path / "agent-token-ppo" / "curve.json").read_text())
    # the env's reward: gold plus -0.1 per turn without a number; the logged gold is gold alone
    assert point["proxy"] < point["gold"] + 1e-6


def test_a_turn_reward_needs_a_dialogue_task_and_a_known_name(tmp_path):
    with pytest.raises(ValueError, match="needs a dialogue task"):
        RunConfig(output_dir=str(tmp_path), task="sentiment", turn_reward="guess-number-off-rules")
    config = RunConfig(output_dir=str(tmp_path / "run"), turn_reward="no-such", **FAST)
    with pytest.raises(ValueError, match="no-such"):
        Pipeline(config, log=lambda _: None).run()
    assert not (tmp_path / "run" / "sft").exists()


def test_best_of_n_draws_each_slot_s_conversations_against_one_secret(
    tiny_model, tiny_tokenizer, monkeypatch
):
    secrets: list[int] = []
    start = GuessNumberUser.start

    def recording_start(self, rng, split):
        simulator = start(self, rng, split)
        secrets.append(simulator.secret)
        return simulator

    monkeypatch.setattr(GuessNumberUser, "start", recording_start)
    task = get_task("guess_number")
    rows = best_of_n_conversations(
        tiny_model, tiny_tokenizer, task, task.prompts("test") * 3, lambda p, c: np.zeros(len(p)),
        [1, 4], max_new_tokens=3, seed=0,
    )  # fmt: skip
    runs = [secrets[i : i + 4] for i in range(0, 12, 4)]
    assert all(len(set(run)) == 1 for run in runs)  # one secret per slot
    assert all(run[0] in (3, 8, 14, 19) for run in runs)  # held-out secrets
    assert [r["n"] for r in rows] == [1, 4] and rows[0]["kl"] == 0.0
