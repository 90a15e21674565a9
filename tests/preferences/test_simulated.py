import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from rlhf_gym.preferences import (
    Comparison,
    SimulatedLabeler,
    bayes_optimal_accuracy,
    pair_up,
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


def _tied_gold(prompts, completions):
    return np.zeros(len(completions), dtype=np.float32)


def _groups(n_prompts: int, k: int) -> tuple[list[str], list[list[str]]]:
    """``k`` distinct completions per prompt, in the order they were 'sampled'."""
    prompts = [f"prompt {i}" for i in range(n_prompts)]
    return prompts, [[f"completion {j} of {i}" for j in range(k)] for i in range(n_prompts)]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_on_gold_ties_the_first_sampled_completion_wins_half_the_pairs(seed):
    """Pairing and labeling get the same user seed but draw from independent streams: on a gold
    tie the label must not follow the sampling order (it did when both drew one stream)."""
    prompts, groups = _groups(450, 4)  # 6 pairs a prompt: 2,700 pairs
    prompts2, groups2 = _groups(300, 5)  # 10 pairs a prompt: 3,000 pairs
    comparisons = pair_up(prompts + prompts2, groups + groups2, seed=seed)
    pairs = SimulatedLabeler(_tied_gold, temperature=0.1, seed=seed).label(comparisons)
    rank = {text: j for group in groups + groups2 for j, text in enumerate(group)}
    first_wins = sum(rank[p.chosen] < rank[p.rejected] for p in pairs)
    assert len(pairs) >= 4000
    interval = binomtest(first_wins, len(pairs)).proportion_ci(confidence_level=0.999)
    assert interval.low <= 0.5 <= interval.high


@pytest.mark.parametrize("seed", [0, 3])
def test_label_frequencies_match_the_probability_in_every_bin(seed):
    """Over pairs from pair_up with varied gold gaps, the share of ``a`` chosen in each bin of
    ``preference_probability`` is the bin's mean probability (a Poisson-binomial within 4 sd)."""
    prompts, groups = _groups(800, 5)
    comparisons = pair_up(prompts, groups, seed=seed)
    labeler = SimulatedLabeler(_spread_gold, temperature=0.5, seed=seed)
    labels = labeler.label(comparisons)
    chose_a = np.array([p.chosen == c.a for p, c in zip(labels, comparisons, strict=True)])
    p_a = preference_probability(*labeler.gold_scores(comparisons), 0.5)
    which = np.minimum((p_a * 10).astype(int), 9)
    for b in np.unique(which):
        in_bin = which == b
        mean, sd = p_a[in_bin].sum(), np.sqrt((p_a[in_bin] * (1 - p_a[in_bin])).sum())
        assert abs(chose_a[in_bin].sum() - mean) <= 4 * sd + 1, f"bin {b}"


def _spread_gold(prompts, completions):
    """A deterministic gold score spread over [-1, 1] by a hash of the text."""
    return np.array([(hash_text(c) % 2001) / 1000 - 1 for c in completions], dtype=np.float32)


def hash_text(text: str) -> int:
    return int.from_bytes(text.encode()[-6:], "little") * 2654435761 % 2**32
