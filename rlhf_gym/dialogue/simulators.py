"""User simulators: who writes the user's turns of a dialogue episode, and how they are found.

A **user simulator** is any callable ``(history) -> str | FinalReply | None``: given the
conversation so far (copies of its messages, ending with the assistant's turn just finished) it
writes the user's next message; a :class:`~rlhf_gym.dialogue.conversation.FinalReply` is a last
message that ends the conversation, ``None`` ends it without one. It may be called more than
once with the same history (a step that fails later, e.g. on a bad reward, is retried), so it
should answer from the history alone.

A simulator with a hidden state per conversation (the number it thinks of) is a
**conversation starter**: ``start(rng, split)`` draws that state with the env's random
generator, from the secrets of the env's split (``"train"``, ``"test"`` or ``"all"``), and
returns the user simulator of that one conversation. The env calls it at every ``reset``, so a
starter is shared safely by many envs.

Simulators are named like reward predictors: the built-ins below plus the
``rlhf_gym.user_simulators`` entry-point group, whose objects are called without arguments to
build one (``[project.entry-points."rlhf_gym.user_simulators"] my-user = "pkg.mod:MyUser"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rlhf_gym.dialogue.conversation import FinalReply, Message
from rlhf_gym.plugins import Registry

ENTRY_POINT_GROUP = "rlhf_gym.user_simulators"

SIMULATORS = Registry(
    "user simulator",
    ENTRY_POINT_GROUP,
    {
        "guess-number": "rlhf_gym.dialogue.guess_number:GuessNumberUser",
        "twenty-questions": "rlhf_gym.dialogue.twenty_questions:TwentyQuestionsUser",
    },
)
"""Built-in user simulators by name, plus the ``rlhf_gym.user_simulators`` entry-point group."""

Reply = str | FinalReply | None


@runtime_checkable
class UserSimulator(Protocol):
    """Writes the user's next message from the conversation so far (see the module docstring)."""

    def __call__(self, history: Sequence[Message]) -> Reply: ...


@runtime_checkable
class ConversationStarter(Protocol):
    """Starts each conversation with its own hidden state (see the module docstring)."""

    def start(self, rng: np.random.Generator, split: str) -> UserSimulator: ...


SimulatorSpec = str | UserSimulator | ConversationStarter | Callable[[Sequence[Message]], Any]


def available_simulators() -> list[str]:
    """Names accepted by :func:`make_user_simulator`: built-ins and installed plug-ins."""
    return SIMULATORS.names()


def make_user_simulator(spec: SimulatorSpec) -> UserSimulator | ConversationStarter:
    """A registered simulator by name (built by calling what is registered), or the given
    starter or callable itself."""
    if isinstance(spec, str):
        return SIMULATORS.get(spec)()
    if isinstance(spec, ConversationStarter) or callable(spec):
        return spec
    raise TypeError(
        "user_simulator must be a name, a callable (history) -> reply or an object with "
        f"start(rng, split), got {type(spec).__name__}"
    )


def begin_conversation(
    simulator: UserSimulator | ConversationStarter, rng: np.random.Generator, split: str
) -> UserSimulator:
    """The user simulator of a new conversation: a starter's ``start(rng, split)``, or the
    simulator itself."""
    if isinstance(simulator, ConversationStarter):
        return simulator.start(rng, split)
    return simulator


def check_reply(reply: Any, simulator: object) -> tuple[str | None, bool]:
    """``(text, final)`` of a simulator's reply: ``final`` says the conversation ends after it.

    Raises ``TypeError`` for anything but a ``str``, a ``FinalReply`` or ``None``, and
    ``ValueError`` for text that is empty or not valid Unicode, naming the simulator.
    """
    if reply is None:
        return None, True
    final = isinstance(reply, FinalReply)
    text = reply.text if final else reply
    if not isinstance(text, str):
        raise TypeError(
            f"user simulator {simulator!r} returned {type(reply).__name__} ({reply!r:.80}); "
            "expected a str, a FinalReply or None"
        )
    if not text.strip():
        raise ValueError(f"user simulator {simulator!r} returned an empty reply {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"user simulator {simulator!r} returned a reply that is not valid Unicode "
            f"({err.reason} at position {err.start}): {text!r:.80}"
        ) from None
    return text, final
