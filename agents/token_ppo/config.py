"""TokenPPOConfig: every knob of the sequence-level PPO loop, with help text and validation."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.config import NativeTrainerConfig
from rlhf_gym.validation import require, require_in, require_non_negative, require_positive

VALUE_MODELS = ("head", "separate")


@dataclass
class TokenPPOConfig(NativeTrainerConfig):
    """Configuration of :class:`agents.TokenPPO` (defaults follow the published RLHF recipes)."""

    # ----------------------------------------------------------------- rollouts
    batch_size: int = field(
        default=16,
        metadata={
            "help": "Episodes per iteration: the number of envs generated together (with "
            "several processes, the global batch: each process generates an equal share)."
        },
    )
    ignore_eos: bool = field(
        default=False,
        metadata={
            "help": "Never sample EOS (its logit is masked in every log-prob): fixed-length "
            "responses, for throughput comparisons."
        },
    )
    # ----------------------------------------------------------------- rewards and KL
    kl_coef: float = field(
        default=0.05,
        metadata={"help": "KL coefficient beta in the reward (the initial one if adaptive_kl)."},
    )
    gamma: float = field(default=1.0, metadata={"help": "Discount over response tokens."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda."})
    # ----------------------------------------------------------------- optimisation
    num_ppo_epochs: int = field(default=4, metadata={"help": "Passes over each batch."})
    num_mini_batches: int = field(default=1, metadata={"help": "Optimizer steps per epoch."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per minibatch (gradients accumulated)."}
    )
    cliprange: float = field(default=0.2, metadata={"help": "PPO ratio clip."})
    cliprange_value: float = field(default=0.2, metadata={"help": "Value clip around old values."})
    vf_coef: float = field(default=0.1, metadata={"help": "Value-loss coefficient."})
    whiten_advantages: bool = field(
        default=True, metadata={"help": "Whiten advantages over the batch's response tokens."}
    )
    # ----------------------------------------------------------------- models
    value_model: str = field(
        default="head",
        metadata={
            "help": "'head': a zero-initialised value head on the policy's trunk; 'separate': "
            "a copy of the policy's trunk with its own head."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive(
            self, "batch_size", "num_ppo_epochs", "num_mini_batches",
            "gradient_accumulation_steps",
        )  # fmt: skip
        require_non_negative(self, "cliprange", "cliprange_value", "vf_coef")
        steps = self.num_mini_batches * self.gradient_accumulation_steps
        require(
            "batch_size", self.batch_size, self.batch_size % steps == 0,
            f"divisible by num_mini_batches * gradient_accumulation_steps ({steps})",
        )  # fmt: skip
        require(
            "total_episodes", self.total_episodes, self.total_episodes >= self.batch_size,
            f">= batch_size ({self.batch_size})",
        )  # fmt: skip
        require_in(self, "gamma", 0, 1)
        require_in(self, "lam", 0, 1)
        require(
            "value_model",
            self.value_model,
            self.value_model in VALUE_MODELS,
            f"one of {VALUE_MODELS}",
        )

    @property
    def num_iterations(self) -> int:
        """Rollout-and-update iterations: ``total_episodes // batch_size``."""
        return self.total_episodes // self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_mini_batches

    @property
    def micro_batch_size(self) -> int:
        return self.minibatch_size // self.gradient_accumulation_steps
