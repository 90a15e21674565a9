import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.rewards import KeywordScore, LengthTarget, make_reward_predictor


def test_keyword_score_counts_whole_words_and_saturates():
    score = KeywordScore(keywords=["pasta", "Sauce"], saturation=2)
    values = score(
        ["p"] * 4,
        ["no topic here", "The SAUCE was thin.", "pasta, sauce and pasta", "saucepan pastas"],
    )
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0, 0.0])
    assert values.dtype == np.float32


def test_keyword_score_builtin_topic_and_name():
    food = make_reward_predictor("keyword", topic="food")
    assert food(["p", "p"], [" delicious fresh bread", " a long meeting"]).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown topic 'cars'"):
        KeywordScore(topic="cars")
    with pytest.raises(ValueError, match="single words"):
        KeywordScore(keywords=["two words"])
    with pytest.raises(ValueError, match="saturation must be a positive"):
        KeywordScore(saturation=0)


def test_length_target_peaks_on_target_and_falls_linearly():
    score = make_reward_predictor("length", target_words=4)
    texts = ["", "one two", "one two three four", "a b c d e f", "a " * 8, "a " * 20]
    np.testing.assert_allclose(score(["p"] * 6, texts), [0.0, 0.5, 1.0, 0.5, 0.0, 0.0])
    with pytest.raises(ValueError, match="target_words must be a positive"):
        LengthTarget(0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=8))
def test_scores_stay_in_unit_interval(texts):
    for predictor in (KeywordScore(), LengthTarget(5)):
        values = predictor([""] * len(texts), texts)
        assert values.shape == (len(texts),)
        assert np.all((values >= 0) & (values <= 1))


@pytest.mark.parametrize("predictor", [KeywordScore(), LengthTarget()])
def test_length_mismatch_raises(predictor):
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        predictor(["a", "b"], ["c"])
