import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.preferences.synthetic import (
    augment_groups,
    cached_completions,
    insert_words,
    perturb,
    sentiment_words,
    simulated_pairs,
    spearman,
)
from rlhf_gym.rewards import VaderSentiment


def test_spearman_matches_hand_computed_values_with_ties():
    # ranks x: 1, 2.5, 2.5, 4; ranks y: 1, 3, 2, 4 -> Pearson of the ranks
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([1, 3, 2, 4])
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=3, max_size=20, unique=True))
def test_spearman_is_invariant_to_monotone_maps(values):
    x = np.array(values)
    assert spearman(x, np.exp(x / 10)) == pytest.approx(1.0)


def test_perturbations_move_vader_the_expected_way():
    rng = np.random.default_rng(0)
    positive, negative = sentiment_words()
    assert "good" in positive and "terrible" in negative
    gold = VaderSentiment()
    text = " the package arrived on a Tuesday and I opened it in the kitchen"
    up, down, cut = perturb(text, rng)
    scores = gold(["p"] * 4, [text, up, down, cut])
    assert scores[1] > scores[0] > scores[2]
    assert text.startswith(cut) and len(cut) < len(text)


def test_insert_words_keeps_the_original_words_in_order():
    out = insert_words("a b c", ["X", "Y"], np.random.default_rng(1))
    assert [w for w in out.split(" ") if w not in "XY"] == ["a", "b", "c"]
    assert sorted(w for w in out.split(" ") if w in "XY") == ["X", "Y"]


def test_augment_groups_puts_variants_after_each_completion():
    groups = augment_groups([["one two", "three four"]], seed=0)
    assert len(groups[0]) == 8 and groups[0][0] == "one two" and groups[0][4] == "three four"
    assert augment_groups([["one two"]], seed=0) == augment_groups([["one two"]], seed=0)


def test_cached_completions_generate_once(tmp_path, monkeypatch):
    first = cached_completions("tiny", ["The film"], 2, max_new_tokens=3, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1

    def fail(*args, **kwargs):
        raise AssertionError("sampled again instead of reading the cache")

    monkeypatch.setattr("rlhf_gym.preferences.synthetic._sample", fail)
    assert (
        cached_completions("tiny", ["The film"], 2, max_new_tokens=3, cache_dir=tmp_path) == first
    )


def test_simulated_pairs_report_the_bayes_accuracy_of_their_noise():
    groups = [[" good", " terrible", " fine"]] * 3
    pairs, bayes = simulated_pairs(["p"] * 3, groups, VaderSentiment(), 0.0)
    assert len(pairs) == 9 and bayes == 1.0
    assert all(
        VaderSentiment()(["p"], [p.chosen])[0] > VaderSentiment()(["p"], [p.rejected])[0]
        for p in pairs
    )


def test_sentiment_groups_from_the_corpus_and_bad_source():
    from rlhf_gym.preferences.synthetic import sentiment_groups

    groups = sentiment_groups(["The film", "My dinner"], real_k=2, soup_k=0, source="corpus")
    assert [len(g) for g in groups] == [8, 8]  # 2 sentences x (original + 3 variants)
    with pytest.raises(ValueError, match="source must be one of"):
        sentiment_groups(["p"], source="gpt")
