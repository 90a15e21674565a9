"""Named random streams: independent, reproducible, stable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlhf_gym.seeding import derived_seed, numpy_rng

EXPECTED_SAMPLING_SEED_0 = 3_725_690_565


@given(st.integers(0, 2**32 - 1))
def test_streams_reproduce_and_differ_by_purpose_and_seed(seed):
    first = numpy_rng(seed, "pairing").random(4)
    np.testing.assert_array_equal(first, numpy_rng(seed, "pairing").random(4))
    assert not np.array_equal(first, numpy_rng(seed, "labeling").random(4))
    assert not np.array_equal(first, numpy_rng(seed + 1, "pairing").random(4))
    assert not np.array_equal(first, np.random.default_rng(seed).random(4))  # the raw seed's


def test_two_streams_of_one_seed_are_uncorrelated():
    a, b = numpy_rng(0, "pairing").random(20_000), numpy_rng(0, "labeling").random(20_000)
    # |r| of independent uniforms has standard error 1/sqrt(n) = 0.007
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.035


def test_derived_seeds_fit_every_seeding_api_and_are_stable():
    seeds = [derived_seed(s, "sampling") for s in range(100)]
    assert all(0 <= s < 2**32 for s in seeds) and len(set(seeds)) == 100
    np.random.seed(seeds[0])  # numpy's legacy seeding (SB3) refuses 2**32 and above
    # a fixed value: a change of the derivation would silently change every run's draws
    assert seeds[0] == EXPECTED_SAMPLING_SEED_0
    assert derived_seed(0, "sampling") != derived_seed(0, "labeling")


def test_empty_purpose_is_refused():
    with pytest.raises(ValueError, match="non-empty purpose"):
        numpy_rng(0, "")
