"""Pure functions of the PPO update: rewards, GAE, masked whitening, clipped losses, stats.

All tensors are (B, R): B episodes, R actions (the agent's tokens; in a dialogue, those of all
its turns in order); ``mask`` is 1 on the episode's actions (EOS included) and 0 after them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def identity(x: torch.Tensor) -> torch.Tensor:
    """The single-process ``total`` of a statistic: itself."""
    return x


def masked_mean(x: torch.Tensor, mask: torch.Tensor, denom: float | None = None) -> torch.Tensor:
    """Mean of ``x`` over ``mask``; ``denom`` replaces the mask's sum (gradient accumulation)."""
    total = (x * mask).sum()
    return total / (mask.sum().clamp(min=1) if denom is None else denom)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of ``x`` over ``mask``."""
    mean = masked_mean(x, mask)
    count = mask.sum()
    return masked_mean((x - mean) ** 2, mask) * count / (count - 1).clamp(min=1)


def masked_whiten(
    x: torch.Tensor,
    mask: torch.Tensor,
    eps: float = 1e-8,
    total: Callable[[torch.Tensor], torch.Tensor] = identity,
) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries (unbiased variance); entries outside the
    mask become 0. ``total`` sums a tensor over data-parallel processes, so that mean and
    variance are the global batch's."""
    sums = total(torch.stack([(x * mask).sum(), mask.sum()]))
    count = sums[1].clamp(min=1)
    mean = sums[0] / count
    squares = total(((x - mean) ** 2 * mask).sum())
    var = squares / (count - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def kl_rewards(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    env_rewards: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards ``-beta * (logp - logp_ref)`` plus the env's reward for each token
    (the score at the last token; in a dialogue, also any turn rewards at turn ends).

    env_rewards (B, R). Returns (rewards, non_score_rewards), both (B, R) and 0 outside the mask.
    """
    non_score = -beta * (logprobs - ref_logprobs) * mask
    return non_score + env_rewards * mask, non_score


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens; returns (advantages, returns).

    The episode ends at the mask's last token (no bootstrap past a scored completion).
    """
    values = values * mask
    rewards = rewards * mask
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(last_gae)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last_gae = delta + gamma * lam * last_gae
        advantages[:, t] = last_gae
    advantages = advantages * mask
    return advantages, advantages + values


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
    denom: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss and its statistics (approx-KL, clip fraction, ratio), all token
    means over ``mask``, or shares of a larger batch's mean when ``denom`` is given."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask, denom)
    with torch.no_grad():
        stats = {
            "approxkl": 0.5 * masked_mean(log_ratio**2, mask, denom),
            "clipfrac": masked_mean((clipped > unclipped).float(), mask, denom),
            "ratio": masked_mean(ratio, mask, denom),
        }
    return loss, stats


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
    denom: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped value loss ``0.5 * max((v - R)^2, (v_clip - R)^2)`` and its clip fraction
    (means, or shares of a larger batch's mean when ``denom`` is given)."""
    clipped_values = old_values + (values - old_values).clamp(-cliprange_value, cliprange_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_error, clipped_error), mask, denom)
    with torch.no_grad():
        stats = {"clipfrac": masked_mean((clipped_error > unclipped_error).float(), mask, denom)}
    return loss, stats


def entropy_from_logprobs(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of each categorical distribution given its log-probs: (..., V) -> (...).

    A banned token has log-prob ``-inf``; clamping it to a finite value makes its term
    ``0 * finite = 0`` instead of ``0 * -inf = nan``.
    """
    return -(logp.exp() * logp.clamp(min=torch.finfo(logp.dtype).min)).sum(-1)
