"""Batched generation with a KV cache that steps the vector env with every batch of tokens.

The env is the source of truth for episode ends and rewards; the sampler checks that the env
ends exactly the episodes it expects (EOS or the length budget), so the two never disagree
about which tokens belong to a response.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, StaticCache

from agents.lm import position_ids_from_mask, token_logprobs
from agents.token_ppo.value import ActorCritic, response_hidden, run_trunk
from rlhf_gym.envs import TextGenerationVectorEnv


@dataclass
class Rollout:
    """One batch of finished episodes, padded to ``P + R`` tokens."""

    input_ids: torch.Tensor  # (B, P + R) left-padded prompt, response, pad after its end
    attention_mask: torch.Tensor  # (B, P + R) 0 on padding and after the response's end
    prompt_length: int  # P
    response_mask: torch.Tensor  # (B, R) float, 1 on response tokens (EOS included)
    logprobs: torch.Tensor  # (B, R) sampling log-probs (temperature and EOS ban applied)
    values: torch.Tensor | None  # (B, R) from the shared value head during generation
    scores: torch.Tensor  # (B,) env reward: score minus the missing-EOS penalty
    raw_scores: np.ndarray  # (B,) the reward predictor's own score
    eos: np.ndarray  # (B,) bool: the response ended with EOS
    prompts: list[str]
    completions: list[str]
    seconds: float  # wall time of generation + env stepping

    @property
    def responses(self) -> torch.Tensor:
        return self.input_ids[:, self.prompt_length :]  # (B, R)

    def rows(self, index: slice) -> Rollout:
        """The episodes ``index`` (e.g. one data-parallel process's share) as a rollout."""
        return Rollout(
            input_ids=self.input_ids[index],
            attention_mask=self.attention_mask[index],
            prompt_length=self.prompt_length,
            response_mask=self.response_mask[index],
            logprobs=self.logprobs[index],
            values=None if self.values is None else self.values[index],
            scores=self.scores[index],
            raw_scores=self.raw_scores[index],
            eos=self.eos[index],
            prompts=self.prompts[index],
            completions=self.completions[index],
            seconds=self.seconds,
        )


@dataclass
class Sampler:
    """Turns logits into the sampling distribution: temperature, optionally EOS never drawn."""

    temperature: float
    banned_token: int | None = None

    def logits(self, raw: torch.Tensor) -> torch.Tensor:
        scaled = raw.float() if self.temperature == 1.0 else raw.float() / self.temperature
        if self.banned_token is None:
            return scaled
        banned = torch.tensor([self.banned_token], device=raw.device)
        return scaled.index_fill(-1, banned, float("-inf"))

    def logprobs(self, raw: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return token_logprobs(self.logits(raw), tokens)

    def sample(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One token per row of raw logits (B, V) and its log-prob, both (B,).

        Inverse-CDF sampling: one uniform per row against the cumulative probabilities draws
        exactly from ``p`` and needs B random numbers instead of the B * V of Gumbel-max
        (9x faster than ``torch.multinomial`` at SmolLM2's 49k vocabulary on CPU). A token of
        probability 0 (the banned EOS) is never drawn: ``right=True`` skips flat CDF steps.
        """
        logp = torch.log_softmax(self.logits(raw), -1)  # (B, V)
        cdf = logp.exp().cumsum(-1)  # (B, V)
        threshold = torch.rand_like(cdf[:, -1:]) * cdf[:, -1:]  # (B, 1), below the total mass
        token = torch.searchsorted(cdf, threshold, right=True).squeeze(-1)  # (B,)
        # Rounding can put the threshold on the total (p ~ 2^-24): take the likeliest token.
        token = torch.where(token < cdf.shape[-1], token, logp.argmax(-1))
        return token, logp.gather(-1, token[:, None]).squeeze(-1)


def prompt_batch(observation: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The left-padded prompts of a reset observation, without all-padding columns: (B, P)."""
    ids = torch.as_tensor(observation["input_ids"], dtype=torch.long)
    mask = torch.as_tensor(observation["attention_mask"], dtype=torch.long)
    first = int(mask.any(0).long().argmax())
    return ids[:, first:], mask[:, first:]


def response_logits(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
) -> torch.Tensor:
    """Raw logits (B, R, V) that predict each response token of ``input_ids`` (B, P + R), in
    one forward pass with the rollout's positions (see ``response_hidden``)."""
    hidden = response_hidden(model.base_model, input_ids, attention_mask, prompt_length)
    return model.get_output_embeddings()(hidden)


class ResponseLogits(nn.Module):
    """:func:`response_logits` of ``model`` as a module's forward, for DistributedDataParallel
    (whose gradient all-reduce hooks run through ``forward``)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
    ) -> torch.Tensor:
        return response_logits(self.model, input_ids, attention_mask, prompt_length)


def response_logprobs(model: PreTrainedModel, rollout: Rollout, sampler: Sampler) -> torch.Tensor:
    """Log-probs (B, R) of the rollout's response tokens under ``model`` and ``sampler``'s
    distribution (temperature, banned EOS); positions past a response's end are not masked."""
    raw = response_logits(model, rollout.input_ids, rollout.attention_mask, rollout.prompt_length)
    return sampler.logprobs(raw, rollout.responses)


def merge_env_kwargs(given: dict[str, Any], tokenizer: Any, **settings: Any) -> dict[str, Any]:
    """The env's keyword arguments: ``given`` with the agent's tokenizer and every setting that
    is not None (e.g. ``max_new_tokens``); one given in both with different values is an error."""
    kwargs = {**given, "tokenizer": tokenizer}
    for name, value in settings.items():
        if value is not None:
            if name in given and given[name] != value:
                raise ValueError(
                    f"{name} is {given[name]!r} in env_kwargs but {value!r} in the config"
                )
            kwargs[name] = value
    return kwargs


@torch.no_grad()
def generate(
    actor: ActorCritic | PreTrainedModel,
    env: TextGenerationVectorEnv,
    observation: dict[str, np.ndarray],
    sampler: Sampler,
    static_cache: bool | None = None,
) -> Rollout:
    """Sample one response per env slot token by token, stepping ``env`` with each token.

    ``actor`` is TokenPPO's actor-critic (its shared value head's values are read on the way)
    or a plain causal LM (the critic-free agents; ``Rollout.values`` is then None).
    ``static_cache``: preallocate the KV cache for the whole response (transformers'
    ``StaticCache``) instead of growing it by a token each step; None does so on CUDA, where
    it saves a reallocation per token, and not on CPU, where attending over the unfilled rest
    of the buffer costs more than the copies.
    """
    start = time.perf_counter()
    if not isinstance(actor, ActorCritic):
        actor = ActorCritic.policy_only(actor)
    device = next(actor.parameters()).device
    prompt_ids, prompt_mask = (t.to(device) for t in prompt_batch(observation))
    batch, budget = prompt_ids.shape[0], env.max_new_tokens
    eos_id, pad_id = env.eos_token_id, env.pad_token_id
    tokens = torch.full((batch, budget), pad_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(batch, budget, device=device)
    values = torch.zeros(batch, budget, device=device)
    lengths = np.zeros(batch, dtype=np.int64)
    outcome = _Outcome(batch)
    mask, step_ids = prompt_mask, prompt_ids
    positions = position_ids_from_mask(prompt_mask)
    if static_cache if static_cache is not None else device.type == "cuda":
        cache = StaticCache(config=actor.policy.config, max_cache_len=prompt_ids.shape[1] + budget)
    else:
        cache = None
    for t in range(budget):
        hidden, cache = run_trunk(actor.trunk, step_ids, mask, positions, cache)
        raw = actor.lm_head(hidden[:, -1])  # (B, V)
        token, logprob = sampler.sample(raw)  # (B,), (B,)
        live = torch.as_tensor(~outcome.done, device=device)
        tokens[:, t] = torch.where(live, token, pad_id)
        logprobs[:, t] = logprob * live
        if actor.shared:
            values[:, t] = actor.value_head(hidden[:, -1]) * live
        lengths += ~outcome.done
        chosen = token.cpu().numpy()
        outcome.record(env.step(chosen), chosen, t, budget, eos_id)
        if outcome.done.all():
            break
        mask = torch.cat([mask, mask.new_ones(batch, 1)], 1)
        step_ids, positions = token[:, None], positions[:, -1:] + 1
    lengths_t = torch.as_tensor(lengths, device=device)
    response_mask = torch.arange(budget, device=device)[None] < lengths_t[:, None]  # (B, R)
    return Rollout(
        input_ids=torch.cat([prompt_ids, tokens], 1),
        attention_mask=torch.cat([prompt_mask, response_mask.long()], 1),
        prompt_length=prompt_ids.shape[1],
        response_mask=response_mask.float(),
        logprobs=logprobs,
        values=values if actor.shared else None,
        scores=torch.as_tensor(outcome.rewards, dtype=torch.float32, device=device),
        raw_scores=outcome.raw_scores,
        eos=outcome.eos,
        prompts=outcome.prompts,
        completions=outcome.completions,
        seconds=time.perf_counter() - start,
    )


class _Outcome:
    """What the env reported for each slot, checked against the sampler's own bookkeeping."""

    def __init__(self, batch: int) -> None:
        self.done = np.zeros(batch, dtype=bool)
        self.rewards = np.zeros(batch, dtype=np.float32)
        self.raw_scores = np.zeros(batch, dtype=np.float32)
        self.eos = np.zeros(batch, dtype=bool)
        self.prompts = [""] * batch
        self.completions = [""] * batch

    def record(self, step: tuple, tokens: np.ndarray, t: int, budget: int, eos_id: int) -> None:
        _, rewards, terminated, truncated, info = step
        ended = terminated | truncated
        expected = ~self.done & ((tokens == eos_id) | (t == budget - 1))
        if not np.array_equal(ended, expected):
            raise RuntimeError(
                f"the env ended episodes {np.flatnonzero(ended).tolist()} at response token {t} "
                f"but the sampler expected {np.flatnonzero(expected).tolist()}; is the env in "
                "autoreset_mode='disabled' with the sampler's length budget?"
            )
        for i in np.flatnonzero(ended):
            self.rewards[i] = rewards[i]
            self.raw_scores[i] = info["score"][i]
            self.eos[i] = info["eos"][i]
            self.prompts[i] = info["prompt"][i]
            self.completions[i] = info["completion"][i]
        self.done |= ended
