"""Configuration of Direct Preference Optimisation."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlhf_gym.distributed import mixed_precision_field, require_mixed_precision
from rlhf_gym.validation import require, require_in, require_non_negative, require_positive


@dataclass
class DPOConfig:
    """Settings of :class:`rlhf_gym.training.DPOTrainer` (sigmoid loss, Rafailov et al. 2023)."""

    beta: float = field(
        default=0.1,
        metadata={
            "help": "Strength of the implicit KL constraint: higher stays closer to the reference."
        },
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={
            "help": "Assumed probability that a label is flipped (conservative DPO), in [0, 0.5)."
        },
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate."})
    num_train_epochs: int = field(default=1, metadata={"help": "Passes over the preference pairs."})
    batch_size: int = field(
        default=8,
        metadata={
            "help": "Pairs per optimiser step over all processes (each takes an equal share, "
            "so a multiple of the number of processes)."
        },
    )
    max_length: int = field(
        default=64, metadata={"help": "Tokens per prompt + response; longer pairs are cut."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip."})
    freeze_layers: int = field(
        default=0,
        metadata={
            "help": "Freeze the lower N decoder layers (and then the embeddings), the same rule "
            "as the RL agents' (rlhf_gym.models.freeze_lower_layers)."
        },
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
        require_positive(
            self, "beta", "learning_rate", "num_train_epochs", "batch_size", "max_grad_norm"
        )
        require_in(self, "label_smoothing", 0.0, 0.5, high_open=True)
        require_non_negative(self, "freeze_layers")
        require("max_length", self.max_length, self.max_length >= 2, "at least 2")
        require_mixed_precision(self)
