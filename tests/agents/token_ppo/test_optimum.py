"""On a 6-token vocabulary with 2-token completions, TokenPPO approaches the closed-form optimum.

pi*(y) ∝ pi_ref(y) exp(r(y) / beta) maximises J(pi) = E_pi[r] - beta KL(pi || pi_ref), and
J(pi*) = beta log E_ref[exp(r / beta)]. Everything is computed exactly by enumeration (the
``toy_bandit`` fixture of tests/agents/conftest.py).
"""

from __future__ import annotations

from agents import TokenPPO, TokenPPOConfig

BETA = 0.2


def test_tokenppo_approaches_kl_regularised_optimum(
    toy_model, toy_tokenizer, toy_env_kwargs, toy_bandit
):
    bandit = toy_bandit(BETA)
    optimum, best = bandit.optimum, bandit.best
    assert abs(bandit.objective(optimum) - best) < 1e-6

    config = TokenPPOConfig(
        total_episodes=64 * 30, batch_size=64, num_mini_batches=2, learning_rate=1e-2,
        kl_coef=BETA, anneal_lr=False, progress_bar=False, seed=0,
    )  # fmt: skip
    trainer = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    kl_to_optimum = [bandit.kl(bandit.ref, optimum)]
    for _ in range(3):
        for _ in range(10):
            trainer.step()
        kl_to_optimum.append(bandit.kl(bandit.logprobs(trainer.policy), optimum))
    learned = bandit.logprobs(trainer.policy)

    assert bandit.objective(bandit.ref) < 0.6 * best  # the test has room to show learning
    assert bandit.objective(learned) >= 0.9 * best
    assert kl_to_optimum[1] < kl_to_optimum[0]
    assert kl_to_optimum[-1] < 0.25 * kl_to_optimum[0]
