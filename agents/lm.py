"""Language-model helpers shared by the agents: positions under left padding, token log-probs."""

from __future__ import annotations

import torch


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions of real tokens under left padding: ``cumsum(mask) - 1``, clamped at 0.

    (B, T) -> (B, T). Rollout and training must both use this so they see identical positions.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def token_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Log-prob of each chosen token: logits (..., V), tokens (...) -> (...).

    The temperature divides the logits, as it must in both the policy's and the reference's
    log-probs when sampling used it.
    """
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)
