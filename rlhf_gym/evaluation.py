"""Evaluate a policy on held-out prompts: gold and proxy scores, KL, length, diversity, perplexity.

KL and perplexity are computed on the exact sampled tokens (not on re-tokenised text, which for
a byte-level tokenizer can differ from what was sampled): KL is the mean over samples of
``log pi(y|x) - log pi_ref(y|x)``, an unbiased estimate of the sequence-level KL. Sampling at a
temperature T evaluates the policy an agent trained at T: both log-probs are then of the
distributions tempered by T (as in the agent's KL penalty), while perplexity stays that of the
untempered reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import pad_token_id
from rlhf_gym.models.sampling import Sample, sample, sample_completions
from rlhf_gym.rewards import RewardPredictor, check_scores
from rlhf_gym.seeding import derived_seed
from rlhf_gym.training.sequences import completion_token_logprobs, pack_pairs


@dataclass
class PolicyEvaluation:
    gold: float
    proxy: float
    kl: float
    gold_std: float
    """Standard deviation of the samples' gold scores (the unit of a gold gain)."""
    proxy_std: float
    length: float
    distinct_1: float
    distinct_2: float
    perplexity: float
    num_samples: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique word n-grams over all n-grams in ``texts`` (0 when there are none)."""
    grams = [
        tuple(words[i : i + n])
        for words in (t.split() for t in texts)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || base) in nats, for distinct samples: ``log n - (n - 1) / n``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return math.log(n) - (n - 1) / n


def n_matching_kl(kl: float, max_n: int = 64) -> int:
    """The smallest n whose best-of-n KL reaches ``kl`` (capped at ``max_n``)."""
    return next((n for n in range(1, max_n + 1) if best_of_n_kl(n) >= kl), max_n)


@torch.no_grad()
def sample_logprobs(
    model: PreTrainedModel,
    samples: Sequence[Sample],
    pad_id: int,
    batch_size: int = 32,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-prob of each sample's completion tokens under ``model`` (tempered by
    ``temperature``), and their count."""
    sums, counts = [], []
    for start in range(0, len(samples), batch_size):
        rows = [(s.prompt_ids, s.completion_ids) for s in samples[start : start + batch_size]]
        batch = pack_pairs(rows, pad_id)
        logprobs = completion_token_logprobs(model, batch.to(model.device), temperature)
        sums.append(logprobs.sum(-1).cpu())
        counts.append(batch.completion_mask.sum(-1))
    return torch.cat(sums).double().numpy(), torch.cat(counts).double().numpy()


def evaluate_completions(
    prompts: Sequence[str],
    completions: Sequence[str],
    gold: RewardPredictor,
    proxy: RewardPredictor,
    log_ratios: np.ndarray,
    reference_logprobs: np.ndarray,
    token_counts: np.ndarray,
) -> PolicyEvaluation:
    """Aggregate the metrics of one set of sampled completions: ``log_ratios`` is each sample's
    ``log pi(y|x) - log pi_ref(y|x)``, ``reference_logprobs`` its untempered reference log-prob."""
    gold_scores = check_scores(gold(list(prompts), list(completions)), len(prompts), gold)
    proxy_scores = check_scores(proxy(list(prompts), list(completions)), len(prompts), proxy)
    return PolicyEvaluation(
        gold=float(gold_scores.mean()),
        proxy=float(proxy_scores.mean()),
        kl=float(np.mean(log_ratios)),
        gold_std=float(gold_scores.std()),
        proxy_std=float(proxy_scores.std()),
        length=float(token_counts.mean()),
        distinct_1=distinct_n(completions, 1),
        distinct_2=distinct_n(completions, 2),
        perplexity=float(np.exp(-reference_logprobs.sum() / max(token_counts.sum(), 1))),
        num_samples=len(prompts),
    )


def evaluate_policy(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    gold: RewardPredictor,
    proxy: RewardPredictor,
    *,
    samples_per_prompt: int = 2,
    max_new_tokens: int = 24,
    seed: int = 0,
    temperature: float = 1.0,
    progress_bar: bool = True,
) -> tuple[PolicyEvaluation, list[tuple[str, str]]]:
    """Sample from ``policy`` at ``temperature`` on ``prompts`` and measure; also return the
    samples."""
    groups = sample(
        policy, tokenizer, prompts, samples_per_prompt, max_new_tokens=max_new_tokens,
        seed=seed, temperature=temperature, progress_bar=progress_bar,
    )  # fmt: skip
    flat = [s for group in groups for s in group]
    pad_id = pad_token_id(tokenizer)
    policy_logprobs, counts = sample_logprobs(policy, flat, pad_id, temperature=temperature)
    reference_logprobs, _ = sample_logprobs(reference, flat, pad_id)
    tempered_reference = reference_logprobs
    if temperature != 1.0:
        tempered_reference, _ = sample_logprobs(reference, flat, pad_id, temperature=temperature)
    result = evaluate_completions(
        [s.prompt for s in flat],
        [s.completion for s in flat],
        gold,
        proxy,
        policy_logprobs - tempered_reference,
        reference_logprobs,
        counts,
    )
    return result, [(s.prompt, s.completion) for s in flat]


def best_of_n(
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    gold: RewardPredictor,
    proxy: RewardPredictor,
    ns: Sequence[int],
    *,
    max_new_tokens: int = 24,
    seed: int = 0,
    temperature: float = 1.0,
    progress_bar: bool = True,
) -> list[dict[str, float]]:
    """Best-of-n baselines: per prompt, the reference sample the proxy scores highest.

    One draw of ``max(ns)`` samples per prompt serves every n (its first n samples). The KL of
    best-of-n to the reference is the analytic ``log n - (n - 1) / n``.
    """
    if not ns or min(ns) < 1:
        raise ValueError(f"every n must be >= 1, got {list(ns)}")
    largest = max(ns)
    groups = sample_completions(
        reference, tokenizer, prompts, largest,
        max_new_tokens=max_new_tokens, temperature=temperature,
        seed=derived_seed(seed, "best-of-n"),  # not the same draws as evaluate_policy's
        progress_bar=progress_bar,
    )  # fmt: skip
    flat_prompts = [p for p, group in zip(prompts, groups, strict=True) for _ in group]
    flat = [c for group in groups for c in group]
    proxy_scores = check_scores(proxy(flat_prompts, flat), len(flat), proxy)
    proxy_scores = proxy_scores.reshape(len(prompts), largest)

    def gold_of(best: np.ndarray) -> np.ndarray:
        chosen = [groups[i][j] for i, j in enumerate(best)]
        return check_scores(gold(list(prompts), chosen), len(prompts), gold)

    return best_of_n_rows(proxy_scores, ns, gold_of)


def best_of_n_rows(
    proxy_scores: np.ndarray, ns: Sequence[int], gold_of: Callable[[np.ndarray], np.ndarray]
) -> list[dict[str, float]]:
    """Best-of-n's figures for each n from one draw: ``proxy_scores`` (S, N) of N reference
    samples per slot, best-of-n keeping the highest of the first n; ``gold_of(best)`` scores each
    slot's chosen sample (``best``: (S,) indices), so only those are gold-scored. ``gold_std``
    and ``num_samples`` are over the slots, as :class:`PolicyEvaluation`'s (a gain's error)."""
    rows = []
    for n in ns:
        best = proxy_scores[:, :n].argmax(axis=1)  # (S,)
        gold = gold_of(best)  # (S,)
        rows.append({
            "n": n,
            "gold": float(gold.mean()),
            "proxy": float(proxy_scores[:, :n].max(axis=1).mean()),
            "kl": best_of_n_kl(n),
            "gold_std": float(gold.std()),
            "num_samples": len(gold),
        })  # fmt: skip
    return rows
