"""One text-generation episode: its token window, its completion, and the rules of a step.

This module is the contract between :class:`~rlhf_gym.envs.TextGenerationEnv` and
:class:`~rlhf_gym.envs.TextGenerationVectorEnv`. The single env drives one
:class:`TextEpisode` (``env.episode``). The vector env drives the episodes of its sub-envs in
lock step, because it scores every episode that ends on a step in **one** reward-predictor call,
and a Gymnasium ``step`` (which scores as it goes) cannot offer that. One step of an episode is:

1. ``planned = episode.plan(action)``: check the action and the episode's state, change nothing;
2. if ``planned.ends``: ``episode.texts(planned)`` is the ``(prompt, completion)`` pair to
   score, and :func:`score_texts` scores a batch of such pairs in one call;
3. ``episode.commit(planned)`` applies the step; after an ending step,
   ``episode.outcome(score, prompt, completion)`` gives the reward, the flags and the info.

Nothing changes before step 3, so a bad action or a bad predictor output in steps 1-2 leaves
every episode as it was. Episodes start from the token ids of a :class:`PromptEncoder`.

Both envs make steps 2-3 through their ``scorer`` (here a :class:`TextScorer`), whose
``score_and_commit`` takes the planned steps of any number of episodes: the single env passes
one, the vector env all of its sub-envs' at once. The dialogue env
(:mod:`rlhf_gym.envs.dialogue_episode`) keeps the same shape with its own episode and scorer,
and both episodes keep their token window in a :class:`TokenWindow`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import pad_token_id
from rlhf_gym.rewards import RewardPredictor, check_scores

Observation = dict[str, np.ndarray]
StepResult = tuple[float, bool, bool, dict[str, Any]]
"""``(reward, terminated, truncated, info)`` of one episode's step."""


@dataclass(frozen=True, eq=False)
class EpisodeConfig:
    """What every episode of an env shares: the tokenizer, the length budget, the penalty."""

    tokenizer: PreTrainedTokenizerBase  # never modified
    max_prompt_tokens: int  # longer prompts are cut from the left
    max_new_tokens: int  # the episode ends after this many generated tokens
    missing_eos_penalty: float = 0.0  # subtracted from the score of a completion without EOS
    # Derived once from the above:
    vocab_size: int = field(init=False)  # len(tokenizer): the number of actions
    eos_token_id: int = field(init=False)  # the action that ends a completion early
    pad_token_id: int = field(init=False)  # pad id, else EOS id, else 0
    sequence_length: int = field(init=False)  # max_prompt_tokens + max_new_tokens

    def __post_init__(self) -> None:
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise ValueError(
                "the tokenizer has no EOS token, so no completion could ever end early"
            )
        derived = {
            "vocab_size": len(self.tokenizer),
            "eos_token_id": eos,
            "pad_token_id": pad_token_id(self.tokenizer),
            "sequence_length": self.max_prompt_tokens + self.max_new_tokens,
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: the only way to set derived fields


class EpisodeSettings:
    """Read-only settings that the single and the vector env both publish, from one config.

    A subclass says where its :class:`EpisodeConfig` is; everything else follows, so the two
    envs cannot drift apart in what they expose.
    """

    @property
    def episode_config(self) -> EpisodeConfig:
        raise NotImplementedError

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.episode_config.tokenizer

    @property
    def vocab_size(self) -> int:
        return self.episode_config.vocab_size

    @property
    def eos_token_id(self) -> int:
        return self.episode_config.eos_token_id

    @property
    def pad_token_id(self) -> int:
        return self.episode_config.pad_token_id

    @property
    def max_prompt_tokens(self) -> int:
        return self.episode_config.max_prompt_tokens

    @property
    def max_new_tokens(self) -> int:
        return self.episode_config.max_new_tokens

    @property
    def sequence_length(self) -> int:
        return self.episode_config.sequence_length

    @property
    def missing_eos_penalty(self) -> float:
        return self.episode_config.missing_eos_penalty


class TokenWindow:
    """The newest ``length`` token ids of an episode, left-padded so that the newest is at
    index -1, and the mask that is 1 on real tokens. Its arrays are only written in place, so
    they can be rows of a batch buffer (:meth:`use_buffers`)."""

    def __init__(self, length: int, pad_token_id: int) -> None:
        self._pad_token_id = pad_token_id
        self._input_ids = np.full(length, pad_token_id, dtype=np.int64)
        self._attention_mask = np.zeros(length, dtype=np.int64)

    def observation(self) -> Observation:
        """Copies of the window: ``input_ids`` and ``attention_mask``, each ``(L,)``."""
        return {"input_ids": self._input_ids.copy(), "attention_mask": self._attention_mask.copy()}

    def use_buffers(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
        """Keep the window in these ``(L,)`` int64 arrays from now on, copying it in."""
        for name, array in (("input_ids", input_ids), ("attention_mask", attention_mask)):
            if array.shape != self._input_ids.shape or array.dtype != np.int64:
                raise ValueError(
                    f"{name} buffer has shape {array.shape} and dtype {array.dtype}; expected "
                    f"shape {self._input_ids.shape} and dtype int64"
                )
        input_ids[:], attention_mask[:] = self._input_ids, self._attention_mask
        self._input_ids, self._attention_mask = input_ids, attention_mask

    def start(self, ids: Sequence[int]) -> None:
        """Hold exactly ``ids`` (at most ``L`` of them), after padding."""
        self._input_ids.fill(self._pad_token_id)
        self._attention_mask.fill(0)
        self._input_ids[len(self._input_ids) - len(ids) :] = ids
        self._attention_mask[len(self._input_ids) - len(ids) :] = 1

    def push(self, token: int) -> None:
        """Append one token, dropping the oldest position."""
        # Shift left by one: the left-padded window always ends with the newest token.
        self._input_ids[:-1] = self._input_ids[1:]
        self._attention_mask[:-1] = self._attention_mask[1:]
        self._input_ids[-1] = token
        self._attention_mask[-1] = 1

    def extend(self, ids: Sequence[int]) -> None:
        """Append ``ids`` (at most ``L`` of them), dropping as many of the oldest positions."""
        count = len(ids)
        if count == 0:
            return
        self._input_ids[:-count] = self._input_ids[count:]
        self._attention_mask[:-count] = self._attention_mask[count:]
        self._input_ids[-count:] = ids
        self._attention_mask[-count:] = 1


class PlannedStep(NamedTuple):
    """What a checked action would do, before it is committed to the episode."""

    token: int
    ends: bool  # the step ends the episode: the completion is scored
    eos: bool  # the token is EOS (else an ending step hit the length budget)


class TextEpisode:
    """The state of one episode and the rules of its steps (see the module docstring).

    The token window is ``config.sequence_length`` ids, left-padded so that the newest token is
    at index -1; ``attention_mask`` is 1 on real tokens. Its arrays are only written in place,
    so they can be rows of a batch buffer (:meth:`use_buffers`).
    """

    def __init__(self, config: EpisodeConfig) -> None:
        self._config = config
        self._window = TokenWindow(config.sequence_length, config.pad_token_id)
        self._prompt = ""
        self._completion_ids: list[int] = []
        self._done: bool | None = None  # None until the first start

    @property
    def config(self) -> EpisodeConfig:
        return self._config

    @property
    def prompt(self) -> str:
        """The prompt text the completion continues (after any cut to the prompt budget)."""
        return self._prompt

    @property
    def completion_ids(self) -> tuple[int, ...]:
        """The tokens generated so far, EOS included."""
        return tuple(self._completion_ids)

    @property
    def completion(self) -> str:
        """The completion so far as text, without special tokens."""
        return self._decode(self._completion_ids)

    @property
    def started(self) -> bool:
        return self._done is not None

    @property
    def done(self) -> bool:
        """The episode has ended (False before the first start)."""
        return bool(self._done)

    def observation(self) -> Observation:
        """Copies of the token window: ``input_ids`` and ``attention_mask``, each ``(L,)``."""
        return self._window.observation()

    def use_buffers(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
        """Keep the token window in these ``(L,)`` int64 arrays from now on, copying it in.

        The vector env passes rows of its ``(N, L)`` batch buffers, so that a batched
        observation is one copy instead of a stack of N arrays.
        """
        self._window.use_buffers(input_ids, attention_mask)

    def start(self, prompt_ids: Sequence[int], prompt: str) -> None:
        """Begin an episode on ``prompt``, whose ids within the prompt budget are ``prompt_ids``."""
        if not 1 <= len(prompt_ids) <= self._config.max_prompt_tokens:
            raise ValueError(
                f"{len(prompt_ids)} prompt token ids given; expected 1 to "
                f"max_prompt_tokens={self._config.max_prompt_tokens}"
            )
        self._prompt = prompt
        self._window.start(prompt_ids)
        self._completion_ids = []
        self._done = False

    def plan(self, action: Any) -> PlannedStep:
        """Check ``action`` and the episode's state, and say what the step would do.

        Raises ``RuntimeError`` before the first start or after the end, ``ValueError`` for an
        action that is not one token id of the vocabulary; either way nothing changes.
        """
        check_steppable(self._done)
        token = as_token(action, self._config.vocab_size)
        eos = token == self._config.eos_token_id
        ends = eos or len(self._completion_ids) + 1 >= self._config.max_new_tokens
        return PlannedStep(token=token, ends=ends, eos=eos)

    def texts(self, planned: PlannedStep) -> tuple[str, str]:
        """The ``(prompt, completion)`` pair to score if ``planned`` ends the episode.

        The completion is decoded without its EOS and without special tokens.
        """
        new_ids = self._completion_ids if planned.eos else [*self._completion_ids, planned.token]
        return self._prompt, self._decode(new_ids)

    def commit(self, planned: PlannedStep) -> None:
        """Apply a step that :meth:`plan` returned for the current state."""
        self._window.push(planned.token)
        self._completion_ids.append(planned.token)
        self._done = planned.ends

    def outcome(
        self, score: float, prompt: str, completion: str
    ) -> tuple[float, bool, bool, dict[str, Any]]:
        """``(reward, terminated, truncated, info)`` of the ending step just committed.

        ``score`` is the predictor's score of ``(prompt, completion)`` from :meth:`texts`.
        A completion cut at the length budget loses ``missing_eos_penalty`` and reports
        ``truncated=True`` as well as ``terminated=True``: it was scored and has no future, so
        no agent may bootstrap past it.
        """
        if not self._done:
            raise RuntimeError("outcome() asked before the episode ended")
        eos = self._completion_ids[-1] == self._config.eos_token_id
        reward = score if eos else score - self._config.missing_eos_penalty
        info = {
            "prompt": prompt,
            "completion": completion,
            "score": score,
            "eos": eos,
            "num_new_tokens": len(self._completion_ids),
        }
        return reward, True, not eos, info

    def _decode(self, ids: Sequence[int]) -> str:
        return self._config.tokenizer.decode(ids, skip_special_tokens=True)


class PromptEncoder:
    """Token ids of prompts within the prompt budget; prompts from a list are tokenized once.

    Envs with the same tokenizer and budget can share one encoder (the vector env's sub-envs
    do), so each listed prompt is tokenized once for all of them.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_prompt_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self._listed_ids: dict[str, list[int]] = {}

    def encode_listed(self, prompt: str) -> tuple[list[int], str]:
        """:meth:`encode` of a prompt from the env's list, cached if it fits the budget."""
        ids = self._listed_ids.get(prompt)
        if ids is not None:
            return ids, prompt
        ids, text = self.encode(prompt)
        if text is prompt:  # not cut: caching it skips no warning
            self._listed_ids[prompt] = ids
        return ids, text

    def encode(self, prompt: str) -> tuple[list[int], str]:
        """Token ids of the prompt within the budget, and the text those ids stand for.

        A longer prompt keeps its last ``max_prompt_tokens`` ids (its end is what the completion
        continues), with a ``UserWarning``.
        """
        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if len(ids) > self.max_prompt_tokens:
            warnings.warn(
                f"prompt of {len(ids)} tokens is longer than max_prompt_tokens="
                f"{self.max_prompt_tokens}; keeping its last {self.max_prompt_tokens} tokens",
                UserWarning,
                stacklevel=3,  # the env's reset (listed prompt) or its caller (given prompt)
            )
            ids = ids[-self.max_prompt_tokens :]
            return ids, self.tokenizer.decode(ids, skip_special_tokens=True)
        return ids, prompt


def check_prompt(prompt: Any) -> None:
    """Raise unless ``prompt`` is a string with some non-whitespace text that a tokenizer can
    encode (no lone surrogate, which UTF-8 cannot represent)."""
    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError(f"prompt {prompt!r} is empty; prompts must contain text")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"prompt {prompt!r} is not valid Unicode text ({err.reason} at position {err.start})"
        ) from None


class EpisodeScorer(Protocol):
    """Ends the planned steps of a batch of episodes: scores what they need, then commits them.

    ``score_and_commit`` returns ``{position in steps: (reward, terminated, truncated, info)}``
    for the steps that report something; every other step reports :func:`no_outcome`. A
    failing score raises before any step is committed.
    """

    def score_and_commit(self, steps: Sequence[tuple[Any, Any]]) -> dict[int, StepResult]: ...


class TextScorer:
    """The end of a step of text episodes: every episode that ends is scored in **one**
    predictor call, then every step is committed."""

    def __init__(self, predictor: RewardPredictor) -> None:
        self.predictor = predictor

    def score_and_commit(
        self, steps: Sequence[tuple[TextEpisode, PlannedStep]]
    ) -> dict[int, StepResult]:
        """The outcomes of the steps that end their episode, by position in ``steps``."""
        ending = [i for i, (_, planned) in enumerate(steps) if planned.ends]
        texts = [steps[i][0].texts(steps[i][1]) for i in ending]
        scores = score_texts(self.predictor, texts).tolist()
        for episode, planned in steps:
            episode.commit(planned)
        return {
            i: steps[i][0].outcome(score, *text)
            for i, score, text in zip(ending, scores, texts, strict=True)
        }


def no_outcome() -> StepResult:
    """The result of a step that ends nothing: reward 0, no flag, an empty info."""
    return 0.0, False, False, {}


class ScoredTokenSteps:
    """``step`` and ``render`` of an env whose episode takes one token per step: the step is
    planned on ``_episode`` and committed by ``_scorer`` only once its score is known to be
    good; ``render`` shows :meth:`_render_text` (``ansi`` returns it, ``human`` prints it)."""

    render_mode: str | None
    _episode: Any
    _scorer: EpisodeScorer

    def step(self, action: int) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        planned = self._episode.plan(action)
        results = self._scorer.score_and_commit([(self._episode, planned)])
        reward, terminated, truncated, info = results.get(0) or no_outcome()
        if self.render_mode == "human":
            self.render()
        return self._episode.observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='ansi' or 'human'"
            )
            return None
        text = self._render_text()
        if self.render_mode == "ansi":
            return text
        print(text)
        return None

    def _render_text(self) -> str:
        raise NotImplementedError


def check_steppable(done: bool | None) -> None:
    """Raise ``RuntimeError`` unless an episode whose done flag is ``done`` (None before its
    first start) can take a step."""
    if done is None:
        raise RuntimeError("step() called before reset()")
    if done:
        raise RuntimeError("step() called after the episode ended; call reset() first")


_NO_SCORES = np.zeros(0, dtype=np.float32)
_NO_SCORES.flags.writeable = False


def score_texts(predictor: RewardPredictor, texts: Sequence[tuple[str, str]]) -> np.ndarray:
    """The checked float32 scores of ``(prompt, completion)`` pairs, from one predictor call.

    No pairs, no call. Scores of the wrong shape, non-finite or not numbers raise.
    """
    if not texts:
        return _NO_SCORES
    prompts, completions = zip(*texts, strict=True)
    return check_scores(predictor(list(prompts), list(completions)), len(texts), predictor)


def as_token(action: Any, vocab_size: int) -> int:
    """The token id an action stands for; ``ValueError`` unless it is one integer id of the
    vocabulary."""
    if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
        token = int(action)  # the common case, without building an array
    else:
        token = _array_token(action)
    if not 0 <= token < vocab_size:
        raise ValueError(f"action {token} is outside the vocabulary of size {vocab_size}")
    return token


def _array_token(action: Any) -> int:
    array = np.asarray(action)
    if array.shape != () or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"action {action!r} is not a single integer token id")
    return int(array)
