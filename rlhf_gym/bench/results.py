"""One row per (task, agent, seed) from a finished run: what was gained, at what KL and cost.

Gold and proxy are the evaluation stage's held-out figures, beside the reference policy's and
the anchor's: best-of-16 from the reference, by the same learned reward, on the same held-out
prompts (KL ≈ 1.83 nats), which the report's normalised score puts at 1; ``anchor_gain_se`` is
the standard error of the anchor's gold gain over the reference (Welch's, from both samples'
spreads: the two sample from separate streams; unpaired, so where both share a prompt's
difficulty it errs large, and it fits dialogue tasks, whose anchor plays other openings).
``gold_at_kl_B`` is the best held-out gold the agent's probes (``eval_every``) reached at
KL ≤ B, the start included. The over-optimisation gap is the proxy's gain minus the gold's,
each in units of its standard deviation over the reference's samples: positive when the reward
model promises more than the gold delivers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rlhf_gym.bench.config import BenchConfig
from rlhf_gym.pipeline.evaluate import MAX_BEST_OF_N
from rlhf_gym.pipeline.outputs import RunOutputs
from rlhf_gym.pipeline.stages import agent_stage

REFERENCE = "before (reference)"
ANCHOR = f"best-of-{MAX_BEST_OF_N} (reference)"


def run_rows(outputs: RunOutputs, kl_budgets: Sequence[float]) -> list[dict[str, Any]]:
    """The rows of one finished run, one per agent."""
    c = outputs.config
    policies = outputs.summary("evaluate")["policies"]
    reference, anchor = policies[REFERENCE], policies[ANCHOR]
    if "num_samples" not in anchor:
        raise ValueError(
            f"the evaluation in {outputs.path('evaluate')} predates the anchor's standard error: "
            "redo it with `rlhf-gym run --force evaluate` and the run's settings"
        )
    rows = []
    for agent in c.agents:
        after = policies[f"after ({agent})"]
        stage = agent_stage(agent)
        summary, seconds = outputs.summary(stage), outputs.seconds(stage)
        probes = outputs.heldout_curve(agent)
        iterations = summary.get("iterations")  # RL agents; DPO trains on pairs, not episodes
        rows.append({
            "task": c.task, "agent": agent, "seed": c.seed, "model": c.model,
            "gold": after["gold"], "proxy": after["proxy"], "kl": after["kl"],
            "reference_gold": reference["gold"], "reference_proxy": reference["proxy"],
            "anchor_gold": anchor["gold"],
            "anchor_gain_se": gain_standard_error(reference, anchor),
            **{f"gold_at_kl_{b:g}": gold_at_kl(probes, b) for b in kl_budgets},
            "overoptimisation": overoptimisation(after, reference),
            "wall_seconds": seconds,
            "episodes_per_second": (
                iterations * c.batch_size / seconds if iterations is not None else None
            ),
            "trainable_parameters": summary["trainable_parameters"],
        })  # fmt: skip
    return rows


def gain_standard_error(before: dict[str, float], after: dict[str, float]) -> float:
    """The standard error of ``after``'s mean gold minus ``before``'s, from independent samples
    (each entry's ``gold_std`` is over its ``num_samples``, without Bessel's correction); inf
    where a side has one sample."""
    variances = [
        side["gold_std"] ** 2 / (side["num_samples"] - 1) if side["num_samples"] > 1 else math.inf
        for side in (before, after)
    ]
    return math.sqrt(sum(variances))


def gold_at_kl(probes: Iterable[dict[str, float]], budget: float) -> float | None:
    """The best probe gold at KL ≤ ``budget``; None without probes."""
    within = [p["gold"] for p in probes if p["kl"] <= budget]
    return max(within) if within else None


def overoptimisation(policy: dict[str, float], reference: dict[str, float]) -> float | None:
    """Proxy gain minus gold gain, each over the reference's sample standard deviation (None
    where either deviation is 0)."""
    if not reference["proxy_std"] or not reference["gold_std"]:
        return None
    proxy_gain = (policy["proxy"] - reference["proxy"]) / reference["proxy_std"]
    gold_gain = (policy["gold"] - reference["gold"]) / reference["gold_std"]
    return proxy_gain - gold_gain


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """``results.jsonl``, rewritten whole (atomically) from every finished run."""
    partial = path.with_suffix(".jsonl.partial")
    partial.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    partial.replace(path)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def shard_rows(config: BenchConfig) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The rows of the cells of ``config``'s grid that its ``merge_from`` shards finished, by
    (task, seed): a cell counts when a shard has a row for every agent. A shard made with other
    settings raises, naming them, so nothing unlike is averaged."""
    ours = config.shard_settings()
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for directory in map(Path, config.merge_from):
        try:
            settings = json.loads((directory / "bench.json").read_text(encoding="utf-8"))
            rows = read_rows(directory / "results.jsonl")
            theirs = BenchConfig(**{**settings, "merge_from": ()}).shard_settings()
        except (OSError, ValueError, TypeError) as err:
            raise ValueError(f"cannot merge the bench in {directory}: {err}") from err
        differ = sorted(k for k in ours if theirs.get(k) != ours[k])
        if differ:
            raise ValueError(f"the bench in {directory} was run with other settings: {differ}")
        older = sorted({(r["task"], r["seed"]) for r in rows if "anchor_gain_se" not in r})
        if older:
            raise ValueError(
                f"the bench in {directory} predates the anchor's standard error (cells {older}): "
                "redo those runs' evaluate stage (`rlhf-gym run --force evaluate`), then that bench"
            )
        for row in rows:
            if row["task"] in config.tasks and row["seed"] in config.seeds:
                cells.setdefault((row["task"], row["seed"]), []).append(row)
    return {
        cell: [next(r for r in rows if r["agent"] == a) for a in config.agents]
        for cell, rows in cells.items()
        if set(config.agents) <= {r["agent"] for r in rows}
    }
