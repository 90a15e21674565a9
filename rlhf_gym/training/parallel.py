"""Data-parallel training of the supervised trainers (SFT, DPO, the reward model).

Started with ``accelerate launch`` or ``torchrun``, every process builds the same trainer on the
same dataset. Each epoch every process draws the same shuffled order (the same seed), cuts it
into global batches of ``batch_size`` and takes its contiguous, equal share of each
(:func:`local_batches`): together the processes see exactly the examples one process would.
DistributedDataParallel averages the processes' gradients, which is the gradient of a mean over
the global batch when each process's loss is the mean over its share (the shares are equal) or,
for SFT's mean over tokens, its token sum divided by the mean token count per process.

Equal shares need ``batch_size`` to be a multiple of the number of processes P, and cost at most
P - 1 examples an epoch: the last batch is cut to a multiple of P, so the last
``len(dataset) % P`` examples of each epoch's order sit that epoch out (other ones each epoch).
With one process nothing is cut and every wrapper here is the identity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rlhf_gym.distributed import DataParallel
from rlhf_gym.training.loop import shuffled_batches


def start_data_parallel(mixed_precision: str, batch_size: int, dataset_size: int) -> DataParallel:
    """This process's place in the launch, once equal shares are known to be possible: a
    ``batch_size`` divisible by the number of processes and at least one example each."""
    dp = DataParallel(mixed_precision)
    dp.local_size(batch_size, "batch_size")
    if dataset_size < dp.world_size:
        raise ValueError(
            f"the training dataset has {dataset_size} examples, fewer than the "
            f"{dp.world_size} processes that share it"
        )
    return dp


def local_batches(
    size: int,
    batch_size: int,
    generator: torch.Generator | np.random.Generator,
    dp: DataParallel,
) -> Iterator[Sequence[int]]:
    """This process's share of each global batch of :func:`shuffled_batches` (the whole batch
    with one process)."""
    for indices in shuffled_batches(size, batch_size, generator, dp.world_size):
        yield dp.shard(indices)


class TrainingForward(nn.Module):
    """The differentiable part of a training step as one module that owns the trained model:
    what a trainer hands to :meth:`DataParallel.prepare`.

    DDP all-reduces the gradients of what the wrapped module's forward computed, and accelerate
    autocasts that forward for mixed precision. Wrapping this instead of the caller's model
    leaves the model's own ``forward`` untouched, and covers steps that do not go through it
    (the reward scorers run the trunk and the head separately).

    Args:
        model: the trained model (a submodule, so DDP finds its trainable parameters).
        step: the computation, ``step(*inputs)``; it must use every trainable parameter.
    """

    def __init__(self, model: nn.Module, step: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, *inputs: Any) -> Any:
        return self.step(*inputs)
