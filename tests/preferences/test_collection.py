"""Forming comparisons: every distinct pair per prompt, subsampling, random display order."""

import pytest

from rlhf_gym.preferences import Comparison, pair_up


def test_pair_up_forms_all_distinct_pairs_per_prompt():
    comparisons = pair_up(["p", "q"], [["a", "b", "c", "a", " "], ["x", "y", ""]])
    assert len(comparisons) == 3 + 1
    for c in comparisons:
        assert isinstance(c, Comparison) and c.a != c.b
    assert {frozenset((c.a, c.b)) for c in comparisons if c.prompt == "p"} == {
        frozenset(s) for s in [("a", "b"), ("a", "c"), ("b", "c")]
    }


def test_pair_up_subsamples_and_randomises_display_order():
    groups = [[f"r{i}" for i in range(6)]] * 50
    comparisons = pair_up(["p"] * 50, groups, pairs_per_prompt=4, seed=3)
    assert len(comparisons) == 200
    first_is_lower = sum(c.a < c.b for c in comparisons)
    assert 60 < first_is_lower < 140  # neither position is systematically the first sample
    assert comparisons == pair_up(["p"] * 50, groups, pairs_per_prompt=4, seed=3)


def test_pair_up_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 prompts but 1 completion lists"):
        pair_up(["p", "q"], [["a", "b"]])
