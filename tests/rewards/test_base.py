"""make_reward_predictor (name, instance, callable, entry-point plug-in) and check_scores."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest

from rlhf_gym.rewards import (
    ENTRY_POINT_GROUP,
    RewardPredictor,
    VaderSentiment,
    available_predictors,
    check_scores,
    make_reward_predictor,
)


class LengthReward:
    """A third-party predictor: the completion's length times a factor."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def __call__(self, prompts, completions):
        return np.asarray([self.factor * len(c) for c in completions], dtype=np.float32)


@pytest.fixture
def plugin(installed_plugins):
    """Install LengthReward as the plug-in "charcount" without installing a distribution."""
    entry = EntryPoint(name="charcount", value=f"{__name__}:LengthReward", group=ENTRY_POINT_GROUP)
    installed_plugins[ENTRY_POINT_GROUP] = [entry]
    return installed_plugins


def test_builtins_win_over_plugins_of_the_same_name(installed_plugins):
    entry = EntryPoint(name="vader", value=f"{__name__}:LengthReward", group=ENTRY_POINT_GROUP)
    installed_plugins[ENTRY_POINT_GROUP] = [entry]
    assert isinstance(make_reward_predictor("vader"), VaderSentiment)
    assert available_predictors().count("vader") == 1


def test_builtin_name():
    predictor = make_reward_predictor("vader")
    assert isinstance(predictor, VaderSentiment) and isinstance(predictor, RewardPredictor)
    assert "vader" in available_predictors()


def test_instance_and_callable_pass_through():
    instance = LengthReward()
    assert make_reward_predictor(instance) is instance

    def plain(prompts, completions):
        return np.zeros(len(prompts), np.float32)

    assert make_reward_predictor(plain) is plain


def test_entry_point_plugin_is_found_and_built_with_kwargs(plugin):
    predictor = make_reward_predictor("charcount", factor=2.0)
    assert isinstance(predictor, LengthReward) and predictor.factor == 2.0
    np.testing.assert_array_equal(predictor(["p", "q"], ["abc", ""]), [6.0, 0.0])
    assert "charcount" in available_predictors() and "vader" in available_predictors()
    assert available_predictors() == sorted(available_predictors())


def test_unknown_name_lists_what_is_available(plugin):
    with pytest.raises(
        ValueError, match=r"unknown reward predictor 'oracle': .* of \[.*'charcount'"
    ):
        make_reward_predictor("oracle")


def test_kwargs_only_with_a_name():
    with pytest.raises(TypeError, match="only used when the predictor is given by name"):
        make_reward_predictor(LengthReward(), factor=3.0)


@pytest.mark.parametrize("spec", [3, None, ["vader"]])
def test_not_a_predictor(spec):
    with pytest.raises(TypeError, match="must be a name, a RewardPredictor or a callable"):
        make_reward_predictor(spec)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.5, -1], [0.5, -1.0]),
        (np.array([1, 2], dtype=np.int64), [1.0, 2.0]),
        (np.array([0.25, 3.0], dtype=np.float64), [0.25, 3.0]),
        ((7.0, 8.0), [7.0, 8.0]),
    ],
)
def test_check_scores_returns_float32(scores, expected):
    array = check_scores(scores, 2)
    assert array.dtype == np.float32 and array.shape == (2,)
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(
    ("scores", "error", "match"),
    [
        ([1.0], ValueError, r"shape \(1,\) for 2 completions; expected shape \(2,\)"),
        ([[1.0, 2.0]], ValueError, r"shape \(1, 2\)"),
        (1.0, ValueError, r"shape \(\)"),
        ([1.0, np.nan], ValueError, r"non-finite scores at positions \[1\]"),
        ([-np.inf, 0.0], ValueError, r"positions \[0\]"),
        ([1e39, 0.0], ValueError, "non-finite"),  # overflows float32
        (["1.0", "2.0"], TypeError, "expected numbers"),
        ([True, False], TypeError, "expected numbers"),
        ([None, None], TypeError, "expected numbers"),
        ([[1.0], [2.0, 3.0]], TypeError, "not numbers"),
    ],
)
def test_check_scores_rejects(scores, error, match):
    with pytest.raises(error, match=match), np.errstate(over="ignore"):
        check_scores(scores, 2, "my-predictor")


def test_check_scores_names_the_source():
    with pytest.raises(ValueError, match=r"^'my-predictor' returned"):
        check_scores([1.0], 2, "my-predictor")
