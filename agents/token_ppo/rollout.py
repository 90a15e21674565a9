"""Batched generation with a KV cache that steps the vector env with every batch of tokens
(single-turn responses or whole conversations).

The env is the source of truth for episode ends and rewards; the sampler checks that the env
ends exactly the episodes it expects (EOS or the length budget), so the two never disagree
about which tokens belong to a response.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, StaticCache

from agents.lm import position_ids_from_mask, token_logprobs
from agents.token_ppo.value import ActorCritic, response_hidden, run_trunk
from rlhf_gym.dialogue import Message, reward_texts
from rlhf_gym.envs import DialogueVectorEnv, TextGenerationVectorEnv
from rlhf_gym.rewards import conversation_scores


@dataclass
class Rollout:
    """One batch of finished episodes: the token sequences as the policy read them and, for
    each action (a token the agent wrote), the column that predicted it, its log-prob, value
    and env reward.

    Single-turn: a sequence is the left-padded prompt (``P`` columns), then the response;
    action ``j`` sits at column ``P + j`` and column ``P - 1 + j`` predicts it. Dialogue: the
    user's turns follow the agent's in the sequence, and where another row read more tokens at
    a step, a row has padding (mask 0) in the middle; ``sources`` says which column predicted
    each action. Every (B, A) tensor is 0 (or padding) after the row's last action.
    """

    input_ids: torch.Tensor  # (B, S) every token of every episode, as fed to the policy
    attention_mask: torch.Tensor  # (B, S) 1 on real tokens, 0 on padding and after the end
    prompt_length: int  # P: the columns of the left-padded prompts (openings)
    sources: torch.Tensor  # (B, A) long: the column whose state predicted each action
    responses: torch.Tensor  # (B, A) the actions, padding after the last
    response_mask: torch.Tensor  # (B, A) float, 1 on actions (every turn's EOS included)
    logprobs: torch.Tensor  # (B, A) sampling log-probs (temperature and EOS ban applied)
    values: torch.Tensor | None  # (B, A) from the shared value head during generation
    rewards: torch.Tensor  # (B, A) the env's reward for each action (score, turn rewards)
    raw_scores: np.ndarray  # (B,) the reward predictor's own score of the episode
    eos: np.ndarray  # (B,) bool: every turn (the response) ended with EOS
    prompts: list[str]
    completions: list[str]  # a dialogue's: the rest of its transcript (``reward_texts``)
    conversations: list[list[Message]] | None  # a dialogue's messages; None if single-turn
    seconds: float  # wall time of generation + env stepping

    @property
    def scores(self) -> torch.Tensor:
        """Each episode's return from the env (B,): the score minus missing-EOS penalties,
        plus any per-turn rewards."""
        return self.rewards.sum(1)

    def rows(self, index: slice) -> Rollout:
        """The episodes ``index`` (e.g. one data-parallel process's share) as a rollout."""
        return Rollout(
            input_ids=self.input_ids[index],
            attention_mask=self.attention_mask[index],
            prompt_length=self.prompt_length,
            sources=self.sources[index],
            responses=self.responses[index],
            response_mask=self.response_mask[index],
            logprobs=self.logprobs[index],
            values=None if self.values is None else self.values[index],
            rewards=self.rewards[index],
            raw_scores=self.raw_scores[index],
            eos=self.eos[index],
            prompts=self.prompts[index],
            completions=self.completions[index],
            conversations=None if self.conversations is None else self.conversations[index],
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
        # Checked first: argmax costs a third of a tiny model's sampling step on CPU.
        overshot = token == cdf.shape[-1]
        if overshot.any():
            token = torch.where(overshot, logp.argmax(-1), token)
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
    sources: torch.Tensor,
) -> torch.Tensor:
    """Raw logits (B, A, V) that predict each action, from the sequences (B, S) and the
    actions' source columns (B, A), in one forward pass (see ``response_hidden``)."""
    hidden = response_hidden(model.base_model, input_ids, attention_mask, sources)
    return model.get_output_embeddings()(hidden)


class ResponseLogits(nn.Module):
    """:func:`response_logits` of ``model`` as a module's forward, for DistributedDataParallel
    (whose gradient all-reduce hooks run through ``forward``)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, sources: torch.Tensor
    ) -> torch.Tensor:
        return response_logits(self.model, input_ids, attention_mask, sources)


def response_logprobs(model: PreTrainedModel, rollout: Rollout, sampler: Sampler) -> torch.Tensor:
    """Log-probs (B, A) of the rollout's actions under ``model`` and ``sampler``'s
    distribution (temperature, banned EOS); positions past a row's last action are not masked."""
    raw = response_logits(model, rollout.input_ids, rollout.attention_mask, rollout.sources)
    return sampler.logprobs(raw, rollout.responses)


def episode_scores(predictor: Callable[..., Any], rollout: Rollout) -> np.ndarray:
    """``predictor``'s scores (B,) of the rollout's episodes: of its conversations in a dialogue
    (:func:`rlhf_gym.rewards.conversation_scores`), else of its ``(prompts, completions)``."""
    if rollout.conversations is not None:
        return conversation_scores(predictor, rollout.conversations)
    return np.asarray(predictor(rollout.prompts, rollout.completions), dtype=np.float64)


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
    """Sample every slot's episode token by token, stepping ``env`` with each batch of tokens.

    ``env`` is a :class:`TextGenerationVectorEnv` (one response per slot) or a
    :class:`DialogueVectorEnv` (a conversation per slot: when a turn ends, the user's reply,
    ``info["user_token_ids"]``, extends the KV cache after the agent's token; rows that have
    nothing more to read at a step read padding, so every row advances one action a step).
    ``actor`` is TokenPPO's actor-critic (its shared value head's values are read on the way)
    or a plain causal LM (the critic-free agents; ``Rollout.values`` is then None).
    ``static_cache``: preallocate the KV cache for the whole response (transformers'
    ``StaticCache``) instead of growing it by a token each step; None does so on CUDA, where
    it saves a reallocation per token, and not on CPU, where attending over the unfilled rest
    of the buffer costs more than the copies. Dialogues always grow it (their length is not
    known in advance).
    """
    start = time.perf_counter()
    if not isinstance(actor, ActorCritic):
        actor = ActorCritic.policy_only(actor)
    device = next(actor.parameters()).device
    prompt_ids, prompt_mask = (t.to(device) for t in prompt_batch(observation))
    batch, prompt_length = prompt_ids.shape
    outcome = _Outcome(env, batch)
    steps = outcome.max_actions
    responses = torch.full((batch, steps), env.pad_token_id, dtype=torch.long, device=device)
    sources = torch.zeros(batch, steps, dtype=torch.long, device=device)
    logprobs = torch.zeros(batch, steps, device=device)
    values = torch.zeros(batch, steps, device=device)
    rewards = torch.zeros(batch, steps, device=device)
    fed_ids, fed_mask = [prompt_ids], [prompt_mask]
    mask = prompt_mask  # (B, S so far): everything fed
    newest = torch.full((batch,), prompt_length - 1, device=device)  # each row's last real column
    rows = torch.arange(batch, device=device)
    cache = None
    wants_static = static_cache if static_cache is not None else device.type == "cuda"
    if wants_static and not outcome.dialogue:
        cache = StaticCache(
            config=actor.policy.config, max_cache_len=prompt_length + env.max_new_tokens
        )
    for t in range(steps):
        feed_ids = fed_ids[-1]
        positions = position_ids_from_mask(mask)[:, -feed_ids.shape[1] :]
        hidden, cache = run_trunk(actor.trunk, feed_ids, mask, positions, cache)
        offset = (newest - (mask.shape[1] - feed_ids.shape[1])).clamp(min=0)  # finished rows: any
        state = hidden[rows, offset]  # (B, H)
        token, logprob = sampler.sample(actor.lm_head(state))  # (B,), (B,)
        live = torch.as_tensor(~outcome.done, device=device)
        responses[:, t] = torch.where(live, token, env.pad_token_id)
        logprobs[:, t] = logprob * live
        sources[:, t] = newest
        if actor.shared:
            values[:, t] = actor.value_head(state) * live
        chosen = token.cpu().numpy()
        step_rewards, user_turns = outcome.record(env.step(chosen), chosen, t)
        rewards[:, t] = torch.as_tensor(step_rewards, device=device)
        next_ids, next_mask = _next_feed(chosen, live.cpu().numpy(), user_turns, env.pad_token_id)
        fed_ids.append(next_ids.to(device))
        fed_mask.append(next_mask.to(device))
        newest = torch.where(
            live, mask.shape[1] + next_mask.to(device).sum(1) - 1, newest
        )  # right-padded feed: a row's tokens come first
        mask = torch.cat([mask, fed_mask[-1]], 1)
        if outcome.done.all():
            break
    lengths = torch.as_tensor(outcome.actions, device=device)
    response_mask = torch.arange(steps, device=device)[None] < lengths[:, None]  # (B, A)
    return Rollout(
        input_ids=torch.cat(fed_ids, 1),
        attention_mask=mask,
        prompt_length=prompt_length,
        sources=sources,
        responses=responses,
        response_mask=response_mask.float(),
        logprobs=logprobs,
        values=values if actor.shared else None,
        rewards=rewards,
        raw_scores=outcome.raw_scores,
        eos=outcome.eos,
        prompts=outcome.prompts,
        completions=outcome.completions,
        conversations=outcome.conversations,
        seconds=time.perf_counter() - start,
    )


def _next_feed(
    tokens: np.ndarray, live: np.ndarray, user_turns: list[tuple[int, ...]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """What each row reads next: its action then the user's turn (if the action ended a turn),
    right-padded to the longest row; finished rows read padding. Both (B, W); W is 0 when no
    row is live. Built in numpy: it runs once per sampled token."""
    lengths = np.array(
        [1 + len(turn) if alive else 0 for alive, turn in zip(live, user_turns, strict=True)]
    )  # (B,)
    width = int(lengths.max(initial=0))
    ids = np.full((len(tokens), width), pad_id, dtype=np.int64)  # (B, W)
    if width:
        ids[live, 0] = tokens[live]
    for i in np.flatnonzero(lengths > 1):
        ids[i, 1 : lengths[i]] = user_turns[i]
    mask = (np.arange(width)[None] < lengths[:, None]).astype(np.int64)  # (B, W)
    return torch.from_numpy(ids), torch.from_numpy(mask)


class _Outcome:
    """What the env reported for each slot, checked against the sampler's own bookkeeping:
    a turn ends exactly on EOS or at the turn's token budget, an episode only where a turn
    ends, and a single-turn episode (or a dialogue's last allowed turn) always there."""

    def __init__(self, env: TextGenerationVectorEnv, batch: int) -> None:
        self.dialogue = isinstance(env, DialogueVectorEnv)
        self.max_turns = env.max_turns if isinstance(env, DialogueVectorEnv) else 1
        self.turn_budget, self.eos_id = env.max_new_tokens, env.eos_token_id
        self.max_actions = self.max_turns * self.turn_budget
        self.done = np.zeros(batch, dtype=bool)
        self.actions = np.zeros(batch, dtype=np.int64)
        self.turn_length = np.zeros(batch, dtype=np.int64)
        self.turns = np.zeros(batch, dtype=np.int64)
        self.raw_scores = np.zeros(batch, dtype=np.float32)
        self.eos = np.ones(batch, dtype=bool)
        self.prompts = [""] * batch
        self.completions = [""] * batch
        self.conversations: list[list[Message]] | None = (
            [[] for _ in range(batch)] if self.dialogue else None
        )

    def record(
        self, step: tuple, tokens: np.ndarray, t: int
    ) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """Check and keep step ``t``'s outcome; return each slot's reward (0 for finished
        slots) and the user's tokens after each slot's action (``()`` if none)."""
        _, rewards, terminated, truncated, info = step
        live = ~self.done
        self.actions += live
        self.turn_length += live
        turn_ends = live & ((tokens == self.eos_id) | (self.turn_length == self.turn_budget))
        ended = terminated | truncated
        must_end = turn_ends & (self.turns + 1 == self.max_turns)
        if (ended & ~turn_ends).any() or (must_end & ~ended).any():
            raise RuntimeError(
                f"the env ended episodes {np.flatnonzero(ended).tolist()} at step {t}, but turns "
                f"ended at {np.flatnonzero(turn_ends).tolist()} and episodes had to end at "
                f"{np.flatnonzero(must_end).tolist()}; is the env in autoreset_mode='disabled' "
                "with the sampler's length budget?"
            )
        user_turns: list[tuple[int, ...]] = [()] * len(tokens)
        for i in np.flatnonzero(turn_ends):
            self.eos[i] &= bool(info["eos"][i])
            if self.dialogue:
                user_turns[i] = tuple(int(x) for x in info["user_token_ids"][i])
        self.turns += turn_ends
        self.turn_length[turn_ends] = 0
        for i in np.flatnonzero(ended):
            self.raw_scores[i] = info["score"][i]
            self.prompts[i] = info["prompt"][i]
            if self.conversations is not None:
                self.conversations[i] = info["conversation"][i]
                self.completions[i] = reward_texts(info["conversation"][i])[1]
            else:
                self.completions[i] = info["completion"][i]
        self.done |= ended
        return np.where(live, rewards, 0.0).astype(np.float32), user_turns
