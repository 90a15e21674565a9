"""Next-token outputs of a causal LM over left-padded windows, with a KV cache per env slot.

SB3 steps every env one token at a time, so the observation of a slot at step t+1 is its window
at step t shifted left by ``k`` with ``k`` new real tokens at the end: ``k = 1`` for the agent's
token, ``k = 1 + len(info["user_token_ids"])`` when a dialogue turn ends and the user's reply
follows it. While that holds, one forward of the ``k`` new tokens over the cached keys/values
gives the same logits as a full forward of the window; any slot whose observation does not
extend its cache (a new episode, a different batch) falls back to a full forward.

Every slot's cache keeps exactly the window length ``L``: the env never lets an episode exceed
``L`` tokens, so the ``k`` oldest cached columns are padding when ``k`` tokens arrive, and are
dropped. Dropping masked columns changes nothing in attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel

from agents.lm import position_ids_from_mask

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values, each (B, H, L, D)


@dataclass
class NextTokenOutput:
    logits: torch.Tensor  # (B, V) float32
    hidden: torch.Tensor  # (B, E): the last layer's hidden state at the newest token


def full_forward(
    model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, use_cache: bool
) -> tuple[NextTokenOutput, KV | None]:
    """One forward over whole left-padded windows (B, L); positions from the mask.

    Without a cache to fill, columns that are padding in every row are dropped first: they
    change nothing in attention, and SB3's training minibatches are mostly such padding.
    """
    if not use_cache:
        input_ids, attention_mask = trim_left_padding(input_ids, attention_mask)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=use_cache,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    kv = _cache_tensors(out.cache) if use_cache else None
    return _next_token_output(out), kv


def trim_left_padding(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the leading columns that are padding in every row: (B, L) -> (B, L')."""
    real_columns = attention_mask.any(0).nonzero()
    first = int(real_columns[0]) if real_columns.numel() else attention_mask.shape[1] - 1
    return input_ids[:, first:], attention_mask[:, first:]


def _next_token_output(out) -> NextTokenOutput:
    return NextTokenOutput(out.logits[:, -1].float(), out.hidden_states[-1][:, -1])


def _cache_tensors(cache: DynamicCache) -> KV:
    return [(layer.keys, layer.values) for layer in cache.layers]


class SlotKVCache:
    """Cached keys/values of the last window seen in each env slot (no-grad rollouts only)."""

    def __init__(self) -> None:
        self.input_ids: torch.Tensor | None = None  # (B, L) long
        self.attention_mask: torch.Tensor | None = None  # (B, L) long
        self.kv: KV = []

    def clear(self) -> None:
        self.input_ids, self.attention_mask, self.kv = None, None, []

    def shifts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B,) long: ``k`` where the slot's window is its cached window shifted by ``k`` with
        ``k`` new real tokens at the end (the padding it drops included), else 0."""
        batch = input_ids.shape[0]
        shifts = torch.zeros(batch, dtype=torch.long, device=input_ids.device)
        if self.input_ids is None or self.input_ids.shape != input_ids.shape:
            return shifts
        new = attention_mask.sum(-1) - self.attention_mask.sum(-1)  # (B,) new real tokens
        for k in new[new > 0].unique().tolist():
            same_ids = (input_ids[:, :-k] == self.input_ids[:, k:]).all(-1)
            same_mask = (attention_mask[:, :-k] == self.attention_mask[:, k:]).all(-1)
            oldest_are_padding = (self.attention_mask[:, :k] == 0).all(-1)
            extends = (new == k) & same_ids & same_mask & oldest_are_padding
            shifts = torch.where(extends, k, shifts)
        return shifts

    def store(
        self, rows: torch.Tensor, kv: KV, input_ids: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """Write the windows and keys/values of ``rows`` (indices into the batch of ``input_ids``).

        Rows that do not cover the whole batch are only written after ``extends`` found this cache
        to have the batch's shape.
        """
        if rows.numel() == input_ids.shape[0]:
            self.input_ids, self.attention_mask = input_ids.clone(), mask.clone()
            self.kv = list(kv)
            return
        self.input_ids[rows], self.attention_mask[rows] = input_ids[rows], mask[rows]
        for (keys, values), (new_keys, new_values) in zip(self.kv, kv, strict=True):
            keys[rows], values[rows] = new_keys, new_values


class CachedCausalLM:
    """Next-token logits and hidden states of ``model``, reusing a per-slot KV cache."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.cache = SlotKVCache()

    @torch.no_grad()
    def next_token(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> NextTokenOutput:
        """Outputs at the newest token of each window (B, L) -> logits (B, V), hidden (B, E)."""
        shifts = self.cache.shifts(input_ids, attention_mask)
        outputs: list[tuple[torch.Tensor, NextTokenOutput]] = []
        for k in shifts[shifts > 0].unique().tolist():
            rows = (shifts == k).nonzero().squeeze(-1)
            outputs.append((rows, self._extend(rows, k, input_ids, attention_mask)))
        rows = (shifts == 0).nonzero().squeeze(-1)
        if rows.numel():
            out, kv = full_forward(self.model, input_ids[rows], attention_mask[rows], True)
            self.cache.store(rows, kv, input_ids, attention_mask)
            outputs.append((rows, out))
        return _merge(outputs, input_ids.shape[0])

    def _extend(
        self, rows: torch.Tensor, k: int, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> NextTokenOutput:
        """Feed only the ``k`` newest tokens of ``rows`` over their cached windows."""
        old_mask = self.cache.attention_mask[rows]  # (R, L)
        every_row = rows.numel() == input_ids.shape[0]
        kv = self.cache.kv if every_row else [(k_[rows], v[rows]) for k_, v in self.cache.kv]
        past = DynamicCache(ddp_cache_data=kv)
        first = attention_mask[rows].sum(-1, keepdim=True) - k  # (R, 1) the first new position
        out = self.model(
            input_ids=input_ids[rows, -k:],
            attention_mask=torch.cat([old_mask, old_mask.new_ones(len(rows), k)], dim=1),
            position_ids=first + torch.arange(k, device=first.device),
            cache=past,
            use_cache=True,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        # Drop the k oldest columns (padding, see the module docstring) to keep length L.
        kv = [(keys[:, :, k:], values[:, :, k:]) for keys, values in _cache_tensors(out.cache)]
        self.cache.store(rows, kv, input_ids, attention_mask)
        return _next_token_output(out)


def _merge(parts: list[tuple[torch.Tensor, NextTokenOutput]], batch: int) -> NextTokenOutput:
    if len(parts) == 1:
        return parts[0][1]
    first = parts[0][1]
    logits = first.logits.new_empty(batch, first.logits.shape[-1])
    hidden = first.hidden.new_empty(batch, first.hidden.shape[-1])
    for rows, out in parts:
        logits[rows], hidden[rows] = out.logits, out.hidden
    return NextTokenOutput(logits, hidden)
