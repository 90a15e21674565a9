import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlhf_gym.rewards import EnsemblePredictor, make_reward_predictor


def constant(values):
    return lambda prompts, completions: np.asarray(values, dtype=np.float32)


def test_mean_and_min_combine_per_completion():
    members = [constant([1.0, -1.0]), constant([3.0, 0.0])]
    np.testing.assert_allclose(EnsemblePredictor(members)(["p", "q"], ["a", "b"]), [2.0, -0.5])
    np.testing.assert_allclose(
        EnsemblePredictor(members, reduce="min")(["p", "q"], ["a", "b"]), [1.0, -1.0]
    )


def test_members_by_name_and_through_the_registry():
    ensemble = make_reward_predictor("ensemble", members=["length", "keyword"], reduce="min")
    scores = ensemble(["p"], ["delicious fresh bread and soup with sweet butter on top today"])
    assert scores.shape == (1,) and scores.dtype == np.float32


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="reduce must be one of"):
        EnsemblePredictor([constant([1.0])], reduce="max")
    with pytest.raises(ValueError, match="uncertainty_coef must be >= 0"):
        EnsemblePredictor([constant([1.0])], reduce="mean-minus-std", uncertainty_coef=-1.0)
    with pytest.raises(ValueError, match="non-empty list"):
        EnsemblePredictor([])
    with pytest.raises(ValueError, match="non-empty list"):
        EnsemblePredictor("vader")


def test_a_bad_member_is_named():
    with pytest.raises(ValueError, match="shape"):
        EnsemblePredictor([constant([1.0]), constant([1.0, 2.0])])(["p"], ["a"])
    with pytest.raises(ValueError, match="non-finite"):
        EnsemblePredictor([constant([np.nan])])(["p"], ["a"])


@given(
    st.lists(
        st.tuples(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10)),
        min_size=1,
        max_size=6,
    ),
    st.floats(0, 3),
)
def test_uncertainty_weighted_lies_between_worst_case_and_mean_as_lambda_grows(rows, coef):
    """mean - lambda * std: the mean at lambda 0, lower as lambda grows, and for two members
    at lambda 1 exactly their minimum (std = |a - b| / 2)."""
    columns = np.asarray(rows, dtype=np.float32).T  # (3 members, N)
    members = [constant(column) for column in columns]
    texts = (["p"] * len(rows), ["c"] * len(rows))
    mean = EnsemblePredictor(members)(*texts)
    weighted = EnsemblePredictor(members, "mean-minus-std", uncertainty_coef=coef)(*texts)
    std = EnsemblePredictor(members).disagreement(*texts)
    np.testing.assert_allclose(weighted, mean - coef * std, rtol=1e-5, atol=1e-4)
    assert (weighted <= mean + 1e-4).all()
    pair = EnsemblePredictor(members[:2], "mean-minus-std", uncertainty_coef=1.0)(*texts)
    worst = EnsemblePredictor(members[:2], "min")(*texts)
    np.testing.assert_allclose(pair, worst, rtol=1e-5, atol=1e-4)
