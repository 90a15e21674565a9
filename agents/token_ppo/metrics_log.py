"""Metric sinks: one CSV row per iteration and TensorBoard scalars, under TRL's metric names."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.token_ppo.rollout import Rollout, episode_scores


class MetricLogger:
    """Writes each iteration's metrics to ``metrics.csv`` and/or TensorBoard in ``directory``."""

    def __init__(self, directory: str | Path, report_to: tuple[str, ...]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.directory / "metrics.csv" if "csv" in report_to else None
        self._writer = None
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.directory / "tensorboard"))

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.csv_path is not None:
            self._append_csv({"iteration": step, **metrics})
        if self._writer is not None:
            for name, value in metrics.items():
                self._writer.add_scalar(name, value, global_step=step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def _append_csv(self, row: dict[str, Any]) -> None:
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)


def check_finite_losses(metrics: dict[str, float], iteration: int, agent: str) -> None:
    """Stop at the first diverged update rather than train on NaN for the rest of the budget:
    raise ``FloatingPointError`` if ``loss`` or any ``loss/...`` metric is not finite."""
    bad = {
        k: v
        for k, v in metrics.items()
        if (k == "loss" or k.startswith("loss/")) and not math.isfinite(v)
    }
    if bad:
        raise FloatingPointError(
            f"{agent} diverged at iteration {iteration}: {bad}; lower learning_rate or the KL "
            "coefficient"
        )


def text_metrics(
    rollout: Rollout,
    gold: Callable[..., Any] | None,
    monitors: Mapping[str, Callable[[list[str], list[str]], Any]],
) -> dict[str, float]:
    """Batch means of scorers of a rollout's episodes: ``objective/gold_scores`` from ``gold``
    (when given; a dialogue's conversations, see :func:`episode_scores`) and
    ``objective/<name>`` for each monitor (of the ``(prompts, completions)`` texts)."""
    metrics = {}
    if gold is not None:
        metrics["objective/gold_scores"] = float(episode_scores(gold, rollout).mean())
    for name, fn in monitors.items():
        scores = np.asarray(fn(rollout.prompts, rollout.completions), dtype=np.float64)
        metrics[f"objective/{name}"] = float(scores.mean())
    return metrics
