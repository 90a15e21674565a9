"""NLPO-style action masking for ``sb3_contrib.MaskablePPO``.

``TopPMaskWrapper`` owns a reference LM and exposes the ``action_masks()`` method MaskablePPO
reads: only the tokens in the reference's top-p nucleus at the current observation are allowed
(Ramamurthy et al. 2022, NLPO). Keeping the model in a wrapper keeps the base env model-free.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

from agents.sb3.models import ModelSpec, check_vocab, resolve_model
from agents.sb3.policy import LMActorCriticMixin
from agents.sb3.reference import ReferenceModel


class MaskableCausalLMPolicy(LMActorCriticMixin, MaskableActorCriticPolicy):
    """:class:`~agents.sb3.policy.CausalLMPolicy` for ``MaskablePPO`` (same policy_kwargs).

    Sampling, the stored log-prob and ``evaluate_actions`` all use the masked distribution.
    """


def top_p_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """(..., V) logits -> (..., V) bool: the smallest set of most likely tokens whose
    probabilities sum to at least ``top_p`` (the most likely token is always allowed)."""
    probs, order = torch.softmax(logits.float(), dim=-1).sort(dim=-1, descending=True)
    mass_before = probs.cumsum(-1) - probs  # probability of the more likely tokens
    keep_sorted = mass_before < top_p
    keep_sorted[..., 0] = True
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


class TopPMaskWrapper(gym.Wrapper):
    """Adds ``action_masks()``: the top-p nucleus of a frozen reference LM at the current obs.

    Args:
        env: a text-generation env (``rlhf_gym/...``).
        model: the reference LM: a name (loaded here) or a ``PreTrainedModel`` sharing the env's
            tokenizer; an instance is used read-only (put it in eval mode), so several wrappers
            can share one.
        top_p: nucleus mass in (0, 1].
        use_kv_cache: extend a KV cache by one token per step instead of a full forward.
    """

    def __init__(
        self, env: gym.Env, model: ModelSpec = "tiny", top_p: float = 0.9, use_kv_cache: bool = True
    ) -> None:
        super().__init__(env)
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        lm = resolve_model(model) if isinstance(model, str) else model
        n_actions = check_vocab(lm, env.action_space, allow_padded_vocab=False)
        self.reference = ReferenceModel(lm, n_actions, use_kv_cache)
        self.top_p = top_p
        self._obs: dict[str, np.ndarray] | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._obs, info = self.env.reset(**kwargs)
        return self._obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """(V,) bool mask of the allowed next tokens."""
        if self._obs is None:
            raise RuntimeError("action_masks() called before reset()")
        ids = torch.as_tensor(self._obs["input_ids"]).unsqueeze(0)  # (1, L)
        mask = torch.as_tensor(self._obs["attention_mask"]).unsqueeze(0)
        logits = self.reference.next_token_logits(ids, mask)[0]  # (V,)
        return top_p_mask(logits, self.top_p).numpy()
