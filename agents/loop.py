"""The iteration loop the native trainers share (TokenPPO, GRPO, RLOO, REINFORCE): run the
remaining iterations, log each, call the callbacks, checkpoint every ``save_steps``, and save
the checkpoint and the policy at the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from agents.token_ppo.metrics_log import MetricLogger


class IterativeTrainer:
    """Base of a trainer whose ``step()`` runs one iteration and returns its metrics.

    A subclass sets ``config`` (with ``output_dir``, ``report_to``, ``save_steps`` and
    ``progress_bar``), ``callbacks``, ``iteration`` and ``episodes``, and defines ``step``,
    ``total_iterations``, ``progress``, ``save_checkpoint``, ``load_checkpoint`` and
    ``save_pretrained``.
    """

    name = "trainer"
    """The progress bar's label."""
    config: Any
    callbacks: list[Callable[[Any, dict[str, float]], None]]
    iteration: int
    episodes: int
    logger: MetricLogger | None = None

    @property
    def total_iterations(self) -> int:
        raise NotImplementedError

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows after an iteration."""
        raise NotImplementedError

    def save_checkpoint(self, path: str | Path) -> None:
        raise NotImplementedError

    def load_checkpoint(self, path: str | Path) -> None:
        raise NotImplementedError

    def save_pretrained(self, directory: str | Path) -> None:
        raise NotImplementedError

    def train(self, resume_from: str | Path | None = None) -> list[dict[str, float]]:
        """Run the remaining iterations; returns each iteration's metrics (``eps``: episodes
        per second since this call started)."""
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        out = self.config.output_dir
        self.logger = MetricLogger(out, self.config.report_to) if out is not None else None
        history = []
        start, first_episode = time.perf_counter(), self.episodes
        bar = tqdm(
            total=self.total_iterations, initial=self.iteration,
            disable=not self.config.progress_bar, desc=self.name,
        )  # fmt: skip
        while self.iteration < self.total_iterations:
            metrics = self.step()
            metrics["eps"] = (self.episodes - first_episode) / (time.perf_counter() - start)
            history.append(metrics)
            self._after_iteration(metrics, bar)
        bar.close()
        if out is not None:
            self.save_checkpoint(Path(out) / "checkpoint.pt")
            self.save_pretrained(Path(out) / "final")
            self.logger.close()
        return history

    def _after_iteration(self, metrics: dict[str, float], bar: tqdm) -> None:
        if self.logger is not None:
            self.logger.log(metrics, self.iteration)
        for callback in self.callbacks:
            callback(self, metrics)
        every = self.config.save_steps
        if self.config.output_dir is not None and every and self.iteration % every == 0:
            self.save_checkpoint(Path(self.config.output_dir) / "checkpoint.pt")
        bar.set_postfix(**self.progress(metrics))
        bar.update(1)
