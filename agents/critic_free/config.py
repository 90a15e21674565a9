"""Configs of the critic-free agents (GRPO, RLOO, REINFORCE): TRL's field names, help text on
each field, validation in ``__post_init__``."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.config import NativeTrainerConfig
from rlhf_gym.validation import require, require_in, require_non_negative, require_positive

LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")


@dataclass
class CriticFreeConfig(NativeTrainerConfig):
    """Settings every critic-free agent shares. ``batch_size`` prompts per step, each sampled
    ``num_generations`` times: ``batch_size * num_generations`` episodes per step."""

    # ----------------------------------------------------------------- rollouts
    batch_size: int = field(
        default=4,
        metadata={
            "help": "Prompts per step; each is completed num_generations times (with several "
            "processes, the global count: each process draws an equal share)."
        },
    )
    num_generations: int = field(
        default=4,
        metadata={"help": "Completions per prompt (k), drawn in the same batched rollout."},
    )
    # ----------------------------------------------------------------- KL and optimisation
    beta: float = field(
        default=0.05,
        metadata={"help": "KL coefficient (to the reference); the initial one if adaptive_kl."},
    )
    epsilon: float = field(
        default=0.2, metadata={"help": "Clip range of the probability ratio (1 +- epsilon)."}
    )
    num_iterations: int = field(
        default=1,
        metadata={
            "help": "Optimisation passes over each batch (TRL's mu); 1 is on-policy, where the "
            "ratio is 1 and the loss's gradient is the plain policy gradient."
        },
    )
    num_mini_batches: int = field(
        default=1, metadata={"help": "Optimizer steps per pass (reshuffled, whole groups)."}
    )

    min_generations = 2
    """Fewest completions per prompt the algorithm's baseline needs."""
    kl_coef_field = "beta"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self, "batch_size", "num_generations", "num_iterations", "num_mini_batches"
        )
        require_non_negative(self, "epsilon")
        k = self.num_generations
        require("num_generations", k, k >= self.min_generations, f">= {self.min_generations}")
        require(
            "batch_size", self.batch_size, self.batch_size % self.num_mini_batches == 0,
            f"divisible by num_mini_batches ({self.num_mini_batches}): minibatches hold "
            "whole groups",
        )  # fmt: skip
        require(
            "total_episodes", self.total_episodes, self.total_episodes >= self.episodes_per_step,
            f">= batch_size * num_generations ({self.episodes_per_step})",
        )  # fmt: skip

    @property
    def episodes_per_step(self) -> int:
        """Completions per step: ``batch_size * num_generations`` (the vector env's size)."""
        return self.batch_size * self.num_generations

    @property
    def total_steps(self) -> int:
        """Rollout-and-update steps: ``total_episodes // episodes_per_step``."""
        return self.total_episodes // self.episodes_per_step


@dataclass
class GRPOConfig(CriticFreeConfig):
    """GRPO (Shao et al. 2024): group-normalised advantages, clipped ratio, KL as a loss term
    (k3 estimator)."""

    beta: float = field(
        default=0.04,
        metadata={
            "help": "Weight of the per-token k3 KL term in the loss; the initial one if "
            "adaptive_kl."
        },
    )
    scale_rewards: str | bool = field(
        default="group",
        metadata={
            "help": "Divide the advantages by the std of the rewards of their 'group', of the "
            "'batch', or not at all ('none', Dr. GRPO); True means 'group', False 'none'."
        },
    )
    loss_type: str = field(
        default="grpo",
        metadata={
            "help": "'grpo': mean over each completion's tokens, then over completions; "
            "'dapo': mean over all tokens of the batch; 'dr_grpo': sum over tokens divided by "
            "completions * max_new_tokens (both free of GRPO's length bias)."
        },
    )

    def __post_init__(self) -> None:
        if isinstance(self.scale_rewards, bool):
            self.scale_rewards = "group" if self.scale_rewards else "none"
        require(
            "scale_rewards", self.scale_rewards, self.scale_rewards in SCALE_REWARDS,
            f"one of {SCALE_REWARDS} or a bool",
        )  # fmt: skip
        require("loss_type", self.loss_type, self.loss_type in LOSS_TYPES, f"one of {LOSS_TYPES}")
        super().__post_init__()


@dataclass
class RLOOConfig(CriticFreeConfig):
    """RLOO (Ahmadian et al. 2024): leave-one-out baseline over the k completions of a prompt,
    KL in the reward (k1 estimator), REINFORCE loss on the sequence log-prob."""


@dataclass
class ReinforceConfig(CriticFreeConfig):
    """REINFORCE with a moving-average baseline of the mean (KL-penalised) reward; KL in the
    reward as RLOO. Any ``num_generations`` works, 1 included."""

    num_generations: int = field(
        default=1,
        metadata={"help": "Completions per prompt (k); the baseline does not need groups."},
    )
    baseline_decay: float = field(
        default=0.9,
        metadata={
            "help": "Decay of the baseline's moving average: b <- decay * b + (1 - decay) * "
            "mean reward of the batch (it starts at the first batch's mean)."
        },
    )

    min_generations = 1

    def __post_init__(self) -> None:
        require_in(self, "baseline_decay", 0.0, 1.0, high_open=True)
        super().__post_init__()
