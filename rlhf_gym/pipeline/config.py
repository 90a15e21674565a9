"""RunConfig: every setting of ``rlhf-gym run``, from flags or a JSON config file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rlhf_gym.models import PRESETS
from rlhf_gym.tasks import get_task

AGENTS = ("token-ppo", "sb3-ppo", "sb3-a2c", "dpo")


@dataclass
class RunConfig:
    """The whole RLHF loop: SFT, preferences, reward model, agent, evaluation, report."""

    task: str = field(default="sentiment", metadata={"help": "Task name (see rlhf_gym.tasks)."})
    model: str = field(
        default="smollm2-135m",
        metadata={
            "help": "Policy: a preset (tiny, small), smollm2-135m, an HF id or a local path."
        },
    )
    agent: str = field(
        default="token-ppo",
        metadata={
            "help": f"One of {', '.join(AGENTS)}, or several separated by commas "
            "(e.g. token-ppo,dpo) to compare them in one report."
        },
    )
    output_dir: str = field(default="runs/sentiment", metadata={"help": "Where stages write."})
    seed: int = field(default=0, metadata={"help": "Seed of every stage."})
    threads: int | None = field(
        default=None,
        metadata={"help": "Torch CPU threads; default: 1 for presets, else torch's default."},
    )
    max_new_tokens: int = field(default=16, metadata={"help": "Completion length budget."})
    sft: bool | None = field(
        default=None,
        metadata={
            "help": "Fine-tune on the task's demonstrations first; default: only for presets "
            "(randomly initialised), not for pretrained models."
        },
    )
    sft_epochs: int = field(default=4, metadata={"help": "SFT passes over the demonstrations."})
    sft_learning_rate: float = field(default=2e-3, metadata={"help": "SFT learning rate."})
    preference_prompts: int = field(
        default=144, metadata={"help": "Train prompts sampled for preference collection."}
    )
    completions_per_prompt: int = field(
        default=6, metadata={"help": "K completions per prompt; all K(K-1)/2 pairs are labelled."}
    )
    label_temperature: float = field(
        default=0.1,
        metadata={"help": "Bradley–Terry temperature of the simulated labeler (its noise)."},
    )
    human_labels: str | None = field(
        default=None,
        metadata={
            "help": "JSONL of prompt/chosen/rejected pairs to use instead of simulated labels."
        },
    )
    reward_backbone: str | None = field(
        default=None,
        metadata={
            "help": "Trunk of the reward model: a preset, smollm2-135m, an HF id, a path, or "
            "sentiment-rm (the shipped reward model's trunk, with a new head); default: the "
            "policy's (after SFT, the fine-tuned one)."
        },
    )
    reward_full_finetune: bool | None = field(
        default=None,
        metadata={
            "help": "Fine-tune the whole reward model; default: only for preset trunks (a "
            "pretrained trunk gets a head trained on its frozen features)."
        },
    )
    reward_epochs: int = field(default=20, metadata={"help": "Reward-model epochs."})
    iterations: int = field(
        default=30, metadata={"help": "PPO / A2C iterations (one batch of episodes each)."}
    )
    dpo_epochs: int = field(
        default=3, metadata={"help": "DPO passes over the pairs (one curve point each)."}
    )
    batch_size: int = field(default=16, metadata={"help": "Episodes per agent iteration."})
    learning_rate: float | None = field(
        default=None, metadata={"help": "Agent learning rate; default depends on model size."}
    )
    kl_coef: float = field(default=0.05, metadata={"help": "KL coefficient beta (DPO: its beta)."})
    freeze_layers: int | None = field(
        default=None,
        metadata={
            "help": "Freeze the lower N layers of the policy; default: 2/3 of a pretrained one."
        },
    )
    eval_samples_per_prompt: int = field(
        default=2, metadata={"help": "Completions per held-out prompt in the evaluation."}
    )
    eval_prompts: int | None = field(
        default=None, metadata={"help": "Held-out prompts to evaluate on; default: all."}
    )

    def __post_init__(self) -> None:
        get_task(self.task)  # an unknown task fails here, with the list of known ones
        unknown = [name for name in self.agents if name not in AGENTS]
        if unknown or not self.agents:
            raise ValueError(f"unknown agent {self.agent!r}; expected one or more of {AGENTS}")
        positive = [
            "max_new_tokens", "sft_epochs", "preference_prompts", "reward_epochs", "iterations",
            "dpo_epochs",
            "batch_size", "eval_samples_per_prompt", "sft_learning_rate", "label_temperature",
        ]  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.completions_per_prompt < 2:
            raise ValueError(
                "completions_per_prompt must be >= 2 to form pairs, "
                f"got {self.completions_per_prompt}"
            )
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.human_labels is not None and not Path(self.human_labels).is_file():
            raise FileNotFoundError(f"human_labels file {self.human_labels!r} does not exist")

    @property
    def agents(self) -> tuple[str, ...]:
        """The agents to train, in the given order, without repeats."""
        return tuple(dict.fromkeys(n.strip() for n in self.agent.split(",") if n.strip()))

    @property
    def is_preset(self) -> bool:
        return self.model in PRESETS

    @property
    def use_sft(self) -> bool:
        return self.is_preset if self.sft is None else self.sft

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
