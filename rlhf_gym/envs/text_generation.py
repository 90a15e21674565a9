"""TextGenerationEnv: a language model writes a completion one token per step."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.models import load_tokenizer, pad_token_id
from rlhf_gym.rewards import RewardPredictor, RewardSpec, check_scores, make_reward_predictor
from rlhf_gym.tasks import Task, get_task

Observation = dict[str, np.ndarray]


class UnsupportedRenderModeError(ValueError, TypeError):
    """A render mode the env cannot produce.

    It is also a ``TypeError`` because that is what callers that probe for a render mode catch
    (stable-baselines3's ``make_vec_env`` tries ``render_mode="rgb_array"`` first), so they fall
    back to no rendering instead of failing.
    """


class _PendingStep(NamedTuple):
    """What a validated action would do, before it is committed to the env's state."""

    token: int
    ends: bool
    eos: bool


class TextGenerationEnv(gym.Env[Observation, int]):
    """
    ## Description

    A language model continues a prompt one token per step; when the completion ends, a reward
    predictor (a learned reward model, a gold labeler, a remote service...) scores it. The env
    knows a tokenizer, a prompt source and a reward predictor, never the policy.

    ## Action Space

    `Discrete(len(tokenizer))`: the id of the next token, taken from the tokenizer (special
    tokens included). An id outside the vocabulary raises `ValueError` and changes nothing.

    ## Observation Space

    A `Dict` of two `Box(shape=(max_prompt_tokens + max_new_tokens,), dtype=int64)` arrays:

    | key              | values                  | meaning                                     |
    |------------------|-------------------------|---------------------------------------------|
    | `input_ids`      | `0 .. len(tokenizer)-1` | prompt + completion so far, **left-padded** |
    | `attention_mask` | `0 / 1`                 | 1 on real tokens, 0 on padding              |

    Left padding keeps the newest token at index -1, so a causal LM reads its next-token logits
    at the last position; positions of real tokens are `cumsum(attention_mask) - 1`. Padding
    uses the tokenizer's pad id (else its EOS id, else 0); only the mask tells padding apart.
    Text never appears in observations: it is in `info`.

    ## Rewards

    0 on every step but the last. On the last step: the reward predictor's score of
    `(prompt, completion)`, minus `missing_eos_penalty` when the completion hit
    `max_new_tokens` without emitting EOS. The completion is decoded without its EOS and
    without special tokens. A predictor that returns the wrong number of scores or a
    non-finite score raises `ValueError`, and the step is not applied.

    ## Starting State

    `reset` draws a prompt uniformly from the prompt list with `self.np_random`, or takes
    `options={"prompt": "..."}`. A prompt longer than `max_prompt_tokens` tokens is truncated
    from the left (its end is what the completion continues) with a `UserWarning`; an empty
    prompt raises `ValueError`.

    ## Episode End

    The completion is scored, and the episode ends, when the action is the EOS token or when
    `max_new_tokens` tokens have been generated. Either way the scored completion is a terminal
    state of the task, so `terminated=True`. At the length budget `truncated=True` as well, to
    say that the text was cut without EOS (`info["eos"]` says the same). Reporting both flags
    matters: agents that bootstrap the value of a time-limit cut (`truncated and not
    terminated`, as stable-baselines3 does) never bootstrap past a completion that was already
    scored. `step` after the end, or before `reset`, raises `RuntimeError`.

    `info` is empty on intermediate steps; on the last step it holds `prompt`, `completion`,
    `score` (the predictor's raw score), `eos` and `num_new_tokens`. `reset` returns
    `{"prompt": ...}`.

    ## Arguments

    * `task`: a task name (`"sentiment"`) or `Task`; supplies prompts, reward and lengths.
    * `model`: where the tokenizer comes from: a preset (`"tiny"`), `"smollm2-135m"`, an HF
      id or a local directory. Default `"tiny"`. Ignored when `tokenizer` is given.
    * `tokenizer`: a tokenizer instance (never modified).
    * `prompts`: the prompt list, overriding the task's.
    * `split`: the task's prompt split, `"train"` (default), `"test"` (held out) or `"all"`.
    * `reward_predictor`: a name (`"vader"`), a `RewardPredictor`, or any callable
      `(prompts, completions) -> scores`; defaults to the task's.
    * `max_new_tokens`, `max_prompt_tokens`: the length budget (defaults from the task, else
      24 and 32).
    * `missing_eos_penalty`: subtracted from the score of a completion without EOS (default 0).
    * `render_mode`: `"ansi"` (returns the text) or `"human"` (prints it).

    ## Version History

    * v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        task: str | Task | None = None,
        model: str = "tiny",
        tokenizer: PreTrainedTokenizerBase | None = None,
        prompts: Sequence[str] | None = None,
        split: str = "train",
        reward_predictor: RewardSpec | None = None,
        max_new_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        missing_eos_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        resolved_task = get_task(task) if task is not None else None
        self.task = resolved_task
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
        self.prompts = _resolve_prompts(prompts, resolved_task, split)
        self.reward_predictor: RewardPredictor = _resolve_predictor(reward_predictor, resolved_task)
        self.max_new_tokens = _positive(
            "max_new_tokens", max_new_tokens, resolved_task and resolved_task.max_new_tokens, 24
        )
        self.max_prompt_tokens = _positive(
            "max_prompt_tokens",
            max_prompt_tokens,
            resolved_task and resolved_task.max_prompt_tokens,
            32,
        )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UnsupportedRenderModeError(
                f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.missing_eos_penalty = float(missing_eos_penalty)

        self.vocab_size = len(self.tokenizer)
        self.eos_token_id = self.tokenizer.eos_token_id
        if self.eos_token_id is None:
            raise ValueError(
                "the tokenizer has no EOS token, so no completion could ever end early"
            )
        self.pad_token_id = pad_token_id(self.tokenizer)
        self.sequence_length = self.max_prompt_tokens + self.max_new_tokens
        token_box = spaces.Box(0, self.vocab_size - 1, (self.sequence_length,), np.int64)
        self.observation_space = spaces.Dict(
            {
                "input_ids": token_box,
                "attention_mask": spaces.Box(0, 1, (self.sequence_length,), np.int64),
            }
        )
        self.action_space = spaces.Discrete(self.vocab_size)

        # Only ever written in place: the vector env makes them rows of its batch buffers.
        self._input_ids = np.full(self.sequence_length, self.pad_token_id, dtype=np.int64)
        self._attention_mask = np.zeros(self.sequence_length, dtype=np.int64)
        self._listed_ids: dict[str, list[int]] = {}  # token ids of listed prompts, once each
        self._prompt_text = ""
        self._completion_ids: list[int] = []
        self._done: bool | None = None  # None until the first reset

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        prompt = (options or {}).get("prompt")
        if prompt is not None:
            check_prompt(prompt)  # before seeding: a refused prompt must change nothing
        super().reset(seed=seed)
        if prompt is None:
            index = int(self.np_random.integers(len(self.prompts)))
            prompt_ids, self._prompt_text = self._listed_prompt(self.prompts[index])
        else:
            prompt_ids, self._prompt_text = self._encode_prompt(prompt)
        self._input_ids.fill(self.pad_token_id)
        self._attention_mask.fill(0)
        self._input_ids[-len(prompt_ids) :] = prompt_ids
        self._attention_mask[-len(prompt_ids) :] = 1
        self._completion_ids = []
        self._done = False
        if self.render_mode == "human":
            self.render()
        return self._observation(), {"prompt": self._prompt_text}

    def step(self, action: int) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        pending = self._validate(action)
        if not pending.ends:
            self._commit(pending)
            return self._observation(), 0.0, False, False, {}
        prompt, completion = self._texts(pending)
        score = check_scores(
            self.reward_predictor([prompt], [completion]), 1, self.reward_predictor
        )
        self._commit(pending)
        return self._finish(float(score[0]), prompt, completion)

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='ansi' or 'human'"
            )
            return None
        text = f"{self._prompt_text}\u2502{self._decode(self._completion_ids)}"
        if self.render_mode == "ansi":
            return text
        print(text)
        return None

    # ------------------------------------------------------------- shared with the vector env
    def _validate(self, action: Any) -> _PendingStep:
        """Check the action and the env's state; return what the step would do."""
        if self._done is None:
            raise RuntimeError("step() called before reset()")
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        token = _as_token(action, self.vocab_size)
        eos = token == self.eos_token_id
        ends = eos or len(self._completion_ids) + 1 >= self.max_new_tokens
        return _PendingStep(token=token, ends=ends, eos=eos)

    def _texts(self, pending: _PendingStep) -> tuple[str, str]:
        """The (prompt, completion) pair the reward predictor scores if ``pending`` ends it."""
        new_ids = self._completion_ids if pending.eos else [*self._completion_ids, pending.token]
        return self._prompt_text, self._decode(new_ids)

    def _commit(self, pending: _PendingStep) -> None:
        # Shift left by one: the left-padded sequence always ends with the newest token.
        self._input_ids[:-1] = self._input_ids[1:]
        self._attention_mask[:-1] = self._attention_mask[1:]
        self._input_ids[-1] = pending.token
        self._attention_mask[-1] = 1
        self._completion_ids.append(pending.token)
        self._done = pending.ends
        if self.render_mode == "human":
            self.render()

    def _finish(
        self, score: float, prompt: str, completion: str
    ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        eos = self._completion_ids[-1] == self.eos_token_id
        reward = score if eos else score - self.missing_eos_penalty
        info = {
            "prompt": prompt,
            "completion": completion,
            "score": score,
            "eos": eos,
            "num_new_tokens": len(self._completion_ids),
        }
        return self._observation(), reward, True, not eos, info

    # ---------------------------------------------------------------------- helpers
    def _observation(self) -> Observation:
        return {"input_ids": self._input_ids.copy(), "attention_mask": self._attention_mask.copy()}

    def _listed_prompt(self, prompt: str) -> tuple[list[int], str]:
        """``_encode_prompt`` of a prompt from the list, tokenized once if it fits the budget."""
        ids = self._listed_ids.get(prompt)
        if ids is not None:
            return ids, prompt
        ids, text = self._encode_prompt(prompt)
        if text is prompt:  # not truncated: caching it skips no warning
            self._listed_ids[prompt] = ids
        return ids, text

    def _encode_prompt(self, prompt: str) -> tuple[list[int], str]:
        """Token ids of the prompt within the budget, and the text those ids stand for."""
        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if len(ids) > self.max_prompt_tokens:
            warnings.warn(
                f"prompt of {len(ids)} tokens is longer than max_prompt_tokens="
                f"{self.max_prompt_tokens}; keeping its last {self.max_prompt_tokens} tokens",
                UserWarning,
                stacklevel=3,
            )
            ids = ids[-self.max_prompt_tokens :]
            return ids, self.tokenizer.decode(ids, skip_special_tokens=True)
        return ids, prompt

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


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


def _as_token(action: Any, vocab_size: int) -> int:
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


def _resolve_prompts(prompts: Sequence[str] | None, task: Task | None, split: str) -> list[str]:
    if prompts is None:
        if task is None:
            raise ValueError("give either a task or a prompts list")
        prompts = task.prompts(split)
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not a single string")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("the prompt list is empty")
    for position, prompt in enumerate(prompts):
        try:
            check_prompt(prompt)
        except (TypeError, ValueError) as err:
            raise type(err)(f"prompts[{position}]: {err}") from err
    return prompts


def _resolve_predictor(spec: RewardSpec | None, task: Task | None) -> RewardPredictor:
    if spec is None:
        if task is None:
            raise ValueError("give either a task or a reward_predictor")
        spec = task.default_reward
    return make_reward_predictor(spec)


def _positive(name: str, value: int | None, task_default: int | None, default: int) -> int:
    chosen = next(v for v in (value, task_default, default) if v is not None)
    if isinstance(chosen, bool) or not isinstance(chosen, (int, np.integer)) or chosen < 1:
        raise ValueError(f"{name} must be a positive integer, got {chosen!r}")
    return int(chosen)
