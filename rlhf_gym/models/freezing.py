"""What a policy trains: the one rule every agent (TokenPPO, SB3, DPO) applies.

Agents compared in a benchmark must train the same parameters, so none of them decides this on
its own: each calls :func:`freeze_lower_layers` with the run's ``freeze_layers``.
"""

from __future__ import annotations

import torch

from rlhf_gym.models.loading import transformer_layers


def freeze_lower_layers(
    model: torch.nn.Module, num_layers: int, embeddings: bool | None = None
) -> int:
    """Stop gradients in the lowest ``num_layers`` transformer layers and, by default, in the input
    embeddings whenever any layer is frozen: they only feed the frozen layers. With tied
    input/output embeddings (SmolLM2, the presets) that freezes the LM head too.

    ``embeddings`` overrides the default (``True`` freezes them even with no frozen layer).
    Returns the number of parameters left trainable.
    """
    layers = transformer_layers(model)
    if not 0 <= num_layers <= len(layers):
        raise ValueError(
            f"freeze_layers={num_layers} is outside 0..{len(layers)} (the model's layer count)"
        )
    for layer in layers[:num_layers]:
        layer.requires_grad_(False)
    if num_layers > 0 if embeddings is None else embeddings:
        model.get_input_embeddings().requires_grad_(False)
    return trainable_parameter_count(model)


def trainable_parameter_count(model: torch.nn.Module) -> int:
    """Parameters that receive gradients (a tied weight counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
