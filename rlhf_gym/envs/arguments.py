"""The constructor arguments the text-generation and the dialogue env share, resolved and
checked one way: prompts, the reward predictor, positive budgets and the render mode; and the
spaces both build from their episode config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rlhf_gym.envs.episode import EpisodeConfig, check_prompt
from rlhf_gym.rewards import ConversationRewardPredictor, RewardSpec, make_reward_predictor
from rlhf_gym.rewards.base import RewardPredictor
from rlhf_gym.tasks import Task


class UnsupportedRenderModeError(ValueError, TypeError):
    """A render mode the env cannot produce.

    It is also a ``TypeError`` because that is what callers that probe for a render mode catch
    (stable-baselines3's ``make_vec_env`` tries ``render_mode="rgb_array"`` first), so they fall
    back to no rendering instead of failing.
    """


def resolve_prompts(prompts: Sequence[str] | None, task: Task | None, split: str) -> list[str]:
    """The given prompt list, else the task's split; each prompt checked (``prompts[3]: ...``)."""
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


def resolve_predictor(
    spec: RewardSpec | None, task: Task | None
) -> RewardPredictor | ConversationRewardPredictor:
    """The predictor ``spec`` names or is, else the task's default."""
    if spec is None:
        if task is None:
            raise ValueError("give either a task or a reward_predictor")
        spec = task.default_reward
    return make_reward_predictor(spec)


def positive(name: str, value: int | None, task_default: int | None, default: int) -> int:
    """The first of ``value``, ``task_default`` and ``default`` that is not None, checked to be
    a positive integer."""
    chosen = next(v for v in (value, task_default, default) if v is not None)
    if isinstance(chosen, bool) or not isinstance(chosen, (int, np.integer)) or chosen < 1:
        raise ValueError(f"{name} must be a positive integer, got {chosen!r}")
    return int(chosen)


def check_render_mode(render_mode: str | None, metadata: dict[str, Any]) -> None:
    """Raise :class:`UnsupportedRenderModeError` unless ``render_mode`` is None or listed."""
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise UnsupportedRenderModeError(
            f"render_mode {render_mode!r} is not one of {metadata['render_modes']}"
        )


def check_shared_encoder(encoder: Any, tokenizer: Any, max_prompt_tokens: int, what: str) -> None:
    """A shared ``what`` encoder must encode exactly as the env's own would, or observations
    change: the same tokenizer object and the same ``max_prompt_tokens``."""
    if encoder.tokenizer is not tokenizer:
        raise ValueError(f"a shared {what} encoder must use this env's tokenizer object")
    if encoder.max_prompt_tokens != max_prompt_tokens:
        raise ValueError(
            f"a shared {what} encoder must have max_prompt_tokens={max_prompt_tokens}, "
            f"got {encoder.max_prompt_tokens}"
        )


def window_spaces(config: EpisodeConfig) -> tuple[spaces.Dict, spaces.Discrete]:
    """The observation space (the token window's ``input_ids`` and ``attention_mask``, each
    ``(sequence_length,)`` int64) and the action space (one token id)."""
    length = config.sequence_length
    observation_space = spaces.Dict(
        {
            "input_ids": spaces.Box(0, config.vocab_size - 1, (length,), np.int64),
            "attention_mask": spaces.Box(0, 1, (length,), np.int64),
        }
    )
    return observation_space, spaces.Discrete(config.vocab_size)
