"""What the scripted games share: secrets split into train and test, and the gold score of a
conversation that the user ends with a "you found it" message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from rlhf_gym.dialogue.conversation import Message, check_conversation

SPLITS = ("train", "test", "all")

Secret = TypeVar("Secret")


def secrets_of(split: str, secrets: Sequence[Secret], heldout: Sequence[Secret]) -> list[Secret]:
    """The secrets of a split: ``"test"`` is ``heldout``, ``"train"`` the rest, ``"all"`` both."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "all":
        return list(secrets)
    return [s for s in secrets if (s in heldout) == (split == "test")]


def draw(rng: np.random.Generator, choices: Sequence[Secret]) -> Secret:
    """One of ``choices``, uniformly, with ``rng``."""
    return choices[int(rng.integers(len(choices)))]


def solved_score(turns: int | None, max_turns: int) -> float:
    """``1 - (turns - 1) / max_turns`` for a game solved on the agent's turn ``turns`` (1.0 on
    the first turn, ``1 / max_turns`` on the last), 0.0 when unsolved (``None``) or solved
    later than ``max_turns``."""
    if turns is None:
        return 0.0
    return max(0.0, 1.0 - (turns - 1) / max_turns)


@dataclass(frozen=True)
class TurnsToSolve:
    """Gold score of a game conversation: :func:`solved_score` of the number of assistant
    turns, when the conversation's last message is the user's ``found`` message.

    It reads the messages (the ``ConversationRewardPredictor`` protocol), not a transcript, so an
    agent cannot write the user's verdict into its own turn.
    """

    game: str
    found: re.Pattern[str]
    """The user's last message of a solved game (matched in full)."""
    max_turns: int

    def score_conversations(self, conversations: Sequence[Sequence[Message]]) -> np.ndarray:
        return np.asarray([self.score(c) for c in conversations], dtype=np.float32)

    def score(self, conversation: Sequence[Message]) -> float:
        check_conversation(conversation)
        last = conversation[-1]
        solved = last["role"] == "user" and self.found.fullmatch(last["content"]) is not None
        turns = sum(m["role"] == "assistant" for m in conversation)
        return solved_score(turns if solved else None, self.max_turns)

    def __repr__(self) -> str:
        return f"TurnsToSolve({self.game!r}, max_turns={self.max_turns})"


@dataclass(frozen=True)
class OffRulesTurns:
    """A turn reward of a game: ``-penalty`` for a turn the user answered with one of its
    ``reminders`` (the turn broke the game's rules: no guess, no question), else 0.

    It scores the conversation up to the user's reply to the turn (the dialogue env's
    ``turn_reward_predictor``), reading the messages. A game that ends is never worse with it
    than one that drags on: every off-rules turn costs the same, whenever it comes.
    """

    game: str
    reminders: frozenset[str]
    penalty: float = 0.1

    def score_conversations(self, conversations: Sequence[Sequence[Message]]) -> np.ndarray:
        return np.asarray([self.score(c) for c in conversations], dtype=np.float32)

    def score(self, conversation: Sequence[Message]) -> float:
        check_conversation(conversation)
        last = conversation[-1]
        off_rules = last["role"] == "user" and last["content"] in self.reminders
        return -self.penalty if off_rules else 0.0

    def __repr__(self) -> str:
        return f"OffRulesTurns({self.game!r}, penalty={self.penalty:g})"
