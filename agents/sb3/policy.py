"""CausalLMPolicy: a Hugging Face causal LM as the actor-critic of SB3's on-policy algorithms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from transformers import PreTrainedModel

from agents.sb3.lm_cache import CachedCausalLM, NextTokenOutput, full_forward
from agents.sb3.models import (
    ModelSpec,
    check_observation_space,
    check_vocab,
    resolve_model,
    set_attention,
)
from rlhf_gym.models import freeze_lower_layers

Masks = np.ndarray | torch.Tensor | None


class LMActorCriticMixin:
    """The LM actor-critic shared by :class:`CausalLMPolicy` and the maskable variant.

    Action logits are the LM's next-token logits at the newest token (index -1 of the
    left-padded window); the value is a zero-initialised linear head on the LM's last hidden
    state there. The LM is kept in eval mode (dropout off) even while SB3 trains.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        model: ModelSpec = "tiny",
        freeze_layers: int = 0,
        freeze_embeddings: bool | None = None,
        use_kv_cache: bool = True,
        allow_padded_vocab: bool = False,
        attn_implementation: str | None = None,
        use_sde: bool = False,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if use_sde:
            raise ValueError("use_sde=True is for continuous actions; a token policy is discrete")
        check_observation_space(observation_space)
        lm = resolve_model(model)  # the policy's own copy, so its attention may be switched
        set_attention(lm, attn_implementation)
        n_actions = check_vocab(lm, action_space, allow_padded_vocab)
        # net_arch=[] and ortho_init=False: SB3's own networks are not used, the LM replaces them.
        super().__init__(  # type: ignore[call-arg]
            observation_space,
            action_space,
            lr_schedule,
            net_arch=[],
            ortho_init=False,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
        self._init_lm(lm, n_actions, freeze_layers, freeze_embeddings, use_kv_cache)
        self._config = {
            "model": model if isinstance(model, str) else lm,
            "freeze_layers": freeze_layers,
            "freeze_embeddings": freeze_embeddings,
            "use_kv_cache": use_kv_cache,
            "allow_padded_vocab": allow_padded_vocab,
            "attn_implementation": attn_implementation,
        }
        trainable = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = self.optimizer_class(trainable, lr=lr_schedule(1), **self.optimizer_kwargs)

    def _init_lm(
        self, lm: PreTrainedModel, n_actions: int, freeze: int, embeddings: bool | None, cache: bool
    ) -> None:
        self.lm = lm.eval()
        freeze_lower_layers(self.lm, freeze, embeddings)
        self.n_actions = n_actions
        self.value_head = torch.nn.Linear(lm.config.get_text_config().hidden_size, 1)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)
        self.rollout_lm = CachedCausalLM(self.lm) if cache else None

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """Only the parameters the policy trains: frozen LM layers are constants to every SB3
        algorithm. (sb3-contrib's TRPO differentiates its KL with respect to each parameter the
        policy lists, which a frozen one refuses.) ``state_dict`` still holds every weight."""
        for name, parameter in super().named_parameters(prefix, recurse, remove_duplicate):
            if parameter.requires_grad:
                yield name, parameter

    def _build(self, lr_schedule: Schedule) -> None:
        """SB3 builds its networks here; ours need the LM, so ``__init__`` builds them."""

    # ------------------------------------------------------------------ LM outputs
    def _lm_outputs(self, obs: PyTorchObs, allow_cache: bool) -> NextTokenOutput:
        # SB3 hands Box observations over as float32: ids are exact below 2**24, cast back.
        input_ids, mask = obs["input_ids"].long(), obs["attention_mask"].long()
        rollout = allow_cache and not self.training and not torch.is_grad_enabled()
        if rollout and self.rollout_lm is not None:
            return self.rollout_lm.next_token(input_ids, mask)
        out, _ = full_forward(self.lm, input_ids, mask, use_cache=False)
        return out

    def _distribution(self, out: NextTokenOutput, action_masks: Masks) -> Distribution:
        logits = out.logits[:, : self.n_actions]  # (B, V): drops padded rows, if allowed
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        if action_masks is not None:
            if not hasattr(distribution, "apply_masking"):
                raise ValueError("action masks need MaskableCausalLMPolicy (sb3_contrib)")
            distribution.apply_masking(action_masks)
        return distribution

    # ------------------------------------------------------------------ SB3 policy API
    def forward(
        self, obs: PyTorchObs, deterministic: bool = False, action_masks: Masks = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self._lm_outputs(obs, allow_cache=True)
        distribution = self._distribution(out, action_masks)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, self.value_head(out.hidden), distribution.log_prob(actions)

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor, action_masks: Masks = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self._lm_outputs(obs, allow_cache=False)
        distribution = self._distribution(out, action_masks)
        return self.value_head(out.hidden), distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs, action_masks: Masks = None) -> Distribution:
        return self._distribution(self._lm_outputs(obs, allow_cache=True), action_masks)

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        return self.value_head(self._lm_outputs(obs, allow_cache=False).hidden)

    def _predict(
        self, observation: PyTorchObs, deterministic: bool = False, action_masks: Masks = None
    ) -> torch.Tensor:
        distribution = self.get_distribution(observation, action_masks)
        return distribution.get_actions(deterministic=deterministic)

    # ------------------------------------------------------------------ mode and cache
    def train(self, mode: bool = True):
        """Switch modes but keep the LM in eval mode (dropout off); training drops the cache."""
        super().train(mode)
        self.lm.eval()
        if mode:
            self.clear_cache()  # the weights are about to change: cached keys/values go stale
        return self

    def clear_cache(self) -> None:
        if self.rollout_lm is not None:
            self.rollout_lm.cache.clear()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.clear_cache()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            "observation_space": self.observation_space,
            "action_space": self.action_space,
            "lr_schedule": self._dummy_schedule,  # the optimizer's lr is restored from its state
            "optimizer_class": self.optimizer_class,
            "optimizer_kwargs": self.optimizer_kwargs,
            **self._config,
        }


class CausalLMPolicy(LMActorCriticMixin, ActorCriticPolicy):
    """A causal LM as SB3's actor-critic: ``PPO(CausalLMPolicy, env, policy_kwargs={...})``.

    policy_kwargs:
        model: a preset (``"tiny"``), ``"smollm2-135m"``, an HF id, a local path, or a
            ``PreTrainedModel`` (deep-copied: the caller's model is never trained in place).
        freeze_layers: freeze the lower N transformer blocks.
        freeze_embeddings: freeze the input embeddings (tied ones freeze the output head);
            default: exactly when layers are frozen, the rule every agent shares
            (:func:`rlhf_gym.models.freeze_lower_layers`).
        use_kv_cache: extend a per-env-slot KV cache by one token per rollout step.
        allow_padded_vocab: accept a model whose logits have more rows than the action space
            (an embedding matrix padded past its tokenizer); the extra logits are dropped.
        attn_implementation: switch the LM's attention kernel (``"eager"``, ``"sdpa"``...);
            ``None`` keeps the model's own (SDPA for the presets). sb3-contrib's ``TRPO`` needs
            ``"eager"``: its Hessian-vector products differentiate twice, and PyTorch's fused
            SDPA kernels have no double backward.

    A model whose vocabulary does not match the action space raises ``ValueError``.
    """
