import math

import numpy as np
import pytest
import torch
from torch import nn

from rlhf_gym.training.loop import (
    EarlyStopping,
    optimizer_step,
    shuffled_batches,
    steps_per_epoch,
)


@pytest.mark.parametrize(
    "make_generator",
    [lambda: torch.Generator().manual_seed(3), lambda: np.random.default_rng(3)],
    ids=["torch", "numpy"],
)
def test_shuffled_batches_cover_every_index_once_in_a_seeded_order(make_generator):
    batches = list(shuffled_batches(10, 4, make_generator()))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert batches == list(shuffled_batches(10, 4, make_generator()))


def test_shuffled_batches_draw_a_fresh_order_each_epoch():
    rng = np.random.default_rng(0)
    epochs = [list(shuffled_batches(20, 20, rng)) for _ in range(2)]
    assert epochs[0] != epochs[1]


def test_shuffled_batches_for_processes_cut_the_last_batch_to_equal_shares():
    alone = list(shuffled_batches(11, 4, torch.Generator().manual_seed(3)))
    shared = list(shuffled_batches(11, 4, torch.Generator().manual_seed(3), world_size=2))
    assert [len(b) for b in alone] == [4, 4, 3]
    assert shared == [alone[0], alone[1], alone[2][:2]]  # the same order, its last index out
    # 9 examples over 4 processes: the last batch would hold 1, under a share each; left out
    assert [len(b) for b in shuffled_batches(9, 4, np.random.default_rng(0), 4)] == [4, 4]


@pytest.mark.parametrize(
    ("size", "world_size", "steps"), [(11, 1, 3), (11, 2, 3), (9, 2, 2), (9, 4, 2), (3, 4, 0)]
)
def test_steps_per_epoch_counts_the_batches_cut(size, world_size, steps):
    assert steps_per_epoch(size, 4, world_size) == steps
    batches = shuffled_batches(size, 4, np.random.default_rng(0), world_size)
    assert len(list(batches)) == steps


def _sgd_step(max_grad_norm: float | None) -> tuple[float, torch.Tensor]:
    """One SGD step (lr 1) from w = 0 on loss = 3 w0 + 4 w1: the gradient (3, 4) has norm 5."""
    layer = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(layer.weight)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    loss = (layer.weight * torch.tensor([3.0, 4.0])).sum()
    norm = optimizer_step(loss, layer, optimizer, max_grad_norm)
    assert layer.weight.grad is None  # zeroed for the next step
    return norm, layer.weight.detach().squeeze(0)


def test_optimizer_step_clips_to_max_grad_norm():
    norm, weight = _sgd_step(1.0)
    assert norm == pytest.approx(5.0)
    torch.testing.assert_close(weight, torch.tensor([-0.6, -0.8]))


def test_optimizer_step_without_max_grad_norm_does_not_clip():
    norm, weight = _sgd_step(None)
    assert norm == pytest.approx(5.0)
    torch.testing.assert_close(weight, torch.tensor([-3.0, -4.0]))


def _run(metrics: list[float], patience: int, higher_is_better: bool) -> tuple[int, float]:
    """Epochs run before stopping, and the parameter value restored (epoch e sets it to e)."""
    param = nn.Parameter(torch.zeros(()))
    stopping = EarlyStopping([param], patience, higher_is_better)
    epochs = 0
    for epoch, metric in enumerate(metrics, start=1):
        epochs = epoch
        with torch.no_grad():
            param.fill_(epoch)
        if stopping.should_stop(metric):
            break
    stopping.restore_best()
    return epochs, param.item()


def test_early_stopping_stops_after_patience_epochs_without_a_lower_metric():
    # best at epoch 2; epochs 3 and 4 are no better (a tie is not better) -> stop at 4
    assert _run([3.0, 2.0, 2.5, 2.0, 1.0], patience=2, higher_is_better=False) == (4, 2.0)


def test_early_stopping_resets_its_patience_on_a_new_best():
    assert _run([3.0, 2.0, 2.5, 1.5, 1.6, 1.7], patience=2, higher_is_better=False) == (6, 4.0)


def test_early_stopping_on_a_metric_to_maximise():
    assert _run([0.5, 0.9, 0.8, 0.7], patience=2, higher_is_better=True) == (4, 2.0)


def test_early_stopping_never_counts_nan_as_better():
    assert _run([math.nan, 1.0, math.nan], patience=2, higher_is_better=False) == (3, 2.0)
    # nothing was ever better than -inf: the last values stay
    assert _run([math.nan, math.nan], patience=5, higher_is_better=True) == (2, 2.0)


def test_early_stopping_needs_a_positive_patience():
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        EarlyStopping([], 0, higher_is_better=False)
