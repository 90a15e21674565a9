"""User simulators: lookup by name or entry point, starters vs plain callables, reply checks."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlhf_gym.dialogue import (
    ENTRY_POINT_GROUP,
    ConversationStarter,
    FinalReply,
    available_simulators,
    begin_conversation,
    make_user_simulator,
)
from rlhf_gym.dialogue.guess_number import GuessNumberUser, SecretNumber
from rlhf_gym.dialogue.simulators import check_reply
from rlhf_gym.dialogue.twenty_questions import TwentyQuestionsUser


class Parrot:
    """A third-party simulator: repeats the assistant's last message."""

    def __call__(self, history):
        return f"You said: {history[-1]['content']}"


def test_builtins_by_name():
    assert isinstance(make_user_simulator("guess-number"), GuessNumberUser)
    assert isinstance(make_user_simulator("twenty-questions"), TwentyQuestionsUser)
    assert {"guess-number", "twenty-questions"} <= set(available_simulators())


def test_an_entry_point_plugin_is_found(installed_plugins):
    entry = EntryPoint(name="parrot", value=f"{__name__}:Parrot", group=ENTRY_POINT_GROUP)
    installed_plugins[ENTRY_POINT_GROUP] = [entry]
    assert isinstance(make_user_simulator("parrot"), Parrot)
    assert "parrot" in available_simulators()


def test_unknown_name_lists_what_is_available():
    with pytest.raises(ValueError, match=r"unknown user simulator 'oracle'.*'guess-number'"):
        make_user_simulator("oracle")


def test_instances_pass_through_and_other_objects_are_refused():
    parrot, starter = Parrot(), GuessNumberUser()
    assert make_user_simulator(parrot) is parrot and make_user_simulator(starter) is starter
    with pytest.raises(TypeError, match="user_simulator must be a name, a callable"):
        make_user_simulator(42)


def test_a_starter_starts_each_conversation_and_a_callable_is_its_own():
    starter = GuessNumberUser()
    assert isinstance(starter, ConversationStarter)
    started = begin_conversation(starter, np.random.default_rng(0), "train")
    assert isinstance(started, SecretNumber)
    parrot = Parrot()
    assert begin_conversation(parrot, np.random.default_rng(0), "train") is parrot


def test_check_reply_says_whether_the_conversation_ends():
    assert check_reply("Higher.", "sim") == ("Higher.", False)
    assert check_reply(FinalReply("Correct!"), "sim") == ("Correct!", True)
    assert check_reply(None, "sim") == (None, True)


@given(
    st.one_of(
        st.integers(), st.floats(), st.binary(), st.lists(st.text()), st.booleans(),
        st.builds(FinalReply, st.integers()),
    )
)  # fmt: skip
def test_a_reply_of_another_type_is_a_type_error_naming_the_simulator(reply):
    with pytest.raises(TypeError, match=r"user simulator 'sim' returned .*expected a str"):
        check_reply(reply, "sim")


@pytest.mark.parametrize("reply", ["", "  \n", FinalReply(" "), "bad \ud800 text"])
def test_empty_or_invalid_text_is_a_value_error(reply):
    with pytest.raises(ValueError, match="user simulator 'sim' returned"):
        check_reply(reply, "sim")
