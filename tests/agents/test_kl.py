"""The KL budget that ends training early."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.kl import KLBudget

KLS = st.lists(st.floats(-1.0, 20.0, allow_nan=False), max_size=30)


@given(KLS, st.floats(0.1, 10.0), st.integers(1, 6))
def test_spent_once_the_mean_of_the_last_window_reaches_the_budget(kls, budget, window):
    stop = KLBudget(budget, window)
    for kl in kls:
        stop.update(kl)
    recent = kls[-window:]
    assert stop.running_kl == pytest.approx(np.mean(recent) if recent else 0.0)
    assert stop.spent == (bool(recent) and stop.running_kl >= budget)


@given(KLS)
def test_no_budget_never_stops(kls):
    stop = KLBudget(None)
    for kl in kls:
        stop.update(kl)
    assert not stop.spent


def test_the_window_smooths_one_noisy_batch():
    stop = KLBudget(4.0, window=3)
    for kl in (1.0, 1.0, 9.0):  # one batch over the budget; the mean (3.67) is not
        stop.update(kl)
    assert not stop.spent
    stop.update(5.0)  # mean of (1, 9, 5) = 5
    assert stop.spent


def test_state_round_trips():
    stop = KLBudget(2.0, window=2)
    for kl in (0.5, 1.5, 2.5):
        stop.update(kl)
    restored = KLBudget(2.0, window=2)
    restored.load_state_dict(stop.state_dict())
    assert restored.recent == [1.5, 2.5] and restored.spent


@pytest.mark.parametrize(
    ("budget", "window", "message"),
    [(0.0, 5, "kl_budget must be > 0"), (1.0, 0, "kl_budget_window must be >= 1")],
)
def test_bad_settings_are_refused(budget, window, message):
    with pytest.raises(ValueError, match=message):
        KLBudget(budget, window)
