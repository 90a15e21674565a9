"""Baselines, advantages, KL estimators and losses of the critic-free agents, against values
worked out by hand in the comments (not by re-running the code under test)."""

from __future__ import annotations

import math

import pytest
import torch

from agents.critic_free.losses import (
    GROUP_STD_EPS,
    aggregate,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
    kl_k3,
    kl_penalised_scores,
    leave_one_out_baseline,
    moving_average,
    sequence_loss,
)

EPS = GROUP_STD_EPS


def test_group_advantages_normalise_within_each_prompts_group():
    rewards = torch.tensor([1.0, 3.0, 0.0, 0.0])  # two prompts, k = 2
    # group 1: mean 2, unbiased std sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2); group 2: all equal
    s = math.sqrt(2) + EPS
    expected = torch.tensor([-1 / s, 1 / s, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(rewards, 2, "group"), expected)
    torch.testing.assert_close(
        group_advantages(rewards, 2, "none"), torch.tensor([-1.0, 1.0, 0.0, 0.0])
    )
    # batch std: mean 1, squared deviations 0 + 4 + 1 + 1 = 6, / 3 -> variance 2
    torch.testing.assert_close(group_advantages(rewards, 2, "batch"), expected)


def test_group_advantages_of_a_group_of_three():
    # mean 3, deviations -2, -1, 3, unbiased variance (4 + 1 + 9) / 2 = 7
    advantages = group_advantages(torch.tensor([1.0, 2.0, 6.0]), 3, "group")
    s = math.sqrt(7) + EPS
    torch.testing.assert_close(advantages, torch.tensor([-2 / s, -1 / s, 3 / s]))


def test_groups_must_divide_the_batch():
    with pytest.raises(ValueError, match="do not split into groups of 4"):
        group_advantages(torch.zeros(6), 4)


def test_leave_one_out_baseline_is_the_mean_of_the_others():
    rewards = torch.tensor([1.0, 2.0, 6.0, 0.0, 4.0, 8.0])  # k = 3; sums 9 and 12
    expected = torch.tensor([(2 + 6) / 2, (1 + 6) / 2, (1 + 2) / 2, 6.0, 4.0, 2.0])
    torch.testing.assert_close(leave_one_out_baseline(rewards, 3), expected)
    # with k = 2 the baseline is simply the other completion's reward
    torch.testing.assert_close(
        leave_one_out_baseline(torch.tensor([5.0, 1.0]), 2), torch.tensor([1.0, 5.0])
    )
    with pytest.raises(ValueError, match="k >= 2"):
        leave_one_out_baseline(torch.tensor([5.0]), 1)


def test_moving_average_starts_at_the_first_value():
    assert moving_average(None, 2.0, 0.9) == 2.0
    assert moving_average(2.0, 4.0, 0.9) == pytest.approx(0.9 * 2 + 0.1 * 4)  # 2.2


def test_k3_is_zero_when_equal_and_non_negative_otherwise():
    # logp = log 0.5, ref = log 0.25: ref - logp = -log 2 -> 0.5 + log 2 - 1
    value = kl_k3(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]))
    torch.testing.assert_close(value, torch.tensor([0.5 + math.log(2) - 1]))
    logp = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kl_k3(logp, logp), torch.zeros_like(logp))
    ref = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
    assert (kl_k3(logp, ref) >= 0).all()


def test_kl_penalised_scores_subtract_beta_times_the_summed_k1():
    scores = torch.tensor([1.0, 2.0])
    logp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    ref = torch.tensor([[-1.5, -1.0], [-1.0, -3.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # k1 per token: [[0.5, -1], [0.5, (3, masked)]] -> sums -0.5 and 0.5
    penalised, kl = kl_penalised_scores(scores, logp, ref, mask, beta=0.1)
    torch.testing.assert_close(kl, torch.tensor([-0.5, 0.5]))
    torch.testing.assert_close(penalised, torch.tensor([1.05, 1.95]))


def test_token_and_sequence_averaging_differ_on_unequal_lengths():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # lengths 3 and 1
    assert aggregate(per_token, mask, "grpo", 3) == pytest.approx((6 / 3 + 4 / 1) / 2)  # 3
    assert aggregate(per_token, mask, "dapo", 3) == pytest.approx(10 / 4)
    assert aggregate(per_token, mask, "dr_grpo", 3) == pytest.approx(10 / (2 * 3))
    equal = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # equal lengths: the first two agree
    full = torch.ones(2, 2)
    assert aggregate(equal, full, "grpo", 2) == aggregate(equal, full, "dapo", 2) == 2.5


def test_clipped_surrogate_takes_the_pessimistic_term():
    ratio = torch.tensor([1.5, 0.5, 0.5, 1.5])
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # max(-A r, -A clip(r, 0.8, 1.2)): max(-1.5, -1.2), max(-0.5, -0.8), max(0.5, 0.8),
    # max(1.5, 1.2)
    loss, regions = clipped_surrogate(ratio, advantages, 0.2)
    torch.testing.assert_close(loss, torch.tensor([-1.2, -0.5, 0.8, 1.5]))
    assert regions["high"].tolist() == [True, False, False, False]
    assert regions["low"].tolist() == [False, False, True, False]


def test_grpo_loss_on_policy_is_the_length_normalised_policy_gradient():
    old = torch.tensor([[-1.0, -2.0], [-0.5, -0.7]])
    logprobs = old.clone().requires_grad_(True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    advantages = torch.tensor([1.0, -2.0])
    loss, stats = grpo_loss(logprobs, old, old, advantages, mask, 0.2, 0.1, "grpo", 2)
    # ratio 1, k3 0: per token -A -> row means -1 and 2 -> loss 0.5
    assert loss.item() == pytest.approx(0.5)
    assert stats["ratio"] == 1.0 and stats["kl"] == 0.0 and stats["clip_region"] == 0.0
    loss.backward()
    # d/dlogp of -A * ratio / length / B: row 0: -1 / 2 / 2, row 1: 2 / 1 / 2, masked: 0
    torch.testing.assert_close(logprobs.grad, torch.tensor([[-0.25, -0.25], [1.0, 0.0]]))


def test_grpo_loss_adds_beta_times_k3():
    logprobs = torch.full((1, 2), math.log(0.5))
    ref = torch.full((1, 2), math.log(0.25))
    loss, stats = grpo_loss(
        logprobs, logprobs, ref, torch.zeros(1), torch.ones(1, 2), 0.2, 0.1, "grpo", 2
    )
    k3 = 0.5 + math.log(2) - 1
    assert loss.item() == pytest.approx(0.1 * k3)
    assert stats["kl"].item() == pytest.approx(k3)


def test_sequence_loss_clips_the_sequence_ratio():
    old = torch.zeros(2, 2)
    logprobs = torch.tensor([[0.1, 0.2], [0.3, 5.0]])  # masked log-ratio sums 0.3 and 0.3
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, stats = sequence_loss(logprobs, old, torch.tensor([1.0, -1.0]), mask, 0.2)
    r = math.exp(0.3)  # 1.35: A > 0 takes the clipped -1.2, A < 0 the unclipped r
    assert loss.item() == pytest.approx((-1.2 + r) / 2)
    assert stats["clip_high"] == 0.5 and stats["clip_low"] == 0.0
    assert stats["ratio"].item() == pytest.approx(r)


def test_sequence_loss_on_policy_is_reinforce():
    old = torch.tensor([[-1.0, -2.0], [-0.5, -0.7]])
    logprobs = old.clone().requires_grad_(True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, _ = sequence_loss(logprobs, old, torch.tensor([2.0, -1.0]), mask, 0.2)
    assert loss.item() == pytest.approx((-2.0 + 1.0) / 2)
    loss.backward()
    # -mean_i A_i grad sum_t logp: every real token of row i gets -A_i / B
    torch.testing.assert_close(logprobs.grad, torch.tensor([[-1.0, -1.0], [0.5, 0.0]]))
