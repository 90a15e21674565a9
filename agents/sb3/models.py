"""Resolving, checking and freezing the causal LM behind an SB3 policy."""

from __future__ import annotations

import copy

import torch
from gymnasium import spaces
from transformers import PreTrainedModel

from rlhf_gym.models import load_model

ModelSpec = str | PreTrainedModel


def resolve_model(model: ModelSpec) -> PreTrainedModel:
    """A model the caller does not own: a preset/HF name is loaded, an instance deep-copied."""
    if isinstance(model, str):
        return load_model(model)
    if not isinstance(model, PreTrainedModel):
        raise TypeError(
            f"model must be a name or a transformers PreTrainedModel, got {type(model).__name__}"
        )
    return copy.deepcopy(model)


def model_vocab_size(model: PreTrainedModel) -> int:
    """Rows of the output embedding: the size of the next-token logits."""
    return int(model.get_output_embeddings().weight.shape[0])


def check_vocab(
    model: PreTrainedModel, action_space: spaces.Space, allow_padded_vocab: bool
) -> int:
    """Return the number of actions after checking the model's logits can cover them.

    Some checkpoints pad their embedding matrix past the tokenizer (to a multiple of 64...);
    those extra rows are no token the env accepts. They are only dropped when the caller says
    the model is padded, because a model with a different tokenizer that happens to be larger
    would otherwise pass silently.
    """
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(f"CausalLMPolicy needs a Discrete action space, got {action_space}")
    actions, vocab = int(action_space.n), model_vocab_size(model)
    if vocab == actions or (allow_padded_vocab and vocab > actions):
        return actions
    hint = (
        " (if the model's embedding matrix is padded past its tokenizer, pass "
        "allow_padded_vocab=True)"
        if vocab > actions
        else ""
    )
    raise ValueError(
        f"the model's vocabulary has {vocab} tokens but the env's action space has {actions} "
        f"actions; use a model that shares the env's tokenizer{hint}"
    )


def check_observation_space(observation_space: spaces.Space) -> None:
    keys = {"input_ids", "attention_mask"}
    if not isinstance(observation_space, spaces.Dict) or set(observation_space.spaces) != keys:
        raise TypeError(
            "CausalLMPolicy needs the text env's Dict observation with keys "
            f"{sorted(keys)}, got {observation_space}"
        )


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The stack of transformer blocks: the first ModuleList child of the base model."""
    for child in model.base_model.children():
        if isinstance(child, torch.nn.ModuleList):
            return child
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")


def freeze_lower_layers(model: PreTrainedModel, num_layers: int, embeddings: bool) -> None:
    """Stop gradients in the first ``num_layers`` blocks (and the input embeddings if asked).

    With tied input/output embeddings, freezing the embeddings freezes the output head too.
    """
    layers = decoder_layers(model)
    if not 0 <= num_layers <= len(layers):
        raise ValueError(
            f"freeze_layers={num_layers} is outside 0..{len(layers)} (the model's block count)"
        )
    for layer in layers[:num_layers]:
        layer.requires_grad_(False)
    if embeddings:
        model.get_input_embeddings().requires_grad_(False)
