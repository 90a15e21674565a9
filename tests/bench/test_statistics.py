"""The benchmark's statistics: hand-computed values, a direct numpy stratified bootstrap to
compare with, invariants, reproducibility, validation and the interval plot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rlhf_gym.bench.statistics import (
    Interval,
    aggregate,
    improvement,
    iqm,
    normalised_score,
    plot_intervals,
    probability_of_improvement,
)

FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def runs_by_tasks(runs: int, tasks: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, (runs, tasks), elements=FINITE)


# -- values against hand computation -------------------------------------------------------


def test_iqm_and_mean_of_a_known_array():
    scores = np.array([[0.0, 2.0, 3.0, 4.0], [5.0, 6.0, 9.0, 100.0]])  # (R=2, T=4)
    result = aggregate({"a": scores}, reps=200)["a"]
    # 8 scores; the IQM drops the 2 lowest (0, 2) and 2 highest (9, 100): mean(3, 4, 5, 6).
    assert result["iqm"].point == pytest.approx(4.5)
    assert result["mean"].point == pytest.approx(129 / 8)


def test_normalised_score_elementwise():
    gold = np.array([[1.0, 2.0], [3.0, 5.0]])
    reference = np.array([1.0, 0.0])  # per task (broadcast over runs)
    anchor = np.array([3.0, 4.0])
    expected = [[0.0, 0.5], [1.0, 1.25]]
    np.testing.assert_allclose(normalised_score(gold, reference, anchor), expected)
    assert float(normalised_score(2.0, 4.0, 0.0)) == pytest.approx(0.5)


def test_normalised_score_refuses_anchor_equal_to_reference():
    with pytest.raises(ValueError, match=r"anchor must differ from reference.*2\.0"):
        normalised_score([1.0, 2.0], [0.0, 2.0], [1.0, 2.0])


def test_probability_of_improvement_hand_cases():
    x = np.array([[2.0, 3.0], [4.0, 5.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0], [1.5, 2.5]])
    assert probability_of_improvement(x, y, reps=100).point == 1.0
    assert probability_of_improvement(y, x, reps=100).point == 0.0
    assert probability_of_improvement(x, x, reps=100).point == 0.5
    # Task 0: x (1, 3) vs y (2, 3): pairs 1<2, 1<3, 3>2, 3=3 -> (0 + 0 + 1 + 0.5) / 4 = 0.375.
    # Task 1: x (5, 5) vs y (1, 6): each 5 beats 1 and loses to 6 -> 2 / 4 = 0.5.
    mixed_x = np.array([[1.0, 5.0], [3.0, 5.0]])
    mixed_y = np.array([[2.0, 1.0], [3.0, 6.0]])
    result = probability_of_improvement(mixed_x, mixed_y, reps=100)
    assert result.point == pytest.approx((0.375 + 0.5) / 2)


# -- the stratified bootstrap ----------------------------------------------------------------


def numpy_stratified_bootstrap(groups, statistic, reps, seed, confidence=0.95):
    """Directly: each group's runs resampled with replacement within each task."""
    rng = np.random.default_rng(seed)
    resampled = []
    for values in groups:
        runs, tasks = values.shape
        index = rng.integers(0, runs, size=(reps, runs, tasks))  # (B, R, T)
        resampled.append(np.take_along_axis(values[None], index, axis=1))
    distribution = statistic(*resampled)  # (B,)
    tail = (1 - confidence) / 2 * 100
    return np.percentile(distribution, [tail, 100 - tail])


def run_dominated_scores(runs: int, tasks: int, seed: int) -> np.ndarray:
    """Scores where the run (seed) matters more than the task: resampling whole runs across
    tasks (a paired, unstratified bootstrap) would give a much wider interval."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(runs, 1)) + 0.1 * rng.normal(size=(runs, tasks))


def test_aggregate_intervals_match_a_direct_numpy_stratified_bootstrap():
    scores = run_dominated_scores(runs=5, tasks=6, seed=3)
    ours = aggregate({"a": scores}, reps=20000, seed=1)["a"]
    for name, statistic in [("iqm", iqm), ("mean", lambda s: s.mean(axis=(-2, -1)))]:
        low, high = numpy_stratified_bootstrap([scores], statistic, reps=20000, seed=2)
        assert ours[name].low == pytest.approx(low, abs=0.02), name
        assert ours[name].high == pytest.approx(high, abs=0.02), name
    # The comparison has power: resampling whole runs (not stratified by task) differs.
    rows = np.random.default_rng(4).integers(0, 5, size=(20000, 5))
    paired_means = scores[rows].mean(axis=(-2, -1))
    assert np.percentile(paired_means, 97.5) - ours["mean"].high > 0.1


def test_probability_of_improvement_interval_matches_a_direct_numpy_bootstrap():
    x = run_dominated_scores(runs=4, tasks=5, seed=5) + 0.3
    y = run_dominated_scores(runs=6, tasks=5, seed=6)

    def pairwise(a, b):  # (B, Rx, T), (B, Ry, T): share of pairs won, ties half
        wins = a[:, :, None, :] > b[:, None, :, :]
        ties = a[:, :, None, :] == b[:, None, :, :]
        return (wins + 0.5 * ties).mean(axis=(1, 2, 3))

    ours = probability_of_improvement(x, y, reps=20000, seed=1)
    assert ours.point == pytest.approx(pairwise(x[None], y[None])[0])
    low, high = numpy_stratified_bootstrap([x, y], pairwise, reps=20000, seed=2)
    assert ours.low == pytest.approx(low, abs=0.02)
    assert ours.high == pytest.approx(high, abs=0.02)


def test_intervals_contain_the_point_and_narrow_with_more_runs():
    rng = np.random.default_rng(0)
    widths = []
    for runs in (5, 80):
        scores = rng.normal(0.5, 0.2, size=(runs, 4))
        for interval in aggregate({"a": scores}, reps=500)["a"].values():
            assert interval.low <= interval.point <= interval.high
        widths.append(aggregate({"a": scores}, reps=500)["a"]["iqm"])
    assert widths[1].high - widths[1].low < (widths[0].high - widths[0].low) / 2
    better = probability_of_improvement(rng.normal(1, 1, (10, 4)), rng.normal(0, 1, (10, 4)))
    assert better.low <= better.point <= better.high


def test_a_single_run_per_task_gives_a_degenerate_interval():
    result = aggregate({"a": [[0.1, 0.9, 0.4]]})["a"]
    for interval in result.values():
        assert interval.low == interval.point == interval.high
    one_each = probability_of_improvement([[1.0, 0.0]], [[0.0, 0.0]])
    assert one_each == Interval(0.75, 0.75, 0.75)


def test_a_single_run_against_several_still_resamples_the_several():
    result = probability_of_improvement([[0.5, 0.5]], [[0.0, 1.0], [1.0, 0.0], [0.2, 0.7]])
    assert result.point == pytest.approx(0.5)
    assert result.low < 0.5 < result.high


def test_the_same_seed_gives_the_same_intervals():
    rng = np.random.default_rng(0)
    scores = {"a": rng.normal(size=(5, 3)), "b": rng.normal(size=(7, 3))}
    assert aggregate(scores, reps=300, seed=7) == aggregate(scores, reps=300, seed=7)
    assert aggregate(scores, reps=300, seed=7) != aggregate(scores, reps=300, seed=8)
    x, y = scores["a"], scores["b"]
    assert probability_of_improvement(x, y, reps=300, seed=3) == probability_of_improvement(
        x, y, reps=300, seed=3
    )


def test_interval_as_dict():
    assert Interval(0.5, 0.25, 0.75).as_dict() == {"point": 0.5, "low": 0.25, "high": 0.75}


# -- invariants ------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6).flatmap(lambda r: runs_by_tasks(r, 3)))
def test_iqm_lies_between_min_and_max(scores):
    value = float(iqm(scores))
    assert scores.min() - 1e-9 <= value <= scores.max() + 1e-9


@settings(max_examples=50, deadline=None)
@given(runs_by_tasks(3, 2), runs_by_tasks(4, 2))
def test_improvement_of_x_over_y_and_y_over_x_sum_to_one(x, y):
    assert float(improvement(x, y)) + float(improvement(y, x)) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, 5, elements=FINITE),
    st.floats(-10, 10).filter(lambda a: abs(a) > 1e-2),
    st.floats(-100, 100),
)
def test_normalised_score_is_invariant_to_an_affine_change_of_scale(gold, scale, shift):
    reference, anchor = -3.0, 7.0
    before = normalised_score(gold, reference, anchor)
    after = normalised_score(
        scale * gold + shift, scale * reference + shift, scale * anchor + shift
    )
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ({}, "non-empty mapping"),
        ({"a": [0.1, 0.2]}, r"a's scores must be a 2-D array .*shape \(2,\)"),
        ({"a": np.zeros((0, 3))}, r"at least one run .*shape \(0, 3\)"),
        ({"a": np.zeros((2, 0))}, r"one task.*shape \(2, 0\)"),
        ({"a": [[0.1, np.nan]]}, "a's score at run 0, task 1 must be finite, got nan"),
        ({"a": [[0.1, np.inf]]}, "must be finite, got inf"),
        ({"a": np.zeros((2, 3)), "b": np.zeros((2, 4))}, "number of tasks must be equal"),
    ],
)
def test_aggregate_rejects_bad_scores(scores, match):
    with pytest.raises(ValueError, match=match):
        aggregate(scores)


@pytest.mark.parametrize(
    ("settings_", "match"),
    [({"reps": 0}, "reps must be a positive integer"), ({"reps": 2.5}, "reps"),
     ({"confidence": 1.0}, r"confidence must be in \(0, 1\)"), ({"confidence": 0}, "confidence")],
)  # fmt: skip
def test_bad_settings_are_refused(settings_, match):
    with pytest.raises(ValueError, match=match):
        aggregate({"a": np.zeros((2, 2))}, **settings_)
    with pytest.raises(ValueError, match=match):
        probability_of_improvement(np.zeros((2, 2)), np.zeros((2, 2)), **settings_)


def test_probability_of_improvement_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same number of tasks"):
        probability_of_improvement(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="y's scores must be a 2-D array"):
        probability_of_improvement(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="x's score at run 1, task 0 must be finite"):
        probability_of_improvement([[0.0], [np.nan]], [[0.0]])


# -- the plot ----------------------------------------------------------------------------------


def test_plot_intervals_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    estimates = aggregate({"ppo": rng.normal(size=(4, 3)), "dpo": [[0.2, 0.1, 0.4]]}, reps=200)
    path = plot_intervals(estimates, tmp_path / "plots" / "intervals.png")
    assert path == tmp_path / "plots" / "intervals.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_intervals_refuses_empty_or_mismatched_estimates(tmp_path):
    with pytest.raises(ValueError, match="estimates must be a non-empty mapping"):
        plot_intervals({}, tmp_path / "x.png")
    point = Interval(0.0, 0.0, 0.0)
    mismatched = {"a": {"iqm": point, "mean": point}, "b": {"iqm": point}}
    with pytest.raises(ValueError, match="b's metrics must be the same"):
        plot_intervals(mismatched, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
