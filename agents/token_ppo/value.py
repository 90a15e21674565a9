"""The actor-critic: a causal LM whose trunk also feeds a value head, or a separate value trunk.

Both paths run the trunk (``model.base_model``) themselves and apply the LM head only where
log-probs are needed, so one forward pass gives every response token's log-prob and value.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import PreTrainedModel

from agents.lm import position_ids_from_mask


class ValueHead(nn.Module):
    """A linear map from the hidden state to a scalar, initialised to zero: the first value
    estimates are 0 rather than noise that the first advantages would inherit."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)  # (..., H) -> (...)


def run_trunk(
    trunk: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    cache: object | None = None,
) -> tuple[torch.Tensor, object | None]:
    """Last hidden states (B, T, H) and the updated KV cache of a decoder trunk (generation)."""
    out = trunk(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        cache=cache,
        use_cache=True,
    )
    return out.last_hidden_state, out.cache


def response_hidden(
    trunk: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, sources: torch.Tensor
) -> torch.Tensor:
    """Hidden states that predict each action: (B, S) tokens, (B, A) source columns -> (B, A, H).

    ``sources[b, j]`` is the column whose state predicted action ``j`` of row ``b`` at rollout
    (the state whose value is ``V(s_j)``): in a single-turn rollout the column before the
    action, in a dialogue the last real column before it (user turns and padding lie between
    the agent's turns). Positions are ``cumsum(mask) - 1``, as in the rollout. Columns after
    the last source predict nothing and, attention being causal, no source sees them, so they
    are not fed.
    """
    end = int(sources.max()) + 1
    input_ids, attention_mask = input_ids[:, :end], attention_mask[:, :end]  # (B, end)
    positions = position_ids_from_mask(attention_mask)
    hidden = trunk(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False
    ).last_hidden_state  # (B, end, H)
    return hidden.gather(1, sources[..., None].expand(-1, -1, hidden.shape[-1]))


class ActorCritic(nn.Module):
    """Policy LM plus value function; ``value_model`` is ``"head"``, ``"separate"`` or None
    (no critic: :meth:`policy_only`)."""

    def __init__(self, policy: PreTrainedModel, value_model: str | None = "head") -> None:
        super().__init__()
        self.policy = policy
        self.shared = value_model == "head"
        # A separate critic starts from the policy's trunk (a copy: it trains on its own).
        separate = value_model == "separate"
        self.value_trunk = copy.deepcopy(policy.base_model) if separate else None
        self.value_head = None
        if value_model is not None:
            self.value_head = ValueHead(policy.config.get_text_config().hidden_size).to(
                next(policy.parameters()).device
            )

    @classmethod
    def policy_only(cls, policy: PreTrainedModel) -> ActorCritic:
        """A view of ``policy`` with no critic (``value_model=None``): what the critic-free
        agents generate with. It shares the policy's parameters."""
        return cls(policy, value_model=None)

    @property
    def trunk(self) -> nn.Module:
        return self.policy.base_model

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.policy.get_output_embeddings()(hidden)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, sources: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, A, V) and values (B, A) of every action (see :func:`response_hidden`)."""
        hidden = response_hidden(self.trunk, input_ids, attention_mask, sources)
        return self.lm_head(hidden), self._values(hidden, input_ids, attention_mask, sources)

    def values(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, sources: torch.Tensor
    ) -> torch.Tensor:
        """Values (B, A) alone (the separate critic's pass after a rollout)."""
        assert self.value_trunk is not None
        hidden = response_hidden(self.value_trunk, input_ids, attention_mask, sources)
        return self.value_head(hidden)

    def _values(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        sources: torch.Tensor,
    ) -> torch.Tensor:
        if self.shared:
            return self.value_head(hidden)
        return self.values(input_ids, attention_mask, sources)
