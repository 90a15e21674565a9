"""TokenPPOConfig validation: errors name the bad value and what was expected."""

from __future__ import annotations

import pytest

from agents import TokenPPOConfig


def test_defaults_follow_the_rlhf_recipe():
    config = TokenPPOConfig()
    assert (config.gamma, config.lam, config.cliprange, config.cliprange_value) == (
        1.0, 0.95, 0.2, 0.2,
    )  # fmt: skip
    assert config.adam_eps == 1e-5 and config.ppo_epochs == 4 and config.vf_coef == 0.1


def test_derived_sizes():
    config = TokenPPOConfig(
        total_episodes=100, batch_size=32, num_minibatches=2, gradient_accumulation_steps=4
    )
    assert (config.num_iterations, config.minibatch_size, config.micro_batch_size) == (3, 16, 4)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size=0"),
        ("num_minibatches", 3, "divisible by num_minibatches"),
        ("total_episodes", 8, "total_episodes=8 is invalid; expected >= batch_size"),
        ("temperature", 0.0, "temperature=0.0"),
        ("lam", 1.5, "lam=1.5"),
        ("value_model", "shared", "value_model='shared'"),
        ("report_to", ("wandb",), "report_to"),
        ("kl_coef", -0.1, "kl_coef=-0.1"),
        ("max_new_tokens", 0, "max_new_tokens=0"),
    ],
)
def test_invalid_values_are_named(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TokenPPOConfig(**{"batch_size": 16, "total_episodes": 64, field: value})
