"""Metric sinks: one CSV row per iteration and TensorBoard scalars, under TRL's metric names."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


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
