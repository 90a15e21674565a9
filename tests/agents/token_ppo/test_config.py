"""TokenPPOConfig validation: errors name the bad value and what was expected."""

from __future__ import annotations

import re

import pytest

from agents import TokenPPOConfig


def test_defaults_follow_the_rlhf_recipe():
    config = TokenPPOConfig()
    assert (config.gamma, config.lam, config.cliprange, config.cliprange_value) == (
        1.0, 0.95, 0.2, 0.2,
    )  # fmt: skip
    assert config.adam_epsilon == 1e-5 and config.num_ppo_epochs == 4 and config.vf_coef == 0.1


def test_derived_sizes():
    config = TokenPPOConfig(
        total_episodes=100, batch_size=32, num_mini_batches=2, gradient_accumulation_steps=4
    )
    assert (config.num_iterations, config.minibatch_size, config.micro_batch_size) == (3, 16, 4)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be positive, got 0"),
        ("num_mini_batches", 3, "divisible by num_mini_batches"),
        ("total_episodes", 8, "total_episodes must be >= batch_size (16), got 8"),
        ("temperature", 0.0, "temperature must be positive, got 0.0"),
        ("lam", 1.5, "lam must be in [0, 1], got 1.5"),
        ("value_model", "shared", "value_model must be one of ('head', 'separate'), got 'shared'"),
        ("report_to", ("wandb",), "report_to must be made of"),
        ("kl_coef", -0.1, "kl_coef must be >= 0, got -0.1"),
        ("kl_target", 0.0, "kl_target must be positive, got 0.0"),
        ("max_new_tokens", 0, "max_new_tokens must be positive, got 0"),
        ("learning_rate", float("nan"), "learning_rate must be positive, got nan"),
    ],
)
def test_invalid_values_are_named(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TokenPPOConfig(**{"batch_size": 16, "total_episodes": 64, field: value})
