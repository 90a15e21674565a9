"""On the toy bandit of tests/agents/conftest.py, GRPO, RLOO and REINFORCE each reach 90% of the
closed-form optimum J(pi*) = beta log E_ref[exp(r / beta)] of J(pi) = E[r] - beta KL.

RLOO and REINFORCE put the k1 KL in the reward, so their expected gradient is exactly J's. GRPO
is held to the bar with unscaled advantages (``scale_rewards="none"``, Dr. GRPO): dividing by
the group's std rescales the reward against beta, so with the default scaling GRPO maximises a
different objective (it stops near 88% of J(pi*) here, with a larger KL) — a known property,
checked below as "learns, but to another optimum".
"""

from __future__ import annotations

import pytest

from agents import GRPO, RLOO, GRPOConfig, Reinforce, ReinforceConfig, RLOOConfig

BETA = 0.2
SETTINGS = {
    "total_episodes": 64 * 30, "batch_size": 16, "num_generations": 4, "learning_rate": 1e-2,
    "beta": BETA, "anneal_lr": False, "progress_bar": False,
}  # fmt: skip
AGENTS = {
    "grpo": (GRPO, GRPOConfig(**SETTINGS, scale_rewards="none")),
    "grpo-dapo": (GRPO, GRPOConfig(**SETTINGS, scale_rewards="none", loss_type="dapo")),
    "rloo": (RLOO, RLOOConfig(**SETTINGS)),
    "reinforce": (Reinforce, ReinforceConfig(**SETTINGS)),
}


def train(trainer_class, config, toy_model, toy_tokenizer, toy_env_kwargs):
    trainer = trainer_class(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    trainer.train()
    return trainer.policy


@pytest.mark.parametrize("name", list(AGENTS))
def test_reaches_90_percent_of_the_kl_regularised_optimum(
    name, toy_model, toy_tokenizer, toy_env_kwargs, toy_bandit
):
    bandit = toy_bandit(BETA)
    policy = train(*AGENTS[name], toy_model, toy_tokenizer, toy_env_kwargs)
    learned = bandit.logprobs(policy)
    assert bandit.objective(bandit.ref) < 0.6 * bandit.best  # room to show learning
    assert bandit.objective(learned) >= 0.9 * bandit.best
    assert bandit.kl(learned, bandit.optimum) < 0.25 * bandit.kl(bandit.ref, bandit.optimum)


def test_grpo_with_std_scaling_learns_towards_another_optimum(
    toy_model, toy_tokenizer, toy_env_kwargs, toy_bandit
):
    bandit = toy_bandit(BETA)
    config = GRPOConfig(**SETTINGS)  # scale_rewards="group"
    learned = bandit.logprobs(train(GRPO, config, toy_model, toy_tokenizer, toy_env_kwargs))
    assert bandit.objective(learned) >= 0.8 * bandit.best
    # the scaled reward outweighs beta: the policy moves further from the reference than pi*
    assert bandit.kl(learned, bandit.ref) > bandit.kl(bandit.optimum, bandit.ref)
