"""Data parallelism on Hugging Face ``accelerate`` (PyTorch distributed underneath).

Started with ``accelerate launch`` or ``torchrun``, every process builds the same trainer; each
one rolls out or reads its own contiguous share of the global batch, gradients are all-reduced
by DistributedDataParallel, and every statistic the update or the logs depend on (advantage
whitening, loss denominators, metric means) is computed over the global batch with the
reductions here. Started plainly, there is one process and each reduction is the identity, so
single-process code pays nothing.
"""

from __future__ import annotations

import os
from dataclasses import field
from typing import Any

from rlhf_gym.lazy import lazy_exports
from rlhf_gym.validation import require

MIXED_PRECISION = ("no", "bf16", "fp16")
"""Mixed-precision modes (accelerate's names); bf16 is the one to use on recent GPUs."""


def launched_processes() -> int:
    """How many processes the launcher started (its ``WORLD_SIZE``; 1 when started plainly),
    read without joining a process group or importing torch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def mixed_precision_field() -> Any:
    """Every trainer config's ``mixed_precision`` setting (one definition, one help text)."""
    return field(
        default="no",
        metadata={
            "help": "Autocast of the training and evaluation forward passes: 'no', 'bf16' "
            "(recent GPUs; TRL's bf16=True) or 'fp16' (accelerate's setting, so the same "
            "name as `accelerate launch --mixed_precision`). The weights and the optimiser "
            "state keep their dtype; log-probs and losses are float32."
        },
    )


def require_mixed_precision(config: Any) -> None:
    """``config.mixed_precision`` is one of accelerate's modes."""
    value = config.mixed_precision
    require("mixed_precision", value, value in MIXED_PRECISION, f"one of {MIXED_PRECISION}")


# DataParallel needs torch and accelerate: imported on first use, so configs stay light
__getattr__, __dir__ = lazy_exports(__name__, {"DataParallel": "rlhf_gym.distributed.group"})
