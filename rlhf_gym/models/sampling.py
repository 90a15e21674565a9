"""Sampling completions from a causal LM: batched, KV-cached, reproducible from a seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models.loading import pad_token_id
from rlhf_gym.seeding import derived_seed


@dataclass(frozen=True)
class Sample:
    """One sampled completion with the exact tokens behind it."""

    prompt: str
    completion: str
    """Decoded without special tokens, up to the first EOS."""
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    """The sampled tokens up to and including the first EOS (if one was sampled)."""


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    k: int = 4,
    *,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    batch_size: int = 32,
    seed: int = 0,
    progress_bar: bool = True,
) -> list[list[Sample]]:
    """``k`` sampled completions for each prompt: a list (one per prompt) of ``k`` samples.

    Prompts are left-padded and generated in batches with the KV cache, sampling from the plain
    distribution (no top-k / top-p), from the ``"sampling"`` stream of ``seed``
    (:mod:`rlhf_gym.seeding`). The global torch RNG is left untouched.
    """
    if k < 1:
        raise ValueError(f"k must be a positive number of completions per prompt, got {k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    repeated = [prompt for prompt in prompts for _ in range(k)]
    samples: list[Sample] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, "sampling"))
        starts = range(0, len(repeated), batch_size)
        for start in tqdm(starts, desc="sampling", unit="batch", disable=not progress_bar):
            batch = repeated[start : start + batch_size]
            samples += _generate_batch(model, tokenizer, batch, max_new_tokens, temperature)
    return [samples[i : i + k] for i in range(0, len(samples), k)]


def sample_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    k: int = 4,
    **kwargs: Any,
) -> list[list[str]]:
    """The texts of :func:`sample` (same arguments): one list of ``k`` strings per prompt."""
    groups = sample(model, tokenizer, prompts, k, **kwargs)
    return [[s.completion for s in group] for group in groups]


def _generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float,
) -> list[Sample]:
    pad_id = pad_token_id(tokenizer)
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
    width = encoded["input_ids"].shape[1]
    samples = []
    for row, prompt in enumerate(prompts):
        prompt_ids = encoded["input_ids"][row][encoded["attention_mask"][row].bool()].tolist()
        new_ids = output[row, width:].tolist()
        if tokenizer.eos_token_id in new_ids:  # what follows the first EOS is padding
            new_ids = new_ids[: new_ids.index(tokenizer.eos_token_id) + 1]
        text = tokenizer.decode(new_ids, skip_special_tokens=True)
        samples.append(Sample(prompt, text, tuple(prompt_ids), tuple(new_ids)))
    return samples
