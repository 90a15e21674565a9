"""Guess the number: the user thinks of a whole number from 1 to 20 and answers each guess with
"Higher." or "Lower." until it is found.

* The secret is drawn uniformly from the split's numbers: ``HELDOUT`` = 3, 8, 14 and 19 are
  the ``"test"`` secrets, the other sixteen of 1 .. 20 the ``"train"`` ones.
* The guess is the first whole number in the assistant's turn, with a minus sign if one touches
  its digits and does not follow a digit (``"10"``, ``"Is it 10?"``, ``"I guess 10, or 11"``
  all guess 10; ``"1-20"`` guesses 1). A turn without a number is answered
  ``ASK_FOR_NUMBER`` and counts as a turn.
* A right guess ends the conversation with the user's last word ``"Correct! The number was
  7."``.

Gold score (``"guess-number"``): ``1 - (turns - 1) / MAX_TURNS`` when solved on the
assistant's turn ``turns`` (1.0 on the first guess, 1/6 on the sixth), else 0.0
(:class:`~rlhf_gym.dialogue.games.TurnsToSolve`). Turn reward
(``"guess-number-off-rules"``): -0.1 for a turn without a number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlhf_gym.dialogue.conversation import FinalReply, Message
from rlhf_gym.dialogue.games import OffRulesTurns, TurnsToSolve, draw, secrets_of
from rlhf_gym.dialogue.simulators import Reply

LOW, HIGH = 1, 20
SECRETS = tuple(range(LOW, HIGH + 1))
HELDOUT = (3, 8, 14, 19)
MAX_TURNS = 6
"""Guesses allowed: binary search needs at most 5 for 20 numbers."""

HIGHER = "Higher."
LOWER = "Lower."
ASK_FOR_NUMBER = f"Please guess a whole number from {LOW} to {HIGH}."
CORRECT = "Correct! The number was {secret}."
_CORRECT = re.compile(re.escape(CORRECT).replace(re.escape("{secret}"), r"-?\d+"))
_NUMBER = re.compile(r"(?:(?<!\d)-)?\d+")


def parse_guess(text: str) -> int | None:
    """The first whole number in ``text`` (see the module docstring), or None."""
    match = _NUMBER.search(text)
    return int(match.group()) if match else None


def answer(secret: int, guess: int | None) -> Reply:
    """The user's reply to a guess of ``secret``."""
    if guess is None:
        return ASK_FOR_NUMBER
    if guess == secret:
        return FinalReply(CORRECT.format(secret=secret))
    return HIGHER if guess < secret else LOWER


@dataclass(frozen=True)
class SecretNumber:
    """The user simulator of one game: it knows ``secret`` and answers the last guess."""

    secret: int

    def __call__(self, history: Sequence[Message]) -> Reply:
        return answer(self.secret, parse_guess(history[-1]["content"]))


class GuessNumberUser:
    """Starts each game with a secret number of the split (a ``ConversationStarter``)."""

    def start(self, rng: np.random.Generator, split: str) -> SecretNumber:
        return SecretNumber(draw(rng, secrets_of(split, SECRETS, HELDOUT)))

    def __repr__(self) -> str:
        return "GuessNumberUser()"


def gold_score(max_turns: int = MAX_TURNS) -> TurnsToSolve:
    """The gold score of guess-the-number conversations (the module docstring)."""
    return TurnsToSolve("guess-number", _CORRECT, max_turns)


def off_rules_penalty(penalty: float = 0.1) -> OffRulesTurns:
    """A turn reward (``"guess-number-off-rules"``): ``-penalty`` for a turn without a number
    (the user answers ``ASK_FOR_NUMBER``), else 0."""
    return OffRulesTurns("guess-number", frozenset({ASK_FOR_NUMBER}), penalty)
