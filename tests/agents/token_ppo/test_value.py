"""The actor-critic's trunk helpers."""

from __future__ import annotations

import torch

from agents.lm import position_ids_from_mask
from agents.token_ppo.value import response_hidden


def test_response_hidden_equals_the_full_forward_without_the_last_token(toy_model):
    # response_hidden does not feed the last token: causal attention means no kept state sees it.
    input_ids = torch.tensor([[0, 5, 2, 3, 4], [5, 5, 3, 1, 0]])  # (B, P + R), P = 2
    attention_mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    with torch.no_grad():
        full = toy_model.base_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
        ).last_hidden_state
        sources = torch.tensor([[1, 2, 3], [1, 2, 3]])  # column P - 1 + j predicts action j
        hidden = response_hidden(toy_model.base_model, input_ids, attention_mask, sources)
    assert hidden.shape == (2, 3, toy_model.config.hidden_size)
    torch.testing.assert_close(hidden, full[:, 1:-1], atol=1e-6, rtol=0)


def test_response_hidden_gathers_each_action_s_source_column_past_holes(toy_model):
    # A dialogue row: padding (mask 0) between turns; the sources skip it, and the columns
    # after the last source are never fed (so they cannot change anything).
    input_ids = torch.tensor([[5, 2, 3, 0, 4, 2, 7, 7]])
    attention_mask = torch.tensor([[1, 1, 1, 0, 1, 1, 1, 1]])
    sources = torch.tensor([[1, 2, 5]])
    with torch.no_grad():
        full = toy_model.base_model(
            input_ids=input_ids[:, :6],
            attention_mask=attention_mask[:, :6],
            position_ids=position_ids_from_mask(attention_mask[:, :6]),
        ).last_hidden_state
        hidden = response_hidden(toy_model.base_model, input_ids, attention_mask, sources)
    torch.testing.assert_close(hidden, full[:, [1, 2, 5]], atol=1e-6, rtol=0)
