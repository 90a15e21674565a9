"""Critic-free configs: TRL's names and defaults, derived sizes, errors that name the bad value."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from agents import GRPOConfig, ReinforceConfig, RLOOConfig


@pytest.mark.parametrize("config_class", [GRPOConfig, RLOOConfig, ReinforceConfig])
def test_every_field_has_help_text(config_class):
    assert all(f.metadata.get("help") for f in fields(config_class))


def test_derived_sizes():
    config = GRPOConfig(total_episodes=100, batch_size=3, num_generations=4)
    assert (config.episodes_per_step, config.total_steps) == (12, 8)


def test_scale_rewards_accepts_trls_booleans():
    assert GRPOConfig(scale_rewards=True).scale_rewards == "group"
    assert GRPOConfig(scale_rewards=False).scale_rewards == "none"


def test_reinforce_needs_no_groups_but_rloo_and_grpo_do():
    assert ReinforceConfig(num_generations=1).num_generations == 1
    for config_class in (GRPOConfig, RLOOConfig):
        with pytest.raises(ValueError, match=re.escape("num_generations must be >= 2, got 1")):
            config_class(num_generations=1)


@pytest.mark.parametrize(
    ("config_class", "field", "value", "message"),
    [
        (GRPOConfig, "batch_size", 0, "batch_size must be positive, got 0"),
        (GRPOConfig, "num_mini_batches", 3, "batch_size must be divisible by num_mini_batches"),
        (GRPOConfig, "total_episodes", 7, "total_episodes must be >= batch_size * num_generations"),
        (GRPOConfig, "loss_type", "bnpo", "loss_type must be one of ('grpo', 'dr_grpo', 'dapo')"),
        (GRPOConfig, "scale_rewards", "std", "scale_rewards must be one of"),
        (GRPOConfig, "beta", -0.1, "beta must be >= 0, got -0.1"),
        (RLOOConfig, "kl_horizon", 0, "kl_horizon must be positive, got 0"),
        (GRPOConfig, "num_iterations", 0, "num_iterations must be positive, got 0"),
        (RLOOConfig, "epsilon", -1.0, "epsilon must be >= 0, got -1.0"),
        (RLOOConfig, "report_to", ("wandb",), "report_to must be made of"),
        (RLOOConfig, "temperature", float("nan"), "temperature must be positive, got nan"),
        (ReinforceConfig, "baseline_decay", 1.0, "baseline_decay must be in [0, 1), got 1.0"),
        (ReinforceConfig, "max_new_tokens", 0, "max_new_tokens must be positive, got 0"),
    ],
)
def test_invalid_values_are_named(config_class, field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config_class(**{"batch_size": 4, "num_generations": 2, "total_episodes": 64, field: value})


def test_an_adaptive_beta_must_start_above_zero():
    with pytest.raises(ValueError, match=re.escape("beta must be > 0 when adaptive_kl, got 0.0")):
        RLOOConfig(adaptive_kl=True, beta=0.0)
    assert RLOOConfig(adaptive_kl=False, beta=0.0).beta == 0.0  # fixed at 0: no KL term
