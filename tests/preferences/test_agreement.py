import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlhf_gym.preferences import (
    Comparison,
    SimulatedLabeler,
    agreement_by_labeler_pair,
    cohen_kappa,
    gold_agreement,
    labeler_agreement,
)


def test_cohens_kappa_of_the_textbook_example():
    """Wikipedia's: 50 proposals, both yes 20, only A yes 5, only B yes 10, both no 15;
    p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.4."""
    first = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohens_kappa_is_one_for_full_agreement_and_undefined_without_variation():
    assert cohen_kappa(["a", "b", "tie"], ["a", "b", "tie"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # chance agreement is already 1
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="2 answers of the first rater but 1 of the second"):
        cohen_kappa(["a", "b"], ["a"])


ANSWER_LISTS = st.integers(1, 30).flatmap(
    lambda n: st.tuples(*[st.lists(st.sampled_from("ab"), min_size=n, max_size=n)] * 2)
)


@given(ANSWER_LISTS)
def test_cohens_kappa_is_symmetric_at_most_one_and_one_only_when_raters_agree(answers):
    first, second = answers
    kappa = cohen_kappa(first, second)
    assert kappa == cohen_kappa(second, first)
    if kappa is not None:
        assert kappa <= 1 + 1e-12
        assert math.isclose(kappa, 1.0) == (first == second)


LABELS = {
    "c1": {"ann": "a", "bob": "a"},
    "c2": {"ann": "a", "bob": "b"},
    "c3": {"ann": "a", "bob": "skip"},  # one answer: nothing to agree on
    "c4": {"ann": "tie", "bob": "tie", "cyd": "a"},
}


def test_labelers_agreement_over_every_pair_of_answers_to_one_comparison():
    agreement = labeler_agreement(LABELS)
    assert (agreement.comparisons, agreement.label_pairs) == (3, 5)
    assert agreement.agreement == pytest.approx(2 / 5)  # (a, a) and (tie, tie)
    # pooled answers, each pair both ways: a 5, b 1, tie 4 of 10; p_e = .25 + .01 + .16
    assert agreement.kappa == pytest.approx((0.4 - 0.42) / (1 - 0.42))


def test_agreement_by_pair_of_labelers_uses_each_ones_own_frequencies():
    pairs = agreement_by_labeler_pair(LABELS)
    assert set(pairs) == {("ann", "bob"), ("ann", "cyd"), ("bob", "cyd")}
    ann_bob = pairs[("ann", "bob")]  # ann a, a, tie; bob a, b, tie
    assert ann_bob.comparisons == 3 and ann_bob.agreement == pytest.approx(2 / 3)
    assert ann_bob.kappa == pytest.approx((2 / 3 - 1 / 3) / (1 - 1 / 3))  # p_e = 2/9 + 1/9
    assert pairs[("ann", "cyd")].agreement == 0.0


def test_no_comparison_labeled_twice_gives_no_agreement():
    agreement = labeler_agreement({"c1": {"ann": "a"}, "c2": {"bob": "skip", "ann": "b"}})
    assert (agreement.comparisons, agreement.label_pairs) == (0, 0)
    assert agreement.agreement is None and agreement.kappa is None
    assert agreement_by_labeler_pair({"c1": {"ann": "a"}}) == {}


def length(prompts, completions):
    return np.array([len(c) for c in completions], dtype=np.float32)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_agreement_with_the_gold_and_the_simulated_labeler():
    comparisons = {
        "c1": Comparison("p", "xx", "x"),  # gold prefers a by 1
        "c2": Comparison("p", "y", "yyy"),  # gold prefers b by 2
        "c3": Comparison("p", "zz", "ww"),  # a gold tie: left out
    }
    labels = {
        "c1": {"ann": "a", "bob": "tie"},
        "c2": {"ann": "a", "bob": "b"},
        "c3": {"ann": "a"},
    }
    result = gold_agreement(labels, comparisons, SimulatedLabeler(length, temperature=1.0))
    ann, bob, every = result["ann"], result["bob"], result["all"]
    assert (ann.labels, bob.labels, every.labels) == (2, 1, 3)
    assert (ann.human_gold, bob.human_gold, every.human_gold) == (0.5, 1.0, pytest.approx(2 / 3))
    assert ann.simulated_gold == pytest.approx((sigmoid(1) + sigmoid(2)) / 2)
    assert ann.human_simulated == pytest.approx((sigmoid(1) + 1 - sigmoid(2)) / 2)
    assert bob.human_simulated == pytest.approx(sigmoid(2))


def test_gold_agreement_without_answers():
    result = gold_agreement({}, {}, SimulatedLabeler(length))
    assert result["all"].labels == 0 and result["all"].human_gold is None
