"""The per-slot KV cache gives the logits and hidden states of a full forward."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.sb3.lm_cache import CachedCausalLM, full_forward, trim_left_padding

WINDOW = 10


def _windows(lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), WINDOW, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, WINDOW - length :] = torch.randint(3, 1000, (length,), generator=generator)
        mask[row, WINDOW - length :] = 1
    return ids, mask


def _append(ids: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor):
    """Each row's window after ``tokens`` (B,) or (B, k): k new real tokens at the end."""
    tokens = tokens.reshape(len(ids), -1)
    k = tokens.shape[1]
    new_ids = torch.cat([ids[:, k:], tokens], dim=1)
    new_mask = torch.cat([mask[:, k:], torch.ones_like(mask[:, :k])], dim=1)
    return new_ids, new_mask


@settings(max_examples=10, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    resets=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=3),
    user_turns=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(1, 3))),
    seed=st.integers(0, 2**16),
)
def test_cached_outputs_equal_full_forward(tiny_model, lengths, resets, user_turns, seed):
    ids, mask = _windows(lengths, seed)
    cached = CachedCausalLM(tiny_model)
    for step in range(5):
        out = cached.next_token(ids, mask)
        full, _ = full_forward(tiny_model, ids, mask, use_cache=False)
        torch.testing.assert_close(out.logits, full.logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.hidden, full.hidden, atol=1e-5, rtol=0)
        new_ids, new_mask = _append(ids, mask, torch.randint(3, 1000, (len(lengths),)))
        for turn_step, row, reply in user_turns:  # a dialogue turn ends: the user's tokens too
            if turn_step == step and row < len(lengths):
                tokens = torch.randint(3, 1000, (1, 1 + reply))
                longer_ids, longer_mask = _append(ids[row : row + 1], mask[row : row + 1], tokens)
                new_ids[row], new_mask[row] = longer_ids[0], longer_mask[0]
        ids, mask = new_ids, new_mask
        for reset_step, row in resets:  # a new episode in one slot: that slot must recompute
            if reset_step == step and row < len(lengths):
                new_ids, new_mask = _windows([3], seed + step)
                ids[row], mask[row] = new_ids[0], new_mask[0]


def test_the_cache_extends_only_windows_shifted_by_their_new_tokens(tiny_model):
    ids, mask = _windows([2, 3], seed=0)
    cached = CachedCausalLM(tiny_model)
    cached.next_token(ids, mask)
    next_ids, next_mask = _append(ids, mask, torch.tensor([7, 8]))
    assert cached.cache.shifts(next_ids, next_mask).tolist() == [1, 1]
    turn_ids, turn_mask = _append(ids, mask, torch.tensor([[7, 5, 6], [8, 5, 6]]))
    assert cached.cache.shifts(turn_ids, turn_mask).tolist() == [3, 3]  # token + user's turn
    next_ids[1, -2] = 9  # history changed in slot 1
    assert cached.cache.shifts(next_ids, next_mask).tolist() == [1, 0]
    assert not cached.cache.shifts(next_ids[:1], next_mask[:1]).any()  # other batch size
    assert not cached.cache.shifts(ids, mask).any()  # same window again: nothing new


def test_full_window_cannot_be_extended(tiny_model):
    ids, mask = _windows([WINDOW], seed=1)  # no padding left to drop
    cached = CachedCausalLM(tiny_model)
    cached.next_token(ids, mask)
    next_ids, next_mask = _append(ids, mask, torch.tensor([5]))
    assert not cached.cache.shifts(next_ids, next_mask).any()


def test_trimming_all_padding_columns_keeps_the_outputs(tiny_model):
    ids, mask = _windows([2, 4], seed=3)
    trimmed_ids, trimmed_mask = trim_left_padding(ids, mask)
    assert torch.equal(trimmed_ids, ids[:, -4:]) and torch.equal(trimmed_mask, mask[:, -4:])
    out, _ = full_forward(tiny_model, ids, mask, use_cache=False)  # trims internally
    untrimmed = tiny_model(
        input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)
    ).logits[:, -1]
    torch.testing.assert_close(out.logits, untrimmed, atol=1e-5, rtol=0)
