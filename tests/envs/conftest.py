"""Fixtures for the env tests: cheap deterministic reward predictors, a scripted user and env
factories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from rlhf_gym.dialogue import FinalReply
from rlhf_gym.envs import (
    DialogueEnv,
    DialogueVectorEnv,
    TextGenerationEnv,
    TextGenerationVectorEnv,
)

PROMPTS = [
    "The film opened with",
    "Our dinner at the corner bistro",
    "This blender arrived on a Tuesday and",
    "The hotel room overlooked",
    "My new headphones",
]


class CountingPredictor:
    """A reward predictor whose score depends on both texts, and that logs each batch it gets."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str]]] = []

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        pairs = list(zip(prompts, completions, strict=True))
        self.batches.append(pairs)
        return np.asarray([self.score(p, c) for p, c in pairs], dtype=np.float32)

    @staticmethod
    def score(prompt: str, completion: str) -> float:
        return float(np.float32((7 * len(prompt) + 3 * len(completion)) % 11 / 10 - 0.5))


@pytest.fixture
def predictor() -> CountingPredictor:
    return CountingPredictor()


class CountingTokenizer:
    """Wraps a tokenizer (without changing it) and logs every text it encodes."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.encoded: list[str] = []

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.encoded.append(text)
        return self.tokenizer(text, **kwargs)

    def __len__(self) -> int:
        return len(self.tokenizer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


@pytest.fixture
def counting_tokenizer(tiny_tokenizer) -> CountingTokenizer:
    return CountingTokenizer(tiny_tokenizer)


def env_defaults(tokenizer: Any, predictor: Any) -> dict[str, Any]:
    """Small, fast settings shared by the single and the vector env fixtures."""
    return {
        "tokenizer": tokenizer,
        "prompts": PROMPTS,
        "reward_predictor": predictor,
        "max_new_tokens": 4,
        "max_prompt_tokens": 16,
    }


@pytest.fixture
def make_env(tiny_tokenizer, predictor) -> Callable[..., TextGenerationEnv]:
    def make(**kwargs: Any) -> TextGenerationEnv:
        return TextGenerationEnv(**{**env_defaults(tiny_tokenizer, predictor), **kwargs})

    return make


@pytest.fixture
def make_vec_env(tiny_tokenizer, predictor) -> Callable[..., TextGenerationVectorEnv]:
    def make(num_envs: int, **kwargs: Any) -> TextGenerationVectorEnv:
        return TextGenerationVectorEnv(
            num_envs, **{**env_defaults(tiny_tokenizer, predictor), **kwargs}
        )

    return make


def biased_actions(rng: np.random.Generator, vocab: int, eos: int, size: Any = None) -> Any:
    """Random tokens with EOS one time in four, so that both kinds of episode end happen."""
    tokens = rng.integers(vocab, size=size)
    return np.where(rng.random(size=size) < 0.25, eos, tokens)


def assert_tree_equal(left: Any, right: Any, path: str = "") -> None:
    """Equality of nested dicts / arrays / scalars (Gymnasium's vector infos), with a path."""
    if isinstance(left, dict):
        assert isinstance(right, dict), path
        assert set(left) == set(right), f"{path}: keys {sorted(left)} != {sorted(right)}"
        for key in left:
            assert_tree_equal(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, (tuple, list)):
        assert isinstance(right, type(left)) and len(left) == len(right), path
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_tree_equal(a, b, f"{path}[{i}]")
    elif isinstance(left, np.ndarray) and left.dtype == object:
        assert isinstance(right, np.ndarray) and right.shape == left.shape, path
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_tree_equal(a, b, f"{path}[{i}]")
    elif isinstance(left, np.ndarray):
        np.testing.assert_array_equal(left, right, err_msg=path)
        assert np.asarray(right).dtype == left.dtype, path
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


@pytest.fixture(name="biased_actions")
def _biased_actions() -> Callable[..., Any]:
    return biased_actions


@pytest.fixture(name="assert_tree_equal")
def _assert_tree_equal() -> Callable[..., None]:
    return assert_tree_equal


@pytest.fixture(name="prompts")
def _prompts() -> list[str]:
    return list(PROMPTS)


# ---------------------------------------------------------------------- dialogue envs
OPENINGS = ["Guess my number.", "Let us play a game.", "Ask me anything."]


@dataclass(frozen=True)
class ChattyUser:
    """A scripted user whose replies depend on the history and on a drawn ``mood``: it ends
    the conversation (None) or says a last word on some turn lengths, so random agents see
    every way a conversation ends."""

    mood: int

    def __call__(self, history: Sequence[dict[str, str]]) -> Any:
        said = history[-1]["content"]
        if len(said) % 7 == 0:
            return None
        if len(said) % 7 == 1:
            return FinalReply(f"Bye after {len(history) // 2} turns.")
        return f"Mood {self.mood}: you wrote {len(said)} characters."


class ChattyStarter:
    """Starts each conversation with a mood drawn from the env's generator."""

    def start(self, rng: np.random.Generator, split: str) -> ChattyUser:
        return ChattyUser(int(rng.integers(100)))


class ConversationLog:
    """A conversation predictor whose score depends on the messages, and that logs each batch."""

    def __init__(self) -> None:
        self.batches: list[list[list[dict[str, str]]]] = []

    def score_conversations(self, conversations: Sequence[Any]) -> np.ndarray:
        self.batches.append([list(c) for c in conversations])
        return np.asarray([self.score(c) for c in conversations], dtype=np.float32)

    @staticmethod
    def score(conversation: Sequence[dict[str, str]]) -> float:
        characters = sum(len(m["content"]) for m in conversation)
        return float(np.float32(len(conversation) / 10 + characters % 13 / 100))


def dialogue_defaults(tokenizer: Any, predictor: Any) -> dict[str, Any]:
    """Small, fast dialogue settings shared by the single and the vector env fixtures."""
    return {
        "tokenizer": tokenizer,
        "prompts": OPENINGS,
        "user_simulator": ChattyStarter(),
        "reward_predictor": predictor,
        "max_new_tokens": 4,
        "max_prompt_tokens": 24,
        "max_turns": 3,
        "max_user_tokens": 32,
    }


@pytest.fixture
def conversation_log() -> ConversationLog:
    return ConversationLog()


@pytest.fixture
def make_dialogue(tiny_tokenizer, conversation_log) -> Callable[..., DialogueEnv]:
    def make(**kwargs: Any) -> DialogueEnv:
        return DialogueEnv(**{**dialogue_defaults(tiny_tokenizer, conversation_log), **kwargs})

    return make


@pytest.fixture
def make_dialogue_vec(tiny_tokenizer, conversation_log) -> Callable[..., DialogueVectorEnv]:
    def make(num_envs: int, **kwargs: Any) -> DialogueVectorEnv:
        defaults = dialogue_defaults(tiny_tokenizer, conversation_log)
        return DialogueVectorEnv(num_envs, **{**defaults, **kwargs})

    return make
