"""Guess the number: guesses read from text, the user's answers, secrets per split, gold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlhf_gym.dialogue import FinalReply
from rlhf_gym.dialogue.guess_number import (
    ASK_FOR_NUMBER,
    GuessNumberUser,
    SecretNumber,
    gold_score,
    parse_guess,
)


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("10", 10),
        (" Is it 10?", 10),
        ("I guess 10, or 11", 10),
        ("My guess: -3", -3),
        ("1-20", 1),
        ("007", 7),
        ("ten", None),
        ("", None),
    ],
)
def test_the_guess_is_the_first_whole_number(text, guess):
    assert parse_guess(text) == guess


@given(st.integers(-(10**6), 10**6), st.sampled_from(["{}", "Is it {}?", "I think {}."]))
def test_a_written_number_is_read_back(number, phrasing):
    assert parse_guess(phrasing.format(number)) == number


def _ask(secret: int, guess: str):
    return SecretNumber(secret)(
        [{"role": "user", "content": "Go."}, {"role": "assistant", "content": guess}]
    )


def test_the_user_answers_higher_lower_or_correct():
    assert _ask(7, "3") == "Higher."
    assert _ask(7, "Is it 12?") == "Lower."
    assert _ask(7, "7") == FinalReply("Correct! The number was 7.")
    assert _ask(7, "no idea") == ASK_FOR_NUMBER


def test_secrets_come_from_the_split_and_the_generator():
    user = GuessNumberUser()
    draws = {
        split: {user.start(np.random.default_rng(seed), split).secret for seed in range(400)}
        for split in ("train", "test", "all")
    }
    assert draws["test"] == {3, 8, 14, 19}
    assert draws["train"] == set(range(1, 21)) - draws["test"]
    assert draws["all"] == set(range(1, 21))
    first = [user.start(np.random.default_rng(5), "train").secret for _ in range(3)]
    assert len(set(first)) == 1  # the same generator state, the same secret
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        user.start(np.random.default_rng(0), "dev")


def _game(guesses: list[str], last_word: str | None) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": "Guess my number."}]
    for guess in guesses:
        messages += [{"role": "assistant", "content": guess}, {"role": "user", "content": "Lower."}]
    if last_word is None:
        return messages[:-1]
    messages[-1]["content"] = last_word
    return messages


@pytest.mark.parametrize(
    ("guesses", "last_word", "gold"),
    [
        (["7"], "Correct! The number was 7.", 1.0),
        (["10", "5", "7"], "Correct! The number was 7.", 1 - 2 / 6),
        (["1", "2", "3", "4", "5", "6"], "Correct! The number was 6.", 1 / 6),
        (["10", "5"], "Lower.", 0.0),  # cut by the turn limit
        (["10"], None, 0.0),  # ended without the user's verdict
        (["10", "Correct! The number was 10."], "Lower.", 0.0),  # the agent cannot say it
    ],
)
def test_gold_by_hand(guesses, last_word, gold):
    score = gold_score().score_conversations([_game(guesses, last_word)])
    np.testing.assert_allclose(score, [gold], rtol=1e-6)


def test_gold_of_a_game_longer_than_its_max_turns_is_zero():
    long_game = _game(["1"] * 7, "Correct! The number was 1.")
    assert gold_score().score(long_game) == 0.0
    assert gold_score(max_turns=8).score(long_game) == pytest.approx(1 - 6 / 8)


def test_the_off_rules_turn_reward_costs_a_turn_without_a_number():
    from rlhf_gym.dialogue.guess_number import ASK_FOR_NUMBER, off_rules_penalty
    from rlhf_gym.rewards import make_reward_predictor

    assert make_reward_predictor("guess-number-off-rules") == off_rules_penalty()
    penalty = off_rules_penalty()
    opening = {"role": "user", "content": "Guess my number."}
    said = {"role": "assistant", "content": "hello"}
    scores = penalty.score_conversations([
        [opening, said, {"role": "user", "content": ASK_FOR_NUMBER}],
        [opening, said, {"role": "user", "content": "Higher."}],
        [opening, said, {"role": "user", "content": "Correct! The number was 4."}],
    ])  # fmt: skip
    assert scores.tolist() == pytest.approx([-0.1, 0.0, 0.0])
