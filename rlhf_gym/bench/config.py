"""BenchConfig: the grid of ``rlhf-gym bench`` (tasks × agents × seeds) and what its runs share."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rlhf_gym.pipeline.agents import available_agents
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.tasks import get_task, registered_tasks
from rlhf_gym.validation import require

FIXED_PER_RUN = ("task", "seed", "agent", "output_dir", "model")
"""RunConfig settings the grid sets itself; ``run_settings`` may not override them."""

TINY_RUN_SETTINGS: dict[str, Any] = {
    "max_new_tokens": 24,  # every task's replies fit; SB3 steps once per token
    "sft_epochs": 4,
    "preference_prompts": 48,
    "completions_per_prompt": 4,
    "reward_epochs": 10,
    "iterations": 20,
    "dpo_epochs": 4,
    "batch_size": 16,
    "eval_prompts": 24,
    "eval_samples_per_prompt": 2,
    "eval_every": 4,
    "probe_prompts": 16,
}
"""The tiny preset's defaults: small enough that five tasks × three agents × three seeds fit in
30 minutes on two cores (every other setting is RunConfig's default; other models start from
each task's ``max_new_tokens``)."""


TINY_TASKS = ("length", "sentiment")
"""The tiny preset's default tasks: those the 3-seed bench could score (an anchor gain two
standard errors above 0) and where some agent's normalised IQM was above 0 with a 95% interval
excluding 0. Dropped: arithmetic (the 0.2M-parameter preset never writes a right answer, so
every preference is a gold tie and best-of-16 gains nothing), concepts (the reference names 3%
of the concepts and best-of-16 gains 0.016 ± 0.016) and readable (best-of-16 gains 0.035 ±
0.076: in one seed of three the learned reward picks less readable text than the reference's
average, so no score can be normalised by it)."""


def default_tasks(model: str) -> tuple[str, ...]:
    """Every registered single-turn task, or for the tiny preset :data:`TINY_TASKS`; dialogue
    tasks (conversations cost several completions each) run when named."""
    if model == "tiny":
        return TINY_TASKS
    return tuple(sorted(n for n in registered_tasks() if not get_task(n).is_dialogue))


@dataclass
class BenchConfig:
    """Tasks × agents × seeds: one ``rlhf-gym run`` per (task, seed), its agents side by side on
    the same preferences and reward model."""

    tasks: tuple[str, ...] | None = field(
        default=None,
        metadata={"help": "Task names; default: every task (tiny: length, sentiment)."},
    )
    agents: tuple[str, ...] = field(
        default=("token-ppo", "dpo", "sb3-ppo"),
        metadata={"help": "Agents (built-in or plug-in names), trained in every run."},
    )
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "User seeds."})
    model: str = field(default="tiny", metadata={"help": "Policy (as rlhf-gym run --model)."})
    output_dir: str = field(
        default="bench/tiny", metadata={"help": "Where runs, results.jsonl and the report go."}
    )
    kl_budgets: tuple[float, ...] = field(
        default=(1.0, 3.0, 10.0),
        metadata={"help": "KL budgets (nats) at which the best held-out probe gold is read."},
    )
    run_settings: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "RunConfig settings for every run, over the model's bench defaults (the "
            "tiny preset's: TINY_RUN_SETTINGS); max_new_tokens defaults to each task's."
        },
    )
    bootstrap_reps: int = field(
        default=2000, metadata={"help": "Bootstrap resamples of the confidence intervals."}
    )
    min_anchor_z: float = field(
        default=2.0,
        metadata={
            "help": "A task enters the aggregates only when its anchor gain (best-of-16's gold "
            "gain over the reference, mean over seeds) is at least this many standard errors "
            "above 0; scores normalised by a gain of noise's size mean nothing."
        },
    )
    merge_from: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "Output directories of benches with the same settings run elsewhere (shards "
            "of the grid: other tasks or seeds, on other machines); the cells of this grid they "
            "finished are taken from their results.jsonl instead of run again."
        },
    )

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks) if self.tasks is not None else default_tasks(self.model)
        self.agents = tuple(self.agents)
        self.seeds, self.kl_budgets = tuple(self.seeds), tuple(self.kl_budgets)
        self.merge_from = tuple(self.merge_from)
        require("tasks", self.tasks, bool(self.tasks), "at least one task")
        for task in self.tasks:
            get_task(task)  # an unknown task fails here, naming the known ones
        require("agents", self.agents, bool(self.agents), "at least one agent")
        known = available_agents()
        unknown = [a for a in self.agents if a not in known]
        require("agents", self.agents, not unknown, f"agents among {known}")
        require("seeds", self.seeds, len(set(self.seeds)) == len(self.seeds) > 0, "distinct")
        for name in ("tasks", "agents"):
            values = getattr(self, name)
            require(name, values, len(set(values)) == len(values), "without repeats")
        budgets = self.kl_budgets
        require("kl_budgets", budgets, all(b > 0 for b in budgets), "positive numbers of nats")
        require("bootstrap_reps", self.bootstrap_reps, self.bootstrap_reps >= 100, ">= 100")
        require("min_anchor_z", self.min_anchor_z, self.min_anchor_z >= 0, ">= 0")
        fixed = sorted(set(self.run_settings) & set(FIXED_PER_RUN))
        require("run_settings", fixed, not fixed, f"free of {FIXED_PER_RUN} (the grid sets them)")
        for task in self.tasks:  # every run's settings are valid before any run starts
            self.run_config(task, self.seeds[0])

    def run_dir(self, task: str, seed: int) -> Path:
        return Path(self.output_dir) / "runs" / task / f"seed-{seed}"

    def run_config(self, task: str, seed: int) -> RunConfig:
        """The RunConfig of one cell of the grid."""
        defaults = TINY_RUN_SETTINGS if self.model == "tiny" else {}
        settings = {"max_new_tokens": get_task(task).max_new_tokens, **defaults}
        return RunConfig(
            **{**settings, **self.run_settings},
            task=task, seed=seed, agent=",".join(self.agents), model=self.model,
            output_dir=str(self.run_dir(task, seed)),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def shard_settings(self) -> dict[str, Any]:
        """The settings two shards of one bench share: all but the grid's cells, where they
        go and what they merge (as JSON has them, so a shard's ``bench.json`` compares)."""
        own = ("tasks", "seeds", "output_dir", "merge_from")
        return json.loads(json.dumps({k: v for k, v in self.to_dict().items() if k not in own}))

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> BenchConfig:
        """Settings from a JSON file, with ``overrides`` on top."""
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the bench config {path}: {err}") from err
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown bench settings {unknown} in {path}")
        return cls(**{**values, **overrides})
