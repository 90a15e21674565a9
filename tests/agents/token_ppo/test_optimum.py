"""On a 6-token vocabulary with 2-token completions, TokenPPO approaches the closed-form optimum.

pi*(y) ∝ pi_ref(y) exp(r(y) / beta) maximises J(pi) = E_pi[r] - beta KL(pi || pi_ref), and
J(pi*) = beta log E_ref[exp(r / beta)]. Everything is computed exactly by enumeration.
"""

from __future__ import annotations

import torch

from agents import TokenPPO, TokenPPOConfig

BETA = 0.2
PROMPT, EOS = 5, 1


def completion_logprobs(model, vocab_size: int) -> dict[tuple[int, ...], float]:
    """log pi(y) of every possible completion: EOS first, or any two tokens."""
    with torch.no_grad():
        first = torch.log_softmax(model(torch.tensor([[PROMPT]])).logits[0, -1], -1)
        pairs = torch.tensor([[PROMPT, t] for t in range(vocab_size)])
        second = torch.log_softmax(model(pairs).logits[:, -1], -1)  # (V, V)
    out = {(EOS,): float(first[EOS])}
    for t1 in range(vocab_size):
        if t1 != EOS:
            for t2 in range(vocab_size):
                out[(t1, t2)] = float(first[t1] + second[t1, t2])
    return out


def reward_of(y: tuple[int, ...], tokenizer, reward) -> float:
    text = tokenizer.decode([t for t in y if t != EOS], skip_special_tokens=True)
    return float(reward(["p"], [text])[0])


def objective(logp: dict, ref: dict, rewards: dict) -> float:
    """J(pi) = E_pi[r] - beta KL(pi || pi_ref), exactly."""
    return sum(
        torch.tensor(lp).exp().item() * (rewards[y] - BETA * (lp - ref[y]))
        for y, lp in logp.items()
    )


def kl(logp: dict, other: dict) -> float:
    return sum(torch.tensor(lp).exp().item() * (lp - other[y]) for y, lp in logp.items())


def test_tokenppo_approaches_kl_regularised_optimum(toy_model, toy_tokenizer, toy_env_kwargs):
    vocab = len(toy_tokenizer)
    reward = toy_env_kwargs["reward_predictor"]
    ref = completion_logprobs(toy_model, vocab)
    rewards = {y: reward_of(y, toy_tokenizer, reward) for y in ref}
    log_z = torch.logsumexp(torch.tensor([ref[y] + rewards[y] / BETA for y in ref]), 0).item()
    optimum = {y: ref[y] + rewards[y] / BETA - log_z for y in ref}
    best = BETA * log_z
    assert abs(objective(optimum, ref, rewards) - best) < 1e-6

    config = TokenPPOConfig(
        total_episodes=64 * 30, batch_size=64, num_mini_batches=2, learning_rate=1e-2,
        kl_coef=BETA, anneal_lr=False, progress_bar=False, seed=0,
    )  # fmt: skip
    trainer = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    kl_to_optimum = [kl(ref, optimum)]
    for _ in range(3):
        for _ in range(10):
            trainer.step()
        kl_to_optimum.append(kl(completion_logprobs(trainer.policy, vocab), optimum))
    learned = completion_logprobs(trainer.policy, vocab)

    assert objective(ref, ref, rewards) < 0.6 * best  # the test has room to show learning
    assert objective(learned, ref, rewards) >= 0.9 * best
    assert kl_to_optimum[1] < kl_to_optimum[0]
    assert kl_to_optimum[-1] < 0.25 * kl_to_optimum[0]
