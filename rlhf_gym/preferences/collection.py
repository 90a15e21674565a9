"""Collection: sample K completions per prompt from a policy, then form comparisons to label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Comparison:
    """Two responses to one prompt, waiting for a label (``a`` and ``b`` in display order)."""

    prompt: str
    a: str
    b: str


@torch.no_grad()
def sample_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    k: int = 4,
    *,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
) -> list[list[str]]:
    """``k`` sampled completions for each prompt: a list (one per prompt) of ``k`` strings.

    Prompts are left-padded and generated in batches with the KV cache, sampling from the plain
    distribution (no top-k / top-p). Completions are decoded without special tokens and end at
    the first EOS. The global torch RNG is left untouched.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of completions per prompt, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    repeated = [prompt for prompt in prompts for _ in range(k)]
    texts: list[str] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(repeated), batch_size):
            batch = repeated[start : start + batch_size]
            texts += _generate_batch(model, tokenizer, batch, max_new_tokens, temperature)
    return [texts[i : i + k] for i in range(0, len(texts), k)]


def _generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float,
) -> list[str]:
    pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    encoded = encoded.to(model.device)
    output = model.generate(
        **encoded,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # (B, T_prompt + new)
    new_tokens = output[:, encoded["input_ids"].shape[1] :]
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def pair_up(
    prompts: Sequence[str],
    completions: Sequence[Sequence[str]],
    *,
    pairs_per_prompt: int | None = None,
    seed: int = 0,
) -> list[Comparison]:
    """Comparisons between distinct, non-blank completions of the same prompt.

    All ``k * (k - 1) / 2`` pairs by default, else ``pairs_per_prompt`` drawn without
    replacement; the display order (which one is ``a``) is random, from ``seed``.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completion lists")
    rng = np.random.default_rng(seed)
    comparisons: list[Comparison] = []
    for prompt, group in zip(prompts, completions, strict=True):
        # Identical responses tell a labeler nothing; blank ones cannot form a valid pair.
        distinct = [text for text in dict.fromkeys(group) if text.strip()]
        candidates = list(combinations(distinct, 2))
        if pairs_per_prompt is not None and pairs_per_prompt < len(candidates):
            picked = rng.choice(len(candidates), size=pairs_per_prompt, replace=False)
            candidates = [candidates[i] for i in sorted(picked)]
        for first, second in candidates:
            a, b = (first, second) if rng.random() < 0.5 else (second, first)
            comparisons.append(Comparison(prompt, a, b))
    return comparisons
