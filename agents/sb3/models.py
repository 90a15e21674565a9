"""Resolving and checking the causal LM behind an SB3 policy, and choosing its attention kernel."""

from __future__ import annotations

import copy

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


def set_attention(model: PreTrainedModel, attn_implementation: str | None) -> None:
    """Switch ``model``'s attention kernel (``"eager"``, ``"sdpa"``...); ``None`` keeps its own.

    Only call it on a model the policy owns (see :func:`resolve_model`): it changes the model in
    place. Algorithms that differentiate twice (TRPO's Hessian-vector products) need a kernel with
    a double backward; PyTorch's fused SDPA kernels have none, eager attention has one.
    """
    if attn_implementation is None:
        return
    before = model.config._attn_implementation
    model.set_attn_implementation(attn_implementation)
    # transformers only logs a warning when a model cannot switch; a silent no-op would surface
    # much later as TRPO's double-backward error, so refuse here.
    if before != attn_implementation and model.config._attn_implementation == before:
        raise ValueError(
            f"{type(model).__name__} cannot switch its attention from {before!r} to "
            f"{attn_implementation!r}; load it with attn_implementation={attn_implementation!r}"
        )


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
