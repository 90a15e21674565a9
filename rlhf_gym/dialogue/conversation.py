"""Conversations as TRL's conversational format, and their plain-text rendering.

A conversation is a sequence of messages ``{"role": "user" | "assistant", "content": str}``
that starts with the user's opening message, the format of TRL's conversational datasets. The
plain-text rendering is the one the dialogue env writes into its token window when the
tokenizer has no chat template, and the text a reward predictor without a conversation method
reads (:func:`reward_texts`)::

    User: I am thinking of a number from 1 to 20.
    Assistant: 10
    User: Lower.
    Assistant: 5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

USER_PREFIX = "User: "
ASSISTANT_CUE = "Assistant:"
"""What the plain-text rendering writes before each message of a role (the cue for the
assistant's turn has no trailing space: the agent writes its own)."""


class Message(TypedDict):
    """One message of a conversation, as TRL's conversational datasets write it."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class FinalReply:
    """The user's last word: a reply after which the conversation ends.

    A user simulator returns it instead of a plain ``str`` to close the conversation with a
    message (``FinalReply("Correct! The number was 7.")``), so that whoever scores the
    conversation sees how it ended; ``None`` ends it without one.
    """

    text: str


def user(content: str) -> Message:
    return {"role": "user", "content": content}


def assistant(content: str) -> Message:
    return {"role": "assistant", "content": content}


def plain_opening(opening: str) -> str:
    """The plain-text rendering of the opening message, ending with the assistant's cue."""
    return f"{USER_PREFIX}{opening}\n{ASSISTANT_CUE}"


def plain_user_turn(reply: str, cue: bool) -> str:
    """The plain-text rendering of a later user message, after an assistant's turn; with
    ``cue`` it ends with the assistant's cue for the next turn."""
    return f"\n{USER_PREFIX}{reply}" + (f"\n{ASSISTANT_CUE}" if cue else "")


def transcript(conversation: Sequence[Message]) -> str:
    """The whole conversation in plain text, one ``User: ...`` / ``Assistant: ...`` line per
    message (contents as they are, so a message with line breaks spans several lines)."""
    check_conversation(conversation)
    lines = [
        f"{USER_PREFIX}{m['content']}" if m["role"] == "user" else f"{ASSISTANT_CUE} {m['content']}"
        for m in conversation
    ]
    return "\n".join(lines)


def reward_texts(conversation: Sequence[Message]) -> tuple[str, str]:
    """The ``(prompt, completion)`` texts a text-only reward predictor scores a conversation by.

    The prompt is the plain rendering of the opening message up to the assistant's cue, and the
    completion everything after it, so ``prompt + completion == transcript(conversation)`` once
    the assistant has spoken (the opening alone has the completion ``""``): a reward model
    trained on single-turn ``(prompt, completion)`` pairs reads the rest of the conversation as
    one long completion.
    """
    check_conversation(conversation)
    prompt = plain_opening(conversation[0]["content"])
    if len(conversation) == 1:
        return prompt, ""
    return prompt, transcript(conversation)[len(prompt) :]


def preference_record(
    chosen: Sequence[Message], rejected: Sequence[Message]
) -> dict[str, list[Message]]:
    """One preference between two conversations that share their opening, in TRL's
    conversational format with an explicit prompt: ``{"prompt": [opening], "chosen": [...],
    "rejected": [...]}`` (what ``trl.RewardTrainer`` and ``DPOTrainer`` read)."""
    check_conversation(chosen)
    check_conversation(rejected)
    if chosen[0] != rejected[0]:
        raise ValueError(
            "chosen and rejected conversations must share their opening message, got "
            f"{chosen[0]['content']!r:.60} and {rejected[0]['content']!r:.60}"
        )
    return {
        "prompt": copy_messages(chosen[:1]),
        "chosen": copy_messages(chosen[1:]),
        "rejected": copy_messages(rejected[1:]),
    }


def copy_messages(messages: Sequence[Message]) -> list[Message]:
    """Fresh copies of the messages, so that whoever receives them cannot change the
    originals."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def check_conversation(conversation: Sequence[Any]) -> None:
    """Raise ``ValueError`` unless ``conversation`` is a non-empty sequence of messages with
    string contents that starts with the user and alternates user / assistant."""
    if isinstance(conversation, (str, dict)) or not conversation:
        raise ValueError(
            f"a conversation is a non-empty list of messages, got {conversation!r:.80}"
        )
    for position, message in enumerate(conversation):
        expected = "user" if position % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != expected:
            raise ValueError(
                f"message {position} of a conversation must be a {expected!r} message "
                f"(roles alternate from the user's opening), got {message!r:.80}"
            )
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message {position} has no string 'content': {message!r:.80}")
