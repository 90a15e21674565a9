import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.preferences import (
    Comparison,
    SimulatedLabeler,
    bayes_optimal_accuracy,
    preference_probability,
)


def length_gold(prompts, completions):
    return np.array([len(c) for c in completions], dtype=np.float32)


def test_probability_is_the_bradley_terry_sigmoid():
    p = preference_probability(np.array([1.0, 0.0, 2.0]), np.array([0.0, 0.0, 0.0]), 0.5)
    np.testing.assert_allclose(p, [1 / (1 + np.exp(-2)), 0.5, 1 / (1 + np.exp(-4))], rtol=1e-12)
    np.testing.assert_array_equal(
        preference_probability(np.array([1.0, 0.0, -1.0]), np.zeros(3), 0.0), [1.0, 0.5, 0.0]
    )


def test_bayes_optimal_accuracy_hand_computed():
    gold_a, gold_b = np.array([1.0, 0.0, 0.3]), np.array([0.0, 1.0, 0.3])
    expected = (2 / (1 + np.exp(-1.0)) + 0.5) / 3
    assert bayes_optimal_accuracy(gold_a, gold_b, 1.0) == pytest.approx(expected)
    assert bayes_optimal_accuracy(gold_a, gold_b, 0.0) == pytest.approx((1 + 1 + 0.5) / 3)


@settings(max_examples=20, deadline=None)
@given(st.floats(-2, 2), st.floats(0.05, 2))
def test_label_frequency_matches_the_probability(gap, temperature):
    labeler = SimulatedLabeler(length_gold, temperature=temperature, seed=0)
    labeler.gold = lambda p, c: np.array([gap if t == "a" else 0.0 for t in c], dtype=np.float32)
    pairs = labeler.label([Comparison("p", "a", "b")] * 4000)
    freq = np.mean([pair.chosen == "a" for pair in pairs])
    expected = preference_probability(np.array([gap]), np.array([0.0]), temperature)[0]
    assert abs(freq - expected) < 0.04


def test_noiseless_labeler_always_prefers_higher_gold_and_seeds_reproduce():
    comparisons = [Comparison("p", "x" * i, "y" * (i + 1)) for i in range(1, 30)]
    exact = SimulatedLabeler(length_gold, temperature=0.0).label(comparisons)
    assert all(len(p.chosen) > len(p.rejected) for p in exact)
    noisy = [
        SimulatedLabeler(length_gold, temperature=5.0, seed=s).label(comparisons) for s in (1, 1, 2)
    ]
    assert noisy[0] == noisy[1] != noisy[2]


@pytest.mark.parametrize("temperature", [-0.1, float("nan"), float("inf")])
def test_bad_temperature_raises(temperature):
    with pytest.raises(ValueError, match="temperature must be finite and >= 0"):
        SimulatedLabeler(length_gold, temperature=temperature)
