"""The bench report: a leaderboard with stratified-bootstrap intervals, per-task tables, the
gold-vs-√KL frontier of every agent beside best-of-n (Gao et al., 2022), and interval plots.

A run's normalised score is its gold gain over its own reference (the run's starting policy)
divided by the task's anchor gain: best-of-16's gold gain over the reference, averaged over the
task's seeds (one seed's anchor gain is a small, noisy denominator). Aggregates use the tasks
whose mean anchor gain is ``min_anchor_z`` standard errors above 0 (a gain of noise's size would
turn noise into large scores); the others are listed with the reason, not averaged in.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_gym.bench.config import BenchConfig
from rlhf_gym.bench.results import ANCHOR
from rlhf_gym.bench.statistics import (
    Interval,
    aggregate,
    normalised_score,
    plot_intervals,
    probability_of_improvement,
)
from rlhf_gym.pipeline.outputs import RunOutputs

Rows = list[dict[str, Any]]


def write_bench_report(config: BenchConfig, rows: Rows) -> Path:
    """``report.md``, ``aggregate.json``, ``frontier.png`` and ``intervals.png`` in the bench's
    output directory; returns the report's path."""
    out = Path(config.output_dir)
    scored, excluded = scored_tasks(config, rows)
    estimates, improvements = aggregates(config, rows, scored)
    per_task = task_estimates(config, rows, scored)
    summary = {
        "tasks_aggregated": scored,
        "tasks_excluded": excluded,
        "estimates": {a: {m: i.as_dict() for m, i in e.items()} for a, e in estimates.items()},
        "per_task_iqm": {t: {a: i.as_dict() for a, i in e.items()} for t, e in per_task.items()},
        "probability_of_improvement": {
            f"{x} > {y}": i.as_dict() for (x, y), i in improvements.items()
        },
    }
    (out / "aggregate.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    figures = []
    if estimates:
        figures.append(plot_intervals(estimates, out / "intervals.png").name)
    figures.append(plot_frontiers(config, rows, out / "frontier.png").name)
    lines = [
        f"# Bench: {len(config.tasks)} tasks × {len(config.agents)} agents × "
        f"{len(config.seeds)} seeds ({config.model})",
        "",
        f"Normalised score: 0 = the reference (starting) policy, 1 = {ANCHOR} by the same "
        "learned reward, held-out prompts. Intervals: 95% stratified bootstrap over seeds "
        f"({config.bootstrap_reps} resamples).",
        "",
        *leaderboard(estimates, scored, excluded),
        *improvement_table(improvements),
        *task_tables(config, rows, per_task),
        *(f"![{name}]({name})" for name in figures),
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class AnchorGain:
    """A task's anchor gain: best-of-16's gold gain over the reference, averaged over seeds."""

    mean: float
    standard_error: float
    """Of the mean: the seeds' standard errors combined (their runs are independent)."""
    seeds: int

    def distinguishable(self, min_z: float) -> bool:
        """Positive and at least ``min_z`` standard errors above 0."""
        return self.mean > 0 and self.mean >= min_z * self.standard_error


def anchor_gains(rows: Rows) -> dict[str, AnchorGain]:
    """Per task, its :class:`AnchorGain` from each seed's gain and standard error."""
    by_task: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for r in rows:
        gain = r["anchor_gold"] - r["reference_gold"]
        by_task[r["task"]][r["seed"]] = (gain, r["anchor_gain_se"])
    gains = {}
    for task, by_seed in by_task.items():
        means, errors = np.array(list(by_seed.values())).T  # (seeds,) each
        gains[task] = AnchorGain(
            mean=float(means.mean()),
            standard_error=float(np.sqrt(np.sum(errors**2)) / len(errors)),
            seeds=len(errors),
        )
    return gains


def scored_tasks(config: BenchConfig, rows: Rows) -> tuple[list[str], dict[str, str]]:
    """Tasks with every (agent, seed) row and an anchor gain distinguishable from 0; the others
    with why."""
    scored, excluded = [], {}
    gains = anchor_gains(rows)
    for task in config.tasks:
        finished = sum(r["task"] == task for r in rows)
        expected = len(config.agents) * len(config.seeds)
        gain = gains.get(task)
        if finished < expected:
            excluded[task] = f"{finished} of {expected} runs finished"
        elif not gain.distinguishable(config.min_anchor_z):
            excluded[task] = (
                f"best-of-16's gold gain over the reference, {gain.mean:.3g} ± "
                f"{gain.standard_error:.2g} (standard error, {gain.seeds} seeds), is not "
                f"{config.min_anchor_z:g} standard errors above 0: too small a denominator for "
                "normalised scores (they would measure noise)"
            )
        else:
            scored.append(task)
    return scored, excluded


def score_matrix(config: BenchConfig, rows: Rows, agent: str, tasks: list[str]) -> np.ndarray:
    """An agent's normalised scores, (seeds, tasks)."""
    gains = anchor_gains(rows)
    by_cell = {
        (r["seed"], r["task"]): normalised_score(
            r["gold"], r["reference_gold"], r["reference_gold"] + gains[r["task"]].mean
        )
        for r in rows
        if r["agent"] == agent and r["task"] in tasks
    }
    return np.array([[by_cell[(s, t)] for t in tasks] for s in config.seeds], dtype=float)


def aggregates(
    config: BenchConfig, rows: Rows, tasks: list[str]
) -> tuple[dict[str, dict[str, Interval]], dict[tuple[str, str], Interval]]:
    """IQM and mean per agent, and P(X > Y) for every ordered pair of agents."""
    if not tasks:
        return {}, {}
    scores = {agent: score_matrix(config, rows, agent, tasks) for agent in config.agents}
    reps = config.bootstrap_reps
    estimates = aggregate(scores, reps=reps)
    improvements = {
        (x, y): probability_of_improvement(scores[x], scores[y], reps=reps)
        for x, y in itertools.permutations(config.agents, 2)
    }
    return estimates, improvements


def task_estimates(
    config: BenchConfig, rows: Rows, tasks: list[str]
) -> dict[str, dict[str, Interval]]:
    """Per aggregated task, each agent's IQM over seeds with its bootstrap interval."""
    return {
        task: {
            agent: aggregate(
                {agent: score_matrix(config, rows, agent, [task])}, reps=config.bootstrap_reps
            )[agent]["iqm"]
            for agent in config.agents
        }
        for task in tasks
    }


def _interval(interval: Interval) -> str:
    return f"{interval.point:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def leaderboard(
    estimates: dict[str, dict[str, Interval]], scored: list[str], excluded: dict[str, str]
) -> list[str]:
    lines = ["## Leaderboard", ""]
    if estimates:
        lines += [f"Over {len(scored)} tasks: {', '.join(scored)}.", ""]
        lines += ["| agent | IQM [95% CI] | mean [95% CI] |", "| --- | --- | --- |"]
        ranked = sorted(estimates, key=lambda a: -estimates[a]["iqm"].point)
        lines += [
            f"| {a} | {_interval(estimates[a]['iqm'])} | {_interval(estimates[a]['mean'])} |"
            for a in ranked
        ]
    else:
        lines.append("No task has a usable anchor in every run: nothing to aggregate.")
    lines += [""] + [f"- excluded: {task} ({why})" for task, why in excluded.items()]
    return [*lines, ""]


def improvement_table(improvements: dict[tuple[str, str], Interval]) -> list[str]:
    if not improvements:
        return []
    lines = ["## Probability of improvement", "", "| X | Y | P(X > Y) [95% CI] |"]
    lines.append("| --- | --- | --- |")
    lines += [f"| {x} | {y} | {_interval(i)} |" for (x, y), i in improvements.items()]
    return [*lines, ""]


METRICS = ("gold", "proxy", "kl", "overoptimisation", "wall_seconds")


def _mean_sd(values: list[Any]) -> str:
    numbers = [v for v in values if v is not None]
    if not numbers:
        return "–"
    if len(set(numbers)) == 1:  # one seed, or a count every seed shares
        only = numbers[0]
        return f"{only:,}" if isinstance(only, int) else f"{only:.3g}"
    return f"{np.mean(numbers):.3g} ± {np.std(numbers, ddof=1):.2g}"


def task_tables(
    config: BenchConfig, rows: Rows, per_task: dict[str, dict[str, Interval]]
) -> list[str]:
    """Per task, per agent: the normalised IQM [95% CI] over seeds, then mean ± sd over seeds
    of each metric."""
    budgets = [f"gold_at_kl_{b:g}" for b in config.kl_budgets]
    columns = [*METRICS, *budgets, "episodes_per_second", "trainable_parameters"]
    lines = ["## Per task (IQM [95% CI] and mean ± sd over seeds)", ""]
    gains = anchor_gains(rows)
    for task in config.tasks:
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        reference = _mean_sd(
            [r["reference_gold"] for r in task_rows if r["agent"] == config.agents[0]]
        )
        anchor = _mean_sd([r["anchor_gold"] for r in task_rows if r["agent"] == config.agents[0]])
        gain = gains[task]
        lines += [
            f"### {task}",
            "",
            f"Reference gold {reference}; {ANCHOR} gold {anchor}; anchor gain {gain.mean:.3g} ± "
            f"{gain.standard_error:.2g} (standard error over {gain.seeds} seeds).",
            "",
        ]
        header = ["agent", "normalised IQM [95% CI]", *columns]
        lines += ["| " + " | ".join(header) + " |", "| --- " * len(header) + "|"]
        for agent in config.agents:
            mine = [r for r in task_rows if r["agent"] == agent]
            iqm = _interval(per_task[task][agent]) if task in per_task else "–"
            cells = [iqm, *(_mean_sd([r.get(c) for r in mine]) for c in columns)]
            lines.append(f"| {agent} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def plot_frontiers(config: BenchConfig, rows: Rows, path: Path) -> Path:
    """Per task: held-out gold against √KL along each agent's probes (mean over seeds at each
    probe), its final evaluation, and best-of-n from the reference on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in config.tasks if any(r["task"] == t for r in rows)]
    columns = min(len(tasks), 3) or 1
    fig, axes = plt.subplots(
        math.ceil(len(tasks) / columns) or 1,
        columns,
        figsize=(4.2 * columns, 3.4 * math.ceil(len(tasks) / columns)),
        squeeze=False,
    )
    for axis, task in zip(axes.flat, tasks, strict=False):
        for colour, agent in enumerate(config.agents):
            probes = _mean_probes(config, task, agent)
            if probes:
                kl, gold = zip(*probes, strict=True)
                axis.plot(np.sqrt(np.maximum(kl, 0)), gold, "-", color=f"C{colour}", alpha=0.7)
            final = [r for r in rows if r["task"] == task and r["agent"] == agent]
            axis.scatter([math.sqrt(max(r["kl"], 0)) for r in final], [r["gold"] for r in final],
                         color=f"C{colour}", label=agent, s=18)  # fmt: skip
        best = _mean_best_of_n(config, task)
        if best:
            kl, gold = zip(*best, strict=True)
            axis.plot(np.sqrt(kl), gold, "k--", label="best-of-n (reference)")
        axis.set_title(task)
        axis.set_xlabel("√KL (nats)")
        axis.set_ylabel("held-out gold")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(tasks) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _finished_runs(config: BenchConfig, task: str) -> list[RunOutputs]:
    """The outputs of ``task``'s runs whose evaluation has finished."""
    from rlhf_gym.pipeline.run import Pipeline

    runs = []
    for seed in config.seeds:
        outputs = Pipeline(config.run_config(task, seed), log=lambda _: None).outputs
        if (outputs.path("evaluate") / "DONE.json").is_file():
            runs.append(outputs)
    return runs


def _mean_probes(config: BenchConfig, task: str, agent: str) -> list[tuple[float, float]]:
    """(KL, gold) of each probe iteration, averaged over the seeds that probed it."""
    by_iteration: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for outputs in _finished_runs(config, task):
        for point in outputs.heldout_curve(agent):
            by_iteration[point["iteration"]].append((point["kl"], point["gold"]))
    return [tuple(np.mean(by_iteration[i], axis=0)) for i in sorted(by_iteration)]


def _mean_best_of_n(config: BenchConfig, task: str) -> list[tuple[float, float]]:
    """(KL, gold) of best-of-n per n, averaged over the seeds' evaluations."""
    by_n: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for outputs in _finished_runs(config, task):
        for policy in outputs.summary("evaluate")["policies"].values():
            if "n" in policy:
                by_n[policy["n"]].append((policy["kl"], policy["gold"]))
    return [tuple(np.mean(by_n[n], axis=0)) for n in sorted(by_n)]
