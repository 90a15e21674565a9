"""The settings every native trainer shares (TokenPPO, GRPO, RLOO, REINFORCE): sampling,
the optimiser, what trains, and where output goes; each trainer's config adds its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from agents.kl import KLBudget, KLController, make_kl_controller
from rlhf_gym.distributed import mixed_precision_field, require_mixed_precision
from rlhf_gym.validation import require, require_non_negative, require_positive

REPORT_TO = ("csv", "tensorboard")


@dataclass
class NativeTrainerConfig:
    """Shared fields, with help text, validated in ``__post_init__`` (subclasses call it)."""

    # ----------------------------------------------------------------- rollouts
    total_episodes: int = field(
        default=1024, metadata={"help": "Episodes (completions) to train on in all."}
    )
    temperature: float = field(
        default=1.0,
        metadata={"help": "Sampling temperature; it divides the logits of policy and reference."},
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Response budget; None takes the env's max_new_tokens."}
    )
    missing_eos_penalty: float | None = field(
        default=None,
        metadata={
            "help": "Subtracted by the env from the score of a completion without EOS; None "
            "keeps the env's own setting (default 0)."
        },
    )
    # ----------------------------------------------------------------- KL control
    adaptive_kl: bool = field(
        default=False,
        metadata={
            "help": "Adapt the KL coefficient after each batch so the KL tracks kl_target "
            "(Ziegler et al. 2019); it starts at the config's coefficient (kl_coef or beta)."
        },
    )
    kl_target: float = field(
        default=6.0, metadata={"help": "Target KL per episode (nats) when adaptive_kl."}
    )
    kl_horizon: int = field(
        default=10_000,
        metadata={
            "help": "Adaptive controller's horizon in episodes: a batch of n episodes moves the "
            "coefficient by at most a factor 1 +- 0.2 * n / kl_horizon."
        },
    )
    kl_budget: float | None = field(
        default=None,
        metadata={
            "help": "End training early, before total_episodes, once the KL per episode to the "
            "reference (the mean over the last kl_budget_window batches) reaches this many "
            "nats; None trains the whole budget."
        },
    )
    kl_budget_window: int = field(
        default=3, metadata={"help": "Batches whose mean KL the kl_budget stop reads."}
    )
    # ----------------------------------------------------------------- optimisation
    learning_rate: float = field(default=1e-5, metadata={"help": "Adam learning rate."})
    adam_epsilon: float = field(default=1e-5, metadata={"help": "Adam epsilon."})
    anneal_lr: bool = field(
        default=True, metadata={"help": "Anneal the learning rate linearly to 0."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip."})
    freeze_layers: int = field(
        default=0,
        metadata={"help": "Freeze the input embeddings and the lowest N decoder layers."},
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "Seed of torch, numpy and the env (with several processes, rank 0's; the "
            "others derive their own streams from it)."
        },
    )
    mixed_precision: str = mixed_precision_field()
    # ----------------------------------------------------------------- output
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where logs, checkpoints and the final model go; None writes nothing."},
    )
    report_to: tuple[str, ...] = field(
        default=REPORT_TO, metadata={"help": "Log sinks among 'csv' and 'tensorboard'."}
    )
    save_steps: int = field(
        default=0, metadata={"help": "Checkpoint every N iterations (0: only at the end)."}
    )
    progress_bar: bool = field(default=True, metadata={"help": "Show a tqdm progress bar."})

    kl_coef_field: ClassVar[str] = "kl_coef"
    """The field holding the (initial) KL coefficient: TRL's name differs between trainers."""

    def __post_init__(self) -> None:
        require_positive(
            self, "total_episodes", "temperature", "learning_rate", "adam_epsilon",
            "max_grad_norm", "max_new_tokens", "kl_target", "kl_horizon", "kl_budget",
            "kl_budget_window",
        )  # fmt: skip
        require_non_negative(self, self.kl_coef_field)
        if self.adaptive_kl:  # a multiplicative controller never leaves 0
            coef = getattr(self, self.kl_coef_field)
            require(self.kl_coef_field, coef, coef > 0, "> 0 when adaptive_kl")
        require_non_negative(self, "freeze_layers", "save_steps", "missing_eos_penalty")
        require_mixed_precision(self)
        self.report_to = tuple(self.report_to)
        bad = [sink for sink in self.report_to if sink not in REPORT_TO]
        require("report_to", self.report_to, not bad, f"made of {REPORT_TO}")

    def kl_controller(self) -> KLController:
        """A new controller of beta from these settings (adaptive or fixed)."""
        coef = getattr(self, self.kl_coef_field)
        return make_kl_controller(coef, self.adaptive_kl, self.kl_target, self.kl_horizon)

    def kl_budget_stop(self) -> KLBudget:
        """A new early stop at ``kl_budget`` (never, when None)."""
        return KLBudget(self.kl_budget, self.kl_budget_window)
