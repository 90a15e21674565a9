"""Helpers for the task tests: play a written completion through a task's env."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def play(env: Any, prompt: str, completion: str) -> tuple[float, dict[str, Any]]:
    """Reset ``env`` on ``prompt``, step ``completion``'s tokens and then EOS.

    Returns the reward and the info of the last step.
    """
    env.reset(seed=0, options={"prompt": prompt})
    tokenizer = env.tokenizer
    for token in tokenizer(completion, add_special_tokens=False)["input_ids"]:
        _, reward, terminated, _, _ = env.step(token)
        assert reward == 0.0 and not terminated
    _, reward, terminated, _, info = env.step(tokenizer.eos_token_id)
    assert terminated
    return float(reward), info


@pytest.fixture(name="play")
def _play() -> Callable[[Any, str, str], tuple[float, dict[str, Any]]]:
    return play
