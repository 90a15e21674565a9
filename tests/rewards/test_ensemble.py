import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="non-empty list"):
        EnsemblePredictor([])
    with pytest.raises(ValueError, match="non-empty list"):
        EnsemblePredictor("vader")


def test_a_bad_member_is_named():
    with pytest.raises(ValueError, match="shape"):
        EnsemblePredictor([constant([1.0]), constant([1.0, 2.0])])(["p"], ["a"])
    with pytest.raises(ValueError, match="non-finite"):
        EnsemblePredictor([constant([np.nan])])(["p"], ["a"])
