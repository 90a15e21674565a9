import numpy as np
import pytest

from rlhf_gym.preferences.synthetic import (
    augment_groups,
    cached_completions,
    insert_words,
    perturb,
    sentiment_words,
    simulated_pairs,
)
from rlhf_gym.rewards import VaderSentiment


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
