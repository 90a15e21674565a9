"""The frozen reference model that the KL penalty and the NLPO masks compare against."""

from __future__ import annotations

import copy

import torch
from transformers import PreTrainedModel

from agents.lm import token_logprobs
from agents.sb3.lm_cache import CachedCausalLM, full_forward


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A frozen eval-mode copy of ``model`` that shares its frozen parameters.

    Parameters that do not require grad (the frozen lower layers) can never diverge from the
    policy's, so the copy reuses their tensors instead of duplicating them; only the trainable
    part is copied.
    """
    shared = {id(p): p for p in model.parameters() if not p.requires_grad}
    reference = copy.deepcopy(model, memo=shared)
    for parameter in reference.parameters():
        if id(parameter) not in shared:
            parameter.requires_grad_(False)
    return reference.eval()


class ReferenceModel:
    """A frozen LM that scores actions at left-padded observations, with its own KV cache.

    Build it from a policy with :meth:`from_policy` before training starts (then it is the
    initial policy), or from any LM that shares the env's tokenizer.
    """

    def __init__(self, model: PreTrainedModel, n_actions: int, use_kv_cache: bool = True) -> None:
        self.model = model
        self.n_actions = n_actions
        self._cached = CachedCausalLM(model) if use_kv_cache else None

    @classmethod
    def from_policy(cls, policy, use_kv_cache: bool = True) -> ReferenceModel:
        """The policy's LM as it is now, frozen (frozen layers shared, not copied)."""
        return cls(frozen_copy(policy.lm), policy.n_actions, use_kv_cache)

    @torch.no_grad()
    def next_token_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, L) windows -> (B, V) logits at the newest token (cached when the window extends)."""
        input_ids, attention_mask = input_ids.long(), attention_mask.long()
        if self._cached is not None:
            out = self._cached.next_token(input_ids, attention_mask)
        else:
            out, _ = full_forward(self.model, input_ids, attention_mask, use_cache=False)
        return out.logits[:, : self.n_actions]

    def logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """(B,) log pi_ref(action | window)."""
        logits = self.next_token_logits(input_ids, attention_mask)
        return token_logprobs(logits, actions.to(logits.device).reshape(-1))
