"""RunConfig: every knob is a field with help text, and each is in the fingerprint of exactly the
stages it changes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rlhf_gym.pipeline.config import STAGE_ORDER, RunConfig
from rlhf_gym.pipeline.run import Pipeline

# a valid value different from the default, for every field that changes some stage
CHANGED = {
    "task": "length",
    "model": "small",
    "agent": "token-ppo,dpo",
    "seed": 1,
    "max_new_tokens": 12,
    "sft": False,
    "sft_epochs": 2,
    "sft_learning_rate": 1e-3,
    "preference_prompts": 100,
    "completions_per_prompt": 4,
    "reward_ensemble_size": 3,
    "reward_ensemble_objective": "min",
    "reward_source": "gold",
    "reward_uncertainty_coef": 0.5,
    "label_temperature": 0.2,
    "human_labels": None,  # needs a file: covered by the preferences stage's own tests
    "turn_reward": None,  # needs a dialogue task: tests/pipeline/test_dialogue.py
    "reward_backbone": "tiny",
    "reward_full_finetune": True,
    "reward_trainable_layers": 1,
    "reward_epochs": 5,
    "reward_learning_rate": 1e-3,
    "reward_batch_size": 16,
    "reward_center_coefficient": 0.0,
    "reward_early_stopping_patience": 5,
    "reward_heldout_fraction": 0.2,
    "iterations": 10,
    "batch_size": 8,
    "num_generations": 2,
    "learning_rate": 1e-4,
    "kl_coef": 0.1,
    "adaptive_kl": True,
    "kl_target": 3.0,
    "kl_horizon": 1_000,
    "kl_budget": 4.5,
    "freeze_layers": 1,
    "temperature": 0.7,
    "missing_eos_penalty": 1.0,
    "grpo_scale_rewards": "none",
    "grpo_loss_type": "dr_grpo",
    "num_ppo_epochs": 2,
    "num_mini_batches": 2,
    "lam": 0.9,
    "vf_coef": 0.2,
    "trpo_target_kl": 0.02,
    "trpo_cg_max_steps": 10,
    "trpo_cg_damping": 0.1,
    "trpo_n_critic_updates": 5,
    "dpo_epochs": 2,
    "dpo_beta": 0.3,
    "dpo_learning_rate": 1e-5,
    "eval_samples_per_prompt": 3,
    "eval_prompts": 10,
    "eval_every": 3,
    "probe_prompts": 8,
    "mixed_precision": "bf16",
}


def _fingerprints(config: RunConfig) -> dict[str, str]:
    stages = Pipeline(config, log=lambda _: None).runner.stages
    return {stage.name: stage.fingerprint for stage in stages}


def test_every_field_has_help_and_a_stage():
    for item in dataclasses.fields(RunConfig):
        assert item.metadata["help"], item.name
        assert item.metadata["stage"] in (*STAGE_ORDER, None), item.name


@pytest.mark.parametrize(
    "name", [f.name for f in dataclasses.fields(RunConfig) if f.metadata["stage"]]
)
def test_changing_a_setting_redoes_its_stage_and_later_ones_only(name, tmp_path):
    if CHANGED[name] is None:
        pytest.skip(f"{name}: no second valid value in this base run")
    base = RunConfig(output_dir=str(tmp_path), model="tiny", agent="token-ppo")
    changed = dataclasses.replace(base, **{name: CHANGED[name]})
    before, after = _fingerprints(base), _fingerprints(changed)
    stage = next(f.metadata["stage"] for f in dataclasses.fields(RunConfig) if f.name == name)
    first = STAGE_ORDER.index(stage)
    kind = {"agent-token-ppo": "agent", "report": "evaluate"}
    for stage_name in before.keys() & after.keys():
        position = STAGE_ORDER.index(kind.get(stage_name, stage_name))
        assert (before[stage_name] != after[stage_name]) == (position >= first), stage_name


def test_where_things_are_written_changes_no_stage(tmp_path):
    base = RunConfig(output_dir=str(tmp_path / "a"), model="tiny")
    moved = dataclasses.replace(base, output_dir=str(tmp_path / "b"), threads=2)
    assert _fingerprints(base) == _fingerprints(moved)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"reward_heldout_fraction": 1.0}, "reward_heldout_fraction must be in"),
        ({"dpo_beta": 0.0}, "dpo_beta must be positive"),
        ({"lam": 1.5}, r"lam must be in \[0, 1\]"),
        ({"missing_eos_penalty": -1.0}, "missing_eos_penalty must be >= 0"),
        ({"reward_ensemble_objective": "max"}, "reward_ensemble_objective must be one of"),
        ({"reward_uncertainty_coef": -0.5}, "reward_uncertainty_coef must be >= 0"),
        ({"reward_ensemble_size": 0}, "reward_ensemble_size must be positive"),
        ({"mixed_precision": "fp8"}, "mixed_precision must be one of"),
        ({"kl_target": 0.0}, "kl_target must be positive"),
        ({"kl_budget": -1.0}, "kl_budget must be positive"),
        ({"grpo_scale_rewards": "std"}, "grpo_scale_rewards must be one of"),
        ({"grpo_loss_type": "bnpo"}, "grpo_loss_type must be one of"),
        ({"adaptive_kl": True, "kl_coef": 0.0}, "kl_coef must be > 0 when adaptive_kl"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(settings, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(model="tiny", **settings)


def test_the_reward_stage_fingerprint_holds_the_resolved_trainer_settings(tmp_path):
    """A default resolved at run time (here the learning rate for the shipped trunk) is in the
    fingerprint, so changing the default redoes the stage instead of reusing a stale model."""

    fingerprint = json.loads(_fingerprints(RunConfig(output_dir=str(tmp_path)))["reward"])
    assert fingerprint["reward_learning_rate"] is None
    assert fingerprint["trainer"]["learning_rate"] == 3e-4
    assert fingerprint["trunk"] == "sentiment-rm"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kl_coef": float("inf")}, "kl_coef must be a finite number"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
        ({"eval_prompts": 0}, "eval_prompts must be positive"),
        ({"eval_prompts": -5}, "eval_prompts must be positive"),
    ],
)
def test_non_finite_settings_and_empty_evaluations_are_refused_up_front(settings, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(model="tiny", **settings)


def test_rewritten_human_labels_change_the_preferences_fingerprint(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"prompt": "p", "chosen": "good", "rejected": "bad"}\n')
    config = RunConfig(output_dir=str(tmp_path / "run"), model="tiny", human_labels=str(labels))
    before = _fingerprints(config)
    labels.write_text('{"prompt": "p", "chosen": "bad", "rejected": "good"}\n')  # same path
    after = _fingerprints(config)
    assert before["sft"] == after["sft"]
    assert before["preferences"] != after["preferences"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_size": "16"}, "batch_size must be int, got '16'"),
        ({"kl_coef": None}, "kl_coef must be float, got None"),
        ({"iterations": True}, "iterations must be int, got True"),
        ({"learning_rate": "fast"}, "learning_rate must be float or null"),
        ({"threads": -1}, "threads must be positive"),
        ({"num_generations": 0}, "num_generations must be positive, got 0"),
    ],
)
def test_wrong_types_from_a_config_file_get_a_one_line_error(tmp_path, settings, message):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model": "tiny", **settings}))
    with pytest.raises(ValueError, match=message):
        RunConfig.from_file(path)


def test_an_int_is_accepted_where_a_float_is_expected():
    assert RunConfig(model="tiny", kl_coef=1).kl_coef == 1
