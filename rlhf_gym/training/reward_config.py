"""RewardConfig: every knob of reward-model training, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlhf_gym.distributed import mixed_precision_field, require_mixed_precision
from rlhf_gym.validation import require, require_non_negative, require_positive

EARLY_STOPPING_METRICS = ("loss", "accuracy")


@dataclass
class RewardConfig:
    """Settings of :class:`~rlhf_gym.training.RewardModelTrainer`."""

    learning_rate: float = field(
        default=1e-4,
        metadata={
            "help": "AdamW learning rate, decayed linearly to 0 over training. "
            "Head-only training on frozen features takes larger values (~1e-2)."
        },
    )
    num_train_epochs: int = field(default=3, metadata={"help": "Passes over the training pairs."})
    batch_size: int = field(
        default=32,
        metadata={
            "help": "Pairs per optimisation step over all processes (each takes an equal share, "
            "so a multiple of the number of processes)."
        },
    )
    max_length: int = field(
        default=128, metadata={"help": "Tokens kept from the end of prompt + response."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    adam_epsilon: float = field(default=1e-5, metadata={"help": "AdamW epsilon."})
    max_grad_norm: float | None = field(
        default=1.0, metadata={"help": "Clip the gradient norm to this value; None: no clipping."}
    )
    use_margin: bool = field(
        default=False,
        metadata={
            "help": "Subtract each pair's margin from the reward gap in the loss "
            "(pairs without a margin use 0)."
        },
    )
    center_rewards_coefficient: float | None = field(
        default=None,
        metadata={
            "help": "Weight of mean((r_chosen + r_rejected)^2), which keeps scores "
            "centred on 0; None: off."
        },
    )
    freeze_trunk: bool = field(
        default=False,
        metadata={
            "help": "Train only the linear head on the frozen trunk's pooled features "
            "(computed once): fast, and the only option for large trunks on a CPU."
        },
    )
    trainable_layers: int | None = field(
        default=None,
        metadata={
            "help": "Train only the top N decoder layers, the final norm and the head; the "
            "frozen layers below run once per text and their output is cached. None: train "
            "everything. The middle ground for a pretrained trunk on a CPU: its language "
            "knowledge, and a fraction of the cost of fine-tuning it whole."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after this many epochs without a better held-out "
            "early_stopping_metric and restore the best epoch's weights; None: train all "
            "epochs. Needs an eval dataset."
        },
    )
    early_stopping_metric: str = field(
        default="loss",
        metadata={
            "help": "What picks the best epoch: 'loss' (lowest held-out loss) or 'accuracy' "
            "(highest held-out pairwise accuracy). With noisy labels the held-out loss rises "
            "as scores grow confident while the ranking still improves: use 'accuracy' there."
        },
    )
    eval_batch_size: int = field(default=128, metadata={"help": "Texts per scoring pass."})
    seed: int = field(
        default=0,
        metadata={
            "help": "Seed of shuffling and head initialisation (every process draws the same)."
        },
    )
    mixed_precision: str = mixed_precision_field()
    progress_bar: bool = field(
        default=True, metadata={"help": "Show a tqdm progress bar (on the main process)."}
    )

    def __post_init__(self) -> None:
        require_positive(
            self, "learning_rate", "num_train_epochs", "batch_size", "max_length",
            "adam_epsilon", "eval_batch_size", "early_stopping_patience", "trainable_layers",
        )  # fmt: skip
        require_non_negative(self, "weight_decay", "max_grad_norm", "center_rewards_coefficient")
        if self.trainable_layers is not None and self.freeze_trunk:
            raise ValueError(
                "freeze_trunk=True trains the head alone; it cannot be combined with "
                "trainable_layers (use one or the other)"
            )
        metric = self.early_stopping_metric
        require(
            "early_stopping_metric", metric, metric in EARLY_STOPPING_METRICS,
            f"one of {EARLY_STOPPING_METRICS}",
        )  # fmt: skip
        require_mixed_precision(self)
