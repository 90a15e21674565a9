"""Language-model helpers shared by the agents: positions under left padding, token log-probs,
freezing the lower layers."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from rlhf_gym.models import decoder_layers


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


def freeze_lower_layers(model: PreTrainedModel, num_layers: int, embeddings: bool) -> None:
    """Stop gradients in the lowest ``num_layers`` decoder layers and, if ``embeddings``, in the
    input embeddings.

    With tied input/output embeddings (SmolLM2, the presets) that freezes the LM head too.
    """
    layers = decoder_layers(model)
    if not 0 <= num_layers <= len(layers):
        raise ValueError(
            f"freeze_layers={num_layers} is outside 0..{len(layers)} (the model's layer count)"
        )
    for layer in layers[:num_layers]:
        layer.requires_grad_(False)
    if embeddings:
        model.get_input_embeddings().requires_grad_(False)
