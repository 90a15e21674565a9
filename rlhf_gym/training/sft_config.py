"""Configuration of supervised fine-tuning on demonstrations."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlhf_gym.distributed import mixed_precision_field, require_mixed_precision
from rlhf_gym.validation import require, require_non_negative, require_positive


@dataclass
class SFTConfig:
    """Settings of :class:`rlhf_gym.training.SFTTrainer`."""

    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW learning rate."})
    num_train_epochs: int = field(default=3, metadata={"help": "Passes over the demonstrations."})
    batch_size: int = field(
        default=16,
        metadata={
            "help": "Demonstrations per optimiser step over all processes (each takes an equal "
            "share, so a multiple of the number of processes)."
        },
    )
    max_length: int = field(
        default=64, metadata={"help": "Tokens per prompt + completion; longer pairs are cut."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip."})
    completion_only_loss: bool = field(
        default=True,
        metadata={"help": "Train on completion tokens (and EOS) only, not on the prompt."},
    )
    seed: int = field(
        default=0,
        metadata={"help": "Seed of the shuffling (every process draws the same order)."},
    )
    mixed_precision: str = mixed_precision_field()
    progress_bar: bool = field(
        default=True, metadata={"help": "Show a tqdm progress bar (on the main process)."}
    )

    def __post_init__(self) -> None:
        require_positive(self, "learning_rate", "num_train_epochs", "batch_size", "max_grad_norm")
        require("max_length", self.max_length, self.max_length >= 2, "at least 2")
        require_non_negative(self, "weight_decay")
        require_mixed_precision(self)
