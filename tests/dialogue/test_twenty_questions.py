"""Twenty questions: the things, how turns are read and answered, secrets per split, gold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlhf_gym.dialogue import FinalReply
from rlhf_gym.dialogue.twenty_questions import (
    ASK_A_QUESTION,
    ATTRIBUTES,
    HELDOUT,
    ONE_AT_A_TIME,
    THINGS,
    SecretThing,
    TwentyQuestionsUser,
    gold_score,
    read_turn,
)


def _ask(secret: str, turn: str):
    return SecretThing(secret)(
        [{"role": "user", "content": "Go."}, {"role": "assistant", "content": turn}]
    )


def test_twenty_things_no_two_alike_with_known_attributes():
    assert len(THINGS) == 20
    assert len(set(THINGS.values())) == 20  # questions can tell any two apart
    assert set().union(*THINGS.values()) == set(ATTRIBUTES)
    assert HELDOUT == ("salmon", "banana", "spoon", "airplane")


def test_every_keyword_asks_about_its_attribute():
    for thing, attribute in itertools.product(THINGS, ATTRIBUTES):
        expected = "Yes." if attribute in THINGS[thing] else "No."
        for keyword in ATTRIBUTES[attribute]:
            assert _ask(thing, f"Is it {keyword}?") == expected, (thing, keyword)


def test_a_question_about_several_attributes_is_a_conjunction():
    assert _ask("eagle", "Is it an animal that can fly?") == "Yes."
    assert _ask("dog", "Is it an animal that can fly?") == "No."
    assert _ask("airplane", "Is it a big metal thing with wheels?") == "Yes."


def test_naming_a_thing_is_a_guess():
    assert _ask("dog", "Is it a dog?") == FinalReply("Yes! It is a dog. You found it.")
    assert _ask("eagle", "DOGS!") == "No, it is not a dog."
    assert _ask("dog", "Is it an eagle?") == "No, it is not an eagle."
    assert _ask("dog", "Is it an animal, like a dog?") == FinalReply(
        "Yes! It is a dog. You found it."
    )


def test_hedged_guesses_and_turns_without_a_question_are_refused():
    assert _ask("dog", "Is it a dog or a cat or a frog?") == ONE_AT_A_TIME
    assert _ask("dog", "hmm") == ASK_A_QUESTION
    assert _ask("dog", "") == ASK_A_QUESTION


def test_reading_is_by_whole_lower_cased_words():
    assert read_turn("Does it have WHEELS?").attributes == {"wheels"}
    assert read_turn("Is it a carpet?").things == frozenset()  # "car" inside a word
    assert read_turn("Is it a carrot?").things == {"carrot"}


def test_secrets_come_from_the_split():
    user = TwentyQuestionsUser()
    draws = {
        split: {user.start(np.random.default_rng(seed), split).secret for seed in range(400)}
        for split in ("train", "test")
    }
    assert draws["test"] == set(HELDOUT)
    assert draws["train"] == set(THINGS) - set(HELDOUT)


def _game(turns: int, last_word: str) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": "Twenty questions!"}]
    for _ in range(turns):
        messages += [
            {"role": "assistant", "content": "Is it big?"},
            {"role": "user", "content": "No."},
        ]
    messages[-1]["content"] = last_word
    return messages


@pytest.mark.parametrize(
    ("turns", "last_word", "gold"),
    [
        (1, "Yes! It is a dog. You found it.", 1.0),
        (5, "Yes! It is an airplane. You found it.", 0.6),
        (10, "Yes! It is a ball. You found it.", 0.1),
        (10, "No, it is not a ball.", 0.0),
        (3, "Yes! It is a cat. You found it.", 0.0),  # not one of the things
    ],
)
def test_gold_by_hand(turns, last_word, gold):
    assert gold_score().score(_game(turns, last_word)) == pytest.approx(gold)


def test_the_off_rules_turn_reward_costs_a_turn_that_asks_nothing():
    from rlhf_gym.dialogue.twenty_questions import ASK_A_QUESTION, ONE_AT_A_TIME, YES
    from rlhf_gym.rewards import make_reward_predictor

    penalty = make_reward_predictor("twenty-questions-off-rules")
    start = [{"role": "user", "content": "Guess my thing."}, {"role": "assistant", "content": "?"}]
    replies = [ASK_A_QUESTION, ONE_AT_A_TIME, YES]
    scores = penalty.score_conversations(
        [[*start, {"role": "user", "content": r}] for r in replies]
    )
    assert scores.tolist() == pytest.approx([-0.1, -0.1, 0.0])
