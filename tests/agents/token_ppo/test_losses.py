"""The pure PPO functions against hand-computed values and invariants."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.token_ppo.losses import (
    entropy_from_logprobs,
    gae,
    kl_rewards,
    masked_mean,
    masked_var,
    masked_whiten,
    policy_loss,
    value_loss,
)

MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_masked_mean_and_var_ignore_masked_entries():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    assert masked_mean(x, MASK).item() == pytest.approx(3.0)
    assert masked_var(x, MASK).item() == pytest.approx(2.5)  # unbiased var of 1..5
    assert masked_mean(x, MASK, denom=10.0).item() == pytest.approx(1.5)


def test_masked_whiten_hand_computed():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    expected = torch.tensor([[-2.0, -1.0, 0.0], [1.0, 2.0, 0.0]]) / math.sqrt(2.5)
    torch.testing.assert_close(masked_whiten(x, MASK), expected, atol=1e-6, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-100, 100), min_size=6, max_size=6),
    st.integers(2, 6),
)
def test_masked_whiten_gives_mean_zero_std_one(values, valid):
    x = torch.tensor(values).reshape(2, 3)
    mask = (torch.arange(6) < valid).float().reshape(2, 3)
    if masked_var(x, mask) < 1e-3:
        return  # constant inputs have no scale to normalise
    white = masked_whiten(x, mask)
    assert abs(masked_mean(white, mask).item()) < 1e-4
    assert masked_var(white, mask).item() == pytest.approx(1.0, rel=1e-3)
    assert torch.all(white[mask == 0] == 0)


def test_kl_rewards_add_the_env_rewards_where_the_env_gave_them():
    logp = torch.tensor([[-1.0, -2.0, -1.0], [-0.5, -0.5, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -1.0], [-1.0, -0.5, 0.0]])
    # Row 0: a turn reward 0.5 at its first token and the score 2 at its last; row 1: the
    # score -1 at its last token (anything outside the mask is dropped).
    env_rewards = torch.tensor([[0.5, 0.0, 2.0], [0.0, -1.0, 7.0]])
    rewards, non_score = kl_rewards(logp, ref, env_rewards, MASK, beta=0.1)
    torch.testing.assert_close(non_score, torch.tensor([[-0.05, 0.1, 0.0], [-0.05, 0.0, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[0.45, 0.1, 2.0], [-0.05, -1.0, 0.0]]))


def test_gae_hand_computed():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.5, 2.0, 9.0]])
    values = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])
    gamma, lam = 1.0, 0.95
    advantages, returns = gae(rewards, values, MASK, gamma, lam)
    # Episode 0: deltas 0.1, 0.1, 0.7; A2 = .7, A1 = .1 + .95*.7, A0 = .1 + .95*A1.
    a2 = 0.7
    a1 = 0.1 + lam * a2
    a0 = 0.1 + lam * a1
    # Episode 1 ends at t=1: deltas 0.5+0.5-0.4 = 0.6 and 2.0-0.5 = 1.5.
    b1 = 1.5
    b0 = 0.6 + lam * b1
    expected = torch.tensor([[a0, a1, a2], [b0, b1, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values * MASK)


def test_gae_with_lambda_one_is_the_monte_carlo_return():
    rewards = torch.tensor([[0.3, -0.2, 1.0]])
    values = torch.tensor([[5.0, -3.0, 2.0]])
    _, returns = gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[1.1, 0.8, 1.0]]))


def test_policy_loss_at_ratio_one():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 0.0]])
    advantages = torch.tensor([[1.0, -2.0, 0.5], [3.0, 1.0, 7.0]])
    loss, stats = policy_loss(logp, logp.clone(), advantages, MASK, cliprange=0.2)
    assert loss.item() == pytest.approx(-masked_mean(advantages, MASK).item())
    assert stats["approxkl"].item() == 0.0
    assert stats["clipfrac"].item() == 0.0
    assert stats["ratio"].item() == 1.0


def test_policy_loss_clips_large_ratios():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(2.0), math.log(0.5)]])
    advantages = torch.tensor([[1.0, -1.0]])
    loss, stats = policy_loss(new, old, advantages, torch.ones(1, 2), cliprange=0.2)
    # Token 0: max(-2, -1.2) = -1.2; token 1: max(0.5, 0.8) = 0.8.
    assert loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    assert stats["clipfrac"].item() == 1.0
    new.requires_grad_(True)
    loss, _ = policy_loss(new, old, advantages, torch.ones(1, 2), cliprange=0.2)
    loss.backward()
    assert torch.all(new.grad == 0)  # both clipped: no gradient


def test_value_loss_takes_the_larger_of_clipped_and_unclipped():
    old = torch.tensor([[0.0, 0.0]])
    values = torch.tensor([[1.0, 0.1]])
    returns = torch.tensor([[1.0, 1.0]])
    loss, stats = value_loss(values, old, returns, torch.ones(1, 2), cliprange_value=0.2)
    # Token 0: unclipped 0, clipped (0.2 - 1)^2 = 0.64; token 1: both 0.81.
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81) / 2)
    assert stats["clipfrac"].item() == 0.5


def test_entropy_of_uniform_is_log_v():
    assert entropy_from_logprobs(
        torch.log_softmax(torch.zeros(2, 8), -1)
    ).tolist() == pytest.approx([math.log(8)] * 2)


def test_entropy_ignores_a_banned_token():
    # The sampler bans EOS with a -inf logit: it must contribute 0, not nan.
    logits = torch.zeros(2, 9)
    logits[:, 0] = float("-inf")
    entropy = entropy_from_logprobs(torch.log_softmax(logits, -1))
    assert entropy.tolist() == pytest.approx([math.log(8)] * 2)
