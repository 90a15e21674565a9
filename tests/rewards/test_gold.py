"""VaderSentiment: the gold labeler of the sentiment task."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_gym.rewards import VaderSentiment


@pytest.fixture(scope="module")
def vader():
    return VaderSentiment()


def test_clear_sentiment_gets_a_clear_score(vader):
    scores = vader(
        ["The film", "The film", "The film"],
        [
            "was wonderful, a truly great and delightful experience. I loved it!",
            "was awful, boring and terrible. I hated every minute.",
            "",
        ],
    )
    assert scores.dtype == np.float32 and scores.shape == (3,)
    assert scores[0] > 0.5 and scores[1] < -0.5 and scores[2] == 0.0
    assert np.all((scores >= -1) & (scores <= 1))


def test_the_prompt_is_not_scored(vader):
    completion = ["and the staff were friendly."]
    happy = vader(["I love this wonderful, amazing place"], completion)
    sad = vader(["I hate this awful, horrible place"], completion)
    np.testing.assert_array_equal(happy, sad)


def test_empty_batch_and_mismatched_lengths(vader):
    assert vader([], []).shape == (0,)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        vader(["a", "b"], ["c"])


def test_repr(vader):
    assert repr(vader) == "VaderSentiment()"
