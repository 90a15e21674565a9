"""Small pieces the supervised trainers (SFT, DPO) share: shuffled batches, the optimiser step."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn
from tqdm.auto import tqdm


def shuffled_batches(size: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Indices ``0..size-1`` in a fresh random order, cut into batches (the last may be short)."""
    order = torch.randperm(size, generator=generator).tolist()
    for start in range(0, size, batch_size):
        yield order[start : start + batch_size]


def optimizer_step(
    loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float
) -> float:
    """Backward, clip, step, zero; returns the gradient norm before clipping."""
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return params


def progress(total_examples: int, batch_size: int, epochs: int, enabled: bool, desc: str) -> tqdm:
    """A bar over every optimiser step of the run, with an ETA."""
    steps = epochs * math.ceil(total_examples / batch_size)
    return tqdm(total=steps, disable=not enabled, desc=desc, unit="step")
