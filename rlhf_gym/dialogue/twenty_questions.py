"""Twenty questions: the user thinks of one of twenty things and answers yes/no questions about
it until the assistant names it.

The things and what is true of them are ``THINGS`` (no two alike, so questions can tell any two
apart); ``HELDOUT`` (every fifth: salmon, banana, spoon, airplane) are the ``"test"`` secrets,
the other sixteen the ``"train"`` ones. The assistant's turn is read by whole, lower-cased
words:

1. **A guess** names a thing (``"Is it a dog?"``, ``"dogs"``): the right one ends the
   conversation with the user's last word ``"Yes! It is a dog. You found it."``; another gets
   ``"No, it is not an eagle."``. Naming two or more things gets ``ONE_AT_A_TIME``.
2. **A question** uses the keywords of one or more ``ATTRIBUTES`` (``"Can it fly?"``,
   ``"Is it an animal with legs?"``): ``"Yes."`` when every attribute asked about is true of
   the secret, else ``"No."``. Negations are not understood (``"Is it not an animal?"`` asks
   whether it is an animal).
3. Anything else gets ``ASK_A_QUESTION``.

Every turn counts, whatever it holds. Gold score (``"twenty-questions"``): ``1 - (turns - 1) /
MAX_TURNS`` when found on the assistant's turn ``turns``, else 0.0
(:class:`~rlhf_gym.dialogue.games.TurnsToSolve`). Turn reward
(``"twenty-questions-off-rules"``): -0.1 for a turn of rule 3 or naming several things.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlhf_gym.dialogue.conversation import FinalReply, Message
from rlhf_gym.dialogue.games import OffRulesTurns, TurnsToSolve, draw, secrets_of
from rlhf_gym.dialogue.simulators import Reply

MAX_TURNS = 10
"""Questions and guesses allowed, the last guess included."""

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "animal": ("animal", "animals", "creature"),
    "flies": ("fly", "flies", "flying", "wings"),
    "water": ("water", "swim", "swims", "sea", "ocean"),
    "food": ("food", "eat", "eaten", "edible"),
    "fruit": ("fruit", "fruits"),
    "round": ("round", "sphere"),
    "metal": ("metal", "metallic"),
    "electric": ("electric", "electronic", "electricity", "battery", "batteries"),
    "wheels": ("wheel", "wheels"),
    "kitchen": ("kitchen",),
    "big": ("big", "bigger", "large", "larger", "huge"),
    "legs": ("leg", "legs"),
}
"""Each attribute and the words that ask about it."""

THINGS: dict[str, frozenset[str]] = {
    name: frozenset(attributes.split())
    for name, attributes in {
        "dog": "animal legs",
        "eagle": "animal flies legs",
        "frog": "animal water legs",
        "whale": "animal water big",
        "salmon": "animal water food",
        "elephant": "animal big legs",
        "chicken": "animal food legs",
        "apple": "food fruit round",
        "bread": "food kitchen",
        "banana": "food fruit",
        "carrot": "food",
        "ball": "round",
        "phone": "electric",
        "toaster": "metal electric kitchen",
        "spoon": "metal kitchen",
        "fridge": "metal electric kitchen big",
        "bicycle": "metal wheels",
        "car": "metal wheels big",
        "boat": "water big",
        "airplane": "metal flies wheels big",
    }.items()
}
"""The twenty things, in order, and the attributes true of each."""

HELDOUT = tuple(name for position, name in enumerate(THINGS, start=1) if position % 5 == 0)

YES, NO = "Yes.", "No."
FOUND = "Yes! It is {thing}. You found it."
NOT_IT = "No, it is not {thing}."
ONE_AT_A_TIME = "Please guess one thing at a time."
ASK_A_QUESTION = "Please ask a yes/no question, like: Is it an animal?"


def with_article(thing: str) -> str:
    """``"a dog"``, ``"an eagle"``."""
    return f"{'an' if thing[0] in 'aeiou' else 'a'} {thing}"


_FOUND = re.compile("|".join(re.escape(FOUND.format(thing=with_article(t))) for t in THINGS))
_WORD = re.compile(r"[a-z]+")
_THING_WORDS = {word: name for name in THINGS for word in (name, f"{name}s")}
_ATTRIBUTE_WORDS = {word: name for name, words in ATTRIBUTES.items() for word in words}


@dataclass(frozen=True)
class Reading:
    """What an assistant's turn asks: the things it names and the attributes it asks about."""

    things: frozenset[str]
    attributes: frozenset[str]


def read_turn(text: str) -> Reading:
    """The things and attributes that the words of ``text`` name (see the module docstring)."""
    words = _WORD.findall(text.lower())
    return Reading(
        things=frozenset(_THING_WORDS[w] for w in words if w in _THING_WORDS),
        attributes=frozenset(_ATTRIBUTE_WORDS[w] for w in words if w in _ATTRIBUTE_WORDS),
    )


def answer(secret: str, reading: Reading) -> Reply:
    """The user's reply to one turn when the secret is ``secret``."""
    if len(reading.things) > 1:
        return ONE_AT_A_TIME
    if reading.things:
        (thing,) = reading.things
        if thing == secret:
            return FinalReply(FOUND.format(thing=with_article(thing)))
        return NOT_IT.format(thing=with_article(thing))
    if reading.attributes:
        return YES if reading.attributes <= THINGS[secret] else NO
    return ASK_A_QUESTION


@dataclass(frozen=True)
class SecretThing:
    """The user simulator of one game: it knows ``secret`` and answers the last turn."""

    secret: str

    def __call__(self, history: Sequence[Message]) -> Reply:
        return answer(self.secret, read_turn(history[-1]["content"]))


class TwentyQuestionsUser:
    """Starts each game with a secret thing of the split (a ``ConversationStarter``)."""

    def start(self, rng: np.random.Generator, split: str) -> SecretThing:
        return SecretThing(draw(rng, secrets_of(split, list(THINGS), HELDOUT)))

    def __repr__(self) -> str:
        return "TwentyQuestionsUser()"


def gold_score(max_turns: int = MAX_TURNS) -> TurnsToSolve:
    """The gold score of twenty-questions conversations (the module docstring)."""
    return TurnsToSolve("twenty-questions", _FOUND, max_turns)


def off_rules_penalty(penalty: float = 0.1) -> OffRulesTurns:
    """A turn reward (``"twenty-questions-off-rules"``): ``-penalty`` for a turn that neither
    asks about an attribute nor names one thing (``ASK_A_QUESTION``, ``ONE_AT_A_TIME``)."""
    return OffRulesTurns("twenty-questions", frozenset({ASK_A_QUESTION, ONE_AT_A_TIME}), penalty)
