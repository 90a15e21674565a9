"""The data-parallel process group: :class:`DataParallel` (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import torch
from accelerate import Accelerator
from torch import nn

from rlhf_gym.distributed import MIXED_PRECISION
from rlhf_gym.seeding import derived_seed

T = TypeVar("T")


class DataParallel:
    """This process's place in a data-parallel group, from the launcher's environment.

    Args:
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (autocast of forward passes, see
            :meth:`autocast`). One process can hold one setting only: accelerate keeps it
            process-wide.
    """

    def __init__(self, mixed_precision: str = "no") -> None:
        if mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {mixed_precision!r}"
            )
        # Without a GPU, accelerate only forms a CPU (gloo) group when told it is on CPU.
        cpu = not torch.cuda.is_available()
        self.accelerator = Accelerator(mixed_precision=mixed_precision, cpu=cpu)

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def is_main_process(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and progress bars."""
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def local_size(self, global_size: int, what: str) -> int:
        """This process's share of ``global_size`` items; every share is the same size, so a
        mean over the global batch is the mean of the processes' means."""
        if global_size % self.world_size:
            raise ValueError(
                f"{what}={global_size} must be divisible by the number of processes "
                f"({self.world_size}): each process takes an equal share"
            )
        return global_size // self.world_size

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        """This process's contiguous share of ``items`` (``len(items)`` divisible by the
        world size)."""
        size = self.local_size(len(items), "the number of items")
        return items[self.rank * size : (self.rank + 1) * size]

    def process_seed(self, seed: int, purpose: str | None = None) -> int:
        """This process's own seed for ``purpose`` (``derived_seed``), or for the global RNGs
        (``purpose=None``: ``seed`` itself). Rank 0 gets the single-process value, so one
        process reproduces a run without the launcher."""
        if self.rank == 0:
            return seed if purpose is None else derived_seed(seed, purpose)
        return derived_seed(seed, f"{purpose or 'global'}/rank{self.rank}")

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module`` on this process's device; wrapped in DistributedDataParallel when there are
        several processes, so that backward all-reduces (averages) its gradients. Call the
        returned module's ``forward`` in training: that is what registers the all-reduce."""
        return self.accelerator.prepare_model(module)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of ``tensor`` over the processes (a new tensor)."""
        if self.world_size == 1:
            return tensor
        return self.accelerator.reduce(tensor.detach().clone(), reduction="sum")

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The processes' ``tensor`` (n, ...) concatenated in rank order: (world * n, ...)."""
        if self.world_size == 1:
            return tensor
        return self.accelerator.gather(tensor.contiguous())

    def gather_objects(self, value: Any) -> list[Any]:
        """Every process's (picklable) ``value``, in rank order."""
        if self.world_size == 1:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def reduce_metrics(
        self, metrics: Mapping[str, float], reductions: Mapping[str, str] | None = None
    ) -> dict[str, float]:
        """Metrics of the global batch from every process's local ones, in one collective.

        A metric is averaged over processes (right for means over equal shares) unless
        ``reductions`` names it ``"sum"``, ``"min"`` or ``"max"``.
        """
        if self.world_size == 1:
            return dict(metrics)
        reductions = reductions or {}
        names = sorted(metrics)  # the same order on every process
        local = torch.tensor([float(metrics[n]) for n in names], dtype=torch.float64)
        # min and max ride on the sum: gather everything once and reduce here
        table = self.gather(local[None].to(self.device)).cpu()  # (world, n)
        combine = {"mean": torch.mean, "sum": torch.sum, "min": torch.amin, "max": torch.amax}
        return {
            name: float(combine[reductions.get(name, "mean")](table[:, i]))
            for i, name in enumerate(names)
        }

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward passes' mixed-precision context (a no-op with ``"no"``)."""
        return self.accelerator.autocast()

    def no_sync(self, module: nn.Module, sync: bool) -> AbstractContextManager[Any]:
        """Skip the gradient all-reduce of this backward unless ``sync`` (gradient accumulation:
        sync only the last micro-batch of a minibatch)."""
        if sync or self.world_size == 1:
            return nullcontext()
        return module.no_sync()

    def wait(self) -> None:
        """Barrier: every process reaches this line before any goes on."""
        self.accelerator.wait_for_everyone()
