"""(prompt, completion) pairs as padded token batches, and the log-probs a model gives them.

Shared by SFT (the loss), DPO (policy and reference log-probs) and evaluation (KL, perplexity).
Batches are right-padded: every sequence starts at position 0, so default position ids are right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import pad_token_id


@dataclass
class PairBatch:
    input_ids: torch.Tensor  # (B, T) prompt + completion (+ EOS), right-padded
    attention_mask: torch.Tensor  # (B, T) 1 on real tokens
    completion_mask: torch.Tensor  # (B, T) 1 on completion tokens (and the EOS), 0 elsewhere

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(
            *(t.to(device) for t in (self.input_ids, self.attention_mask, self.completion_mask))
        )


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    max_length: int,
    append_eos: bool = True,
) -> PairBatch:
    """Tokenise pairs; long prompts lose their start, long completions their end.

    The completion keeps at least half of ``max_length`` when both are long, because the
    completion is what the losses are about.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    pad_id = pad_token_id(tokenizer)
    rows: list[tuple[list[int], list[int]]] = []
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if append_eos and tokenizer.eos_token_id is not None:
            completion_ids = [*completion_ids, tokenizer.eos_token_id]
        completion_ids = completion_ids[: max(max_length - len(prompt_ids), max_length // 2)]
        room = max_length - len(completion_ids)
        prompt_ids = prompt_ids[max(0, len(prompt_ids) - room) :]
        rows.append((prompt_ids, completion_ids))
    return pack_pairs(rows, pad_id)


def pack_pairs(rows: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> PairBatch:
    """Right-padded batch of (prompt ids, completion ids) rows, with the completion mask."""
    width = max(len(p) + len(c) for p, c in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (prompt_ids, completion_ids) in enumerate(rows):
        length = len(prompt_ids) + len(completion_ids)
        input_ids[row, :length] = torch.tensor([*prompt_ids, *completion_ids])
        attention_mask[row, :length] = 1
        completion_mask[row, len(prompt_ids) : length] = 1
    return PairBatch(input_ids, attention_mask, completion_mask)


def completion_token_logprobs(
    model: PreTrainedModel, batch: PairBatch, temperature: float = 1.0
) -> torch.Tensor:
    """Log-prob of every token given its prefix, zero outside the completion, under the
    distribution tempered by ``temperature`` (the logits divided by it).

    Returns (B, T-1): entry t is log p(token t+1 | tokens <= t), masked by the completion mask.
    """
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logits = logits[:, :-1, :].float() / temperature  # (B, T-1, V): predicts tokens 1..T-1
    targets = batch.input_ids[:, 1:]  # (B, T-1)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp * batch.completion_mask[:, 1:]


def sequence_logprobs(model: PreTrainedModel, batch: PairBatch) -> torch.Tensor:
    """Summed log-prob of each completion given its prompt: (B,)."""
    return completion_token_logprobs(model, batch).sum(-1)
