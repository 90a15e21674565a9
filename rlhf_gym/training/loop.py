"""Small pieces the supervised trainers (SFT, DPO, reward model) share: shuffled batches, the
optimiser step, early stopping on a held-out metric."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def shuffled_batches(
    size: int,
    batch_size: int,
    generator: torch.Generator | np.random.Generator,
    world_size: int = 1,
) -> Iterator[list[int]]:
    """Indices ``0..size-1`` in a fresh random order, cut into batches (the last may be short).

    The order is drawn from ``generator``: ``torch.randperm`` or numpy's ``permutation``. For
    ``world_size`` processes taking equal shares of each batch, the last batch is cut to a
    multiple of ``world_size``: the last ``size % world_size`` indices of the order are left out.
    """
    if isinstance(generator, np.random.Generator):
        order = generator.permutation(size).tolist()
    else:
        order = torch.randperm(size, generator=generator).tolist()
    used = size - size % world_size
    for start in range(0, used, batch_size):
        yield order[start : min(start + batch_size, used)]


def steps_per_epoch(size: int, batch_size: int, world_size: int = 1) -> int:
    """How many batches :func:`shuffled_batches` cuts."""
    return math.ceil((size - size % world_size) / batch_size)


def optimizer_step(
    loss: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    max_grad_norm: float | None,
) -> float:
    """Backward, clip (unless ``max_grad_norm`` is None), step, zero; returns the gradient norm
    before clipping."""
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    if max_grad_norm is None:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    else:
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return params


def progress(epoch_steps: int, epochs: int, enabled: bool, desc: str) -> tqdm:
    """A bar over every optimiser step of the run, with an ETA."""
    return tqdm(total=epochs * epoch_steps, disable=not enabled, desc=desc, unit="step")


class EarlyStopping:
    """Keeps a copy of ``params`` at the epoch with the best held-out metric, and says when
    ``patience`` epochs in a row have not beaten it.

    Call :meth:`should_stop` once per epoch with the metric; :meth:`restore_best` copies the
    best epoch's values back into the parameters.
    """

    def __init__(
        self, params: Sequence[nn.Parameter], patience: int, higher_is_better: bool
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.params, self.patience = list(params), patience
        self.sign = 1.0 if higher_is_better else -1.0
        self.best = -math.inf  # of ``sign * metric``
        self.best_state: list[torch.Tensor] | None = None
        self.stale = 0  # epochs since the best

    def should_stop(self, metric: float) -> bool:
        """Record one epoch's metric (a NaN never counts as better)."""
        if self.sign * metric > self.best:
            self.best, self.stale = self.sign * metric, 0
            self.best_state = [p.detach().clone() for p in self.params]
        else:
            self.stale += 1
        return self.stale >= self.patience

    def restore_best(self) -> None:
        """Put the best epoch's values back (nothing to do before an epoch beat ``-inf``)."""
        if self.best_state is None:
            return
        with torch.no_grad():
            for param, saved in zip(self.params, self.best_state, strict=True):
                param.copy_(saved)
