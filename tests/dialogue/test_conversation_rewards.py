"""Reward predictors of conversations: the protocol, the text fallback, lookup by name."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_gym.dialogue import reward_texts
from rlhf_gym.dialogue.games import TurnsToSolve
from rlhf_gym.rewards import (
    ConversationRewardPredictor,
    conversation_scores,
    make_reward_predictor,
)

CONVERSATIONS = [
    [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello!"}],
    [
        {"role": "user", "content": "Count."},
        {"role": "assistant", "content": "1 2"},
        {"role": "user", "content": "More."},
        {"role": "assistant", "content": "3"},
    ],
]


class TurnCounter:
    """Reads the messages: the number of assistant turns."""

    def __init__(self) -> None:
        self.calls = []

    def score_conversations(self, conversations):
        self.calls.append(conversations)
        return [sum(m["role"] == "assistant" for m in c) for c in conversations]


def test_a_conversation_predictor_reads_the_messages_in_one_call():
    predictor = TurnCounter()
    scores = conversation_scores(predictor, CONVERSATIONS)
    assert scores.dtype == np.float32 and scores.tolist() == [1.0, 2.0]
    assert predictor.calls == [CONVERSATIONS]
    assert conversation_scores(predictor, []).shape == (0,) and len(predictor.calls) == 1


def test_a_text_predictor_reads_the_reward_texts():
    seen = []

    def text_predictor(prompts, completions):
        seen.append((prompts, completions))
        return np.zeros(len(prompts), np.float32)

    conversation_scores(text_predictor, CONVERSATIONS)
    prompts, completions = zip(*map(reward_texts, CONVERSATIONS), strict=True)
    assert seen == [(list(prompts), list(completions))]
    assert completions[1] == " 1 2\nUser: More.\nAssistant: 3"


def test_scores_are_checked_and_name_the_predictor():
    class Short:
        def score_conversations(self, conversations):
            return [0.0]

    with pytest.raises(ValueError, match=r"shape \(1,\) for 2 completions"):
        conversation_scores(Short(), CONVERSATIONS)


def test_gold_scores_of_the_games_are_conversation_predictors_by_name():
    for name, max_turns in (("guess-number", 6), ("twenty-questions", 10)):
        gold = make_reward_predictor(name)
        assert isinstance(gold, TurnsToSolve) and isinstance(gold, ConversationRewardPredictor)
        assert gold.max_turns == max_turns and not callable(gold)
    assert make_reward_predictor("guess-number", max_turns=3).max_turns == 3
    instance = TurnCounter()
    assert make_reward_predictor(instance) is instance
