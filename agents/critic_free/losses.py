"""Pure functions of the critic-free updates: baselines, advantages, KL estimators, losses.

B completions in groups of k consecutive rows (B = G * k: G prompts, each repeated k times);
per-token tensors are (B, R) over response positions, ``mask`` 1 on a response's real tokens
(EOS included) and 0 after it. Advantages are per completion: (B,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from agents.token_ppo.losses import identity, masked_mean

GROUP_STD_EPS = 1e-4
"""Added to a group's std before dividing (TRL's value), so a group of equal rewards gives 0."""


def grouped(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """(B,) -> (G, k): the k completions of each prompt on one row."""
    if rewards.shape[0] % k:
        raise ValueError(f"{rewards.shape[0]} rewards do not split into groups of {k}")
    return rewards.view(-1, k)


def group_advantages(
    rewards: torch.Tensor,
    k: int,
    scale_rewards: str = "group",
    total: Callable[[torch.Tensor], torch.Tensor] = identity,
) -> torch.Tensor:
    """GRPO's advantages (B,): ``r - mean(group)``, divided by ``std(group) + eps`` ("group"),
    by the whole batch's std + eps ("batch"), or not at all ("none", Dr. GRPO).

    The std is the unbiased one (TRL's, ``torch.std``). ``total`` sums over data-parallel
    processes, so that "batch" is the global batch's std (groups never straddle processes)."""
    groups = grouped(rewards, k)  # (G, k)
    advantages = groups - groups.mean(1, keepdim=True)  # (G, k)
    if scale_rewards == "group":
        advantages = advantages / (groups.std(1, keepdim=True) + GROUP_STD_EPS)
    elif scale_rewards == "batch":
        advantages = advantages / (global_std(rewards, total) + GROUP_STD_EPS)
    elif scale_rewards != "none":
        raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")
    return advantages.reshape(-1)


def global_std(
    values: torch.Tensor, total: Callable[[torch.Tensor], torch.Tensor] = identity
) -> torch.Tensor:
    """Unbiased std of ``values`` (n,) pooled over the processes ``total`` sums across."""
    count, mean_sum = total(torch.stack([values.new_tensor(values.numel()), values.sum()]))
    mean = mean_sum / count
    squares = total(((values - mean) ** 2).sum())
    return (squares / (count - 1).clamp(min=1)).sqrt()


def leave_one_out_baseline(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """RLOO's baseline (B,): the mean reward of the *other* k - 1 completions of the prompt,
    ``b_i = (sum_j r_j - r_i) / (k - 1)``."""
    if k < 2:
        raise ValueError(f"a leave-one-out baseline needs k >= 2 completions per prompt, got {k}")
    groups = grouped(rewards, k)  # (G, k)
    return ((groups.sum(1, keepdim=True) - groups) / (k - 1)).reshape(-1)


def moving_average(baseline: float | None, value: float, decay: float) -> float:
    """``decay * baseline + (1 - decay) * value``; the first value (``baseline`` None) is taken
    as it is."""
    return value if baseline is None else decay * baseline + (1.0 - decay) * value


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi || pi_ref) for tokens drawn from pi (Schulman 2020):
    ``exp(ref - logp) - (ref - logp) - 1``; >= 0 everywhere, 0 where the two agree. (B, R)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


def kl_penalised_scores(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL in the reward (RLOO, REINFORCE): ``score - beta * sum_t (logp - logp_ref)`` (the k1
    estimator summed over each response). scores (B,), the rest (B, R); returns the penalised
    scores and the per-completion KL, both (B,)."""
    kl = ((logprobs - ref_logprobs) * mask).sum(1)  # (B,)
    return scores - beta * kl, kl


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    max_new_tokens: int,
    token_count: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss (B, R) to a scalar.

    ``token_count`` replaces the mask's sum as ``"dapo"``'s denominator: a data-parallel
    process passes the global count divided by the number of processes, since the gradients
    are averaged over processes.

    * ``"grpo"``: mean over each completion's tokens, then mean over completions (a token of a
      short completion weighs more: GRPO's length bias).
    * ``"dapo"``: mean over all the batch's tokens (every token weighs the same).
    * ``"dr_grpo"``: sum over all tokens / (B * max_new_tokens), a constant normaliser.
    """
    if loss_type == "grpo":
        per_sequence = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B,)
        return per_sequence.mean()
    if loss_type == "dapo":
        return masked_mean(per_token, mask, token_count)
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (per_token.shape[0] * max_new_tokens)
    raise ValueError(f"loss_type must be 'grpo', 'dapo' or 'dr_grpo', got {loss_type!r}")


def clipped_surrogate(
    ratio: torch.Tensor, advantages: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's pessimistic objective as a loss, ``max(-A ratio, -A clip(ratio, 1 +- eps))``,
    elementwise (ratio and advantages broadcast together), and boolean masks of where the clip
    binds: ``low`` (ratio < 1 - eps with A < 0), ``high`` (ratio > 1 + eps with A > 0)."""
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - epsilon, 1.0 + epsilon)
    with torch.no_grad():
        regions = {
            "low": (ratio < 1.0 - epsilon) & (advantages < 0),
            "high": (ratio > 1.0 + epsilon) & (advantages > 0),
        }
    return torch.maximum(unclipped, clipped), regions


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    beta: float,
    loss_type: str,
    max_new_tokens: int,
    token_count: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO's loss: per token the clipped surrogate of the token's ratio with its completion's
    advantage, plus ``beta`` times the k3 KL to the reference, reduced by ``loss_type``
    (``token_count``: see :func:`aggregate`; the statistics divide by it too).

    logprobs, old_logprobs, ref_logprobs, mask (B, R); advantages (B,). The statistics are
    token means over the mask: ``kl`` (k3), ``ratio``, ``clip_low``, ``clip_high``,
    ``clip_region``."""
    ratio = torch.exp(logprobs - old_logprobs)  # (B, R)
    surrogate, regions = clipped_surrogate(ratio, advantages[:, None], epsilon)  # (B, R)
    kl = kl_k3(logprobs, ref_logprobs)  # (B, R)
    per_token = surrogate + beta * kl if beta else surrogate
    loss = aggregate(per_token, mask, loss_type, max_new_tokens, token_count)
    return loss, _token_stats(kl, ratio, regions, mask, token_count)


def sequence_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """RLOO's / REINFORCE's loss: the clipped surrogate of each completion's *sequence* ratio
    ``exp(sum_t (logp - logp_old))``, averaged over completions. On-policy (ratio 1) its
    gradient is REINFORCE's, ``-mean_i A_i grad sum_t log pi(a_t)``.

    logprobs, old_logprobs, mask (B, R); advantages (B,). Statistics are completion means."""
    log_ratio = ((logprobs - old_logprobs) * mask).sum(1)  # (B,)
    ratio = torch.exp(log_ratio)
    surrogate, regions = clipped_surrogate(ratio, advantages, epsilon)  # (B,)
    with torch.no_grad():
        stats = {"ratio": ratio.mean()}
        stats.update({f"clip_{name}": region.float().mean() for name, region in regions.items()})
        stats["clip_region"] = (regions["low"] | regions["high"]).float().mean()
    return surrogate.mean(), stats


def _token_stats(
    kl: torch.Tensor,
    ratio: torch.Tensor,
    regions: dict[str, torch.Tensor],
    mask: torch.Tensor,
    token_count: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    def mean(x: torch.Tensor) -> torch.Tensor:
        return masked_mean(x, mask, token_count)

    with torch.no_grad():
        stats = {"kl": mean(kl), "ratio": mean(ratio)}
        for name, region in regions.items():
            stats[f"clip_{name}"] = mean(region.float())
        stats["clip_region"] = mean((regions["low"] | regions["high"]).float())
    return stats
