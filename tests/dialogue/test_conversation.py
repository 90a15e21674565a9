"""Conversations: plain-text transcript, the texts a text-only reward model reads, TRL records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.dialogue import preference_record, reward_texts, transcript
from rlhf_gym.dialogue.conversation import check_conversation

GAME = [
    {"role": "user", "content": "Guess my number."},
    {"role": "assistant", "content": "10"},
    {"role": "user", "content": "Lower."},
    {"role": "assistant", "content": "5"},
    {"role": "user", "content": "Correct! The number was 5."},
]


def test_transcript_writes_one_line_per_message():
    assert transcript(GAME) == (
        "User: Guess my number.\n"
        "Assistant: 10\n"
        "User: Lower.\n"
        "Assistant: 5\n"
        "User: Correct! The number was 5."
    )


def test_reward_texts_split_the_transcript_after_the_openings_cue():
    prompt, completion = reward_texts(GAME)
    assert prompt == "User: Guess my number.\nAssistant:"
    assert completion == " 10\nUser: Lower.\nAssistant: 5\nUser: Correct! The number was 5."


messages = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)


def test_the_opening_alone_has_an_empty_completion():
    assert reward_texts(GAME[:1]) == ("User: Guess my number.\nAssistant:", "")


@settings(max_examples=50, deadline=None)
@given(st.lists(messages, min_size=2, max_size=6))
def test_reward_texts_are_always_the_transcript_in_two(contents):
    conversation = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": text}
        for i, text in enumerate(contents)
    ]
    prompt, completion = reward_texts(conversation)
    assert prompt + completion == transcript(conversation)
    assert prompt == f"User: {contents[0]}\nAssistant:"


def test_preference_record_is_trls_conversational_format_with_an_explicit_prompt():
    other = [*GAME[:1], {"role": "assistant", "content": "I give up."}]
    record = preference_record(GAME, other)
    assert record == {"prompt": GAME[:1], "chosen": GAME[1:], "rejected": other[1:]}
    record["chosen"][0]["content"] = "changed"
    assert GAME[1]["content"] == "10"  # the record holds copies


def test_preference_record_refuses_conversations_with_different_openings():
    other = [{"role": "user", "content": "Another game."}]
    with pytest.raises(ValueError, match="must share their opening message"):
        preference_record(GAME, other)


@pytest.mark.parametrize(
    ("conversation", "match"),
    [
        ([], "non-empty list of messages"),
        ("User: hi", "non-empty list of messages"),
        ([{"role": "assistant", "content": "hi"}], "message 0 .* must be a 'user' message"),
        (GAME[:1] * 2, "message 1 .* must be a 'assistant' message"),
        ([{"role": "user", "content": 3}], "message 0 has no string 'content'"),
    ],
)
def test_malformed_conversations_are_refused(conversation, match):
    with pytest.raises(ValueError, match=match):
        check_conversation(conversation)
