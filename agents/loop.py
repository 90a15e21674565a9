"""The iteration loop the native trainers share (TokenPPO, GRPO, RLOO, REINFORCE): run the
remaining iterations (or fewer, once the KL budget is spent), log each, call the callbacks,
checkpoint every ``save_steps``, and save the checkpoint and the policy at the end.

With several data-parallel processes, every process runs the loop; only rank 0 logs, shows
the progress bar, calls the callbacks and writes files. A checkpoint holds the replicated
state once and each process's own random streams, so a resumed run (with the same number of
processes) continues exactly."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from agents.kl import KLBudget
from agents.token_ppo.metrics_log import MetricLogger
from rlhf_gym.distributed import DataParallel


class IterativeTrainer:
    """Base of a trainer whose ``step()`` runs one iteration and returns its metrics.

    A subclass sets ``config`` (a ``NativeTrainerConfig``), ``dp``, ``callbacks``,
    ``iteration``, ``episodes`` and ``kl_budget``, and defines
    ``step``, ``total_iterations``, ``progress``, ``shared_state``, ``process_state``,
    ``restore`` and ``write_pretrained``.
    """

    name = "trainer"
    """The progress bar's label."""
    config: Any
    dp: DataParallel
    callbacks: list[Callable[[Any, dict[str, float]], None]]
    iteration: int
    episodes: int
    kl_budget: KLBudget
    """``step()`` feeds it each batch's ``objective/kl``; once it is spent, training ends."""
    logger: MetricLogger | None = None

    @property
    def total_iterations(self) -> int:
        raise NotImplementedError

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    def progress(self, metrics: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows after an iteration."""
        raise NotImplementedError

    def shared_state(self) -> dict[str, Any]:
        """The state every process holds the same copy of: weights, optimizer, counters..."""
        raise NotImplementedError

    def process_state(self) -> dict[str, Any]:
        """This process's own state: its random generators and its envs'."""
        raise NotImplementedError

    def restore(self, shared: dict[str, Any], process: dict[str, Any]) -> None:
        """Load what :meth:`shared_state` and :meth:`process_state` returned."""
        raise NotImplementedError

    def write_pretrained(self, directory: Path) -> None:
        """Write the trained model in HF format (called on rank 0 only)."""
        raise NotImplementedError

    def save_pretrained(self, directory: str | Path) -> None:
        """The trained model in HF format (``from_pretrained`` loads it); rank 0 writes it."""
        if self.dp.is_main_process:
            self.write_pretrained(Path(directory))
        self.dp.wait()

    def save_checkpoint(self, path: str | Path) -> None:
        """Everything needed to continue exactly, in one file that rank 0 writes."""
        processes = self.dp.gather_objects(self.process_state())
        if self.dp.is_main_process:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            state = {**self.shared_state(), "kl_budget": self.kl_budget.state_dict()}
            torch.save({**state, "processes": processes}, path)
        self.dp.wait()

    def load_checkpoint(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=False)
        processes = state.pop("processes")
        # a checkpoint from before the KL budget existed holds no window: start an empty one
        self.kl_budget.load_state_dict(state.pop("kl_budget", {"recent": []}))
        if len(processes) != self.dp.world_size:
            raise ValueError(
                f"{path} was saved by {len(processes)} processes; resume it with as many "
                f"(this run has {self.dp.world_size})"
            )
        self.restore(state, processes[self.dp.rank])

    def train(self, resume_from: str | Path | None = None) -> list[dict[str, float]]:
        """Run the remaining iterations, or until the KL budget is spent; returns each
        iteration's metrics (``eps``: episodes per second since this call started)."""
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        out = self.config.output_dir
        main = self.dp.is_main_process
        self.logger = MetricLogger(out, self.config.report_to) if out is not None and main else None
        history = []
        start, first_episode = time.perf_counter(), self.episodes
        bar = tqdm(
            total=self.total_iterations, initial=self.iteration,
            disable=not (self.config.progress_bar and main), desc=self.name,
        )  # fmt: skip
        while self.iteration < self.total_iterations and not self.kl_budget.spent:
            metrics = self.step()
            metrics["eps"] = (self.episodes - first_episode) / (time.perf_counter() - start)
            history.append(metrics)
            self._after_iteration(metrics, bar)
        bar.close()
        if out is not None:
            self.save_checkpoint(Path(out) / "checkpoint.pt")
            self.save_pretrained(Path(out) / "final")
        if self.logger is not None:
            self.logger.close()
        return history

    def _after_iteration(self, metrics: dict[str, float], bar: tqdm) -> None:
        if self.logger is not None:
            self.logger.log(metrics, self.iteration)
        if self.dp.is_main_process:
            for callback in self.callbacks:
                callback(self, metrics)
        every = self.config.save_steps
        if self.config.output_dir is not None and every and self.iteration % every == 0:
            self.save_checkpoint(Path(self.config.output_dir) / "checkpoint.pt")
        bar.set_postfix(**self.progress(metrics))
        bar.update(1)
