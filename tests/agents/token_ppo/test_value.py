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
        hidden = response_hidden(toy_model.base_model, input_ids, attention_mask, prompt_length=2)
    assert hidden.shape == (2, 3, toy_model.config.hidden_size)
    torch.testing.assert_close(hidden, full[:, 1:-1], atol=1e-6, rtol=0)
