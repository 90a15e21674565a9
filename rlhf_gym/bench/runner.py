"""Bench: runs the grid (one resumable ``rlhf-gym run`` per task and seed), then the results
and the report.

Every agent of a (task, seed) cell trains in the same run, so they face the same preferences,
the same reward model and the same evaluation. A rerun of the same bench skips every finished
stage of every cell, so an interrupted bench resumes where it stopped; cells finished by shards
of the same bench elsewhere (``merge_from``) are taken from their results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlhf_gym.bench.config import BenchConfig
from rlhf_gym.bench.report import write_bench_report
from rlhf_gym.bench.results import read_rows, run_rows, shard_rows, write_rows
from rlhf_gym.pipeline.run import Pipeline


@dataclass
class Bench:
    """Runs ``config``'s grid; ``log`` gets one line per finished cell."""

    config: BenchConfig
    log: Callable[[str], None] = print
    progress_bar: bool = True

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def results_path(self) -> Path:
        return self.output_dir / "results.jsonl"

    def cells(self) -> list[tuple[str, int]]:
        return [(task, seed) for task in self.config.tasks for seed in self.config.seeds]

    def run(self) -> Path:
        """Run every unfinished cell, write ``results.jsonl`` after each, then the report;
        returns the report's path."""
        merged = shard_rows(self.config)  # a shard made with other settings fails first
        self.output_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.output_dir / "bench.json"
        config_file.write_text(json.dumps(self.config.to_dict(), indent=2), encoding="utf-8")
        rows: list[dict[str, Any]] = []
        cells = self.cells()
        with tqdm(total=len(cells), desc="bench", unit="run", disable=not self.progress_bar) as bar:
            for task, seed in cells:
                bar.set_postfix_str(f"{task} seed {seed}")
                rows += merged.get((task, seed)) or self.run_cell(task, seed)
                write_rows(self.results_path, rows)
                bar.update(1)
        return write_bench_report(self.config, read_rows(self.results_path))

    def run_cell(self, task: str, seed: int) -> list[dict[str, Any]]:
        """One (task, seed) run, its stage log in ``bench.log`` beside it; its rows."""
        run_config = self.config.run_config(task, seed)
        run_config.progress_bars = False  # one bar: the grid's
        directory = self.config.run_dir(task, seed)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "bench.log", "a", encoding="utf-8") as log_file:
            pipeline = Pipeline(run_config, log=lambda line: print(line, file=log_file, flush=True))
            pipeline.run()
        rows = run_rows(pipeline.outputs, self.config.kl_budgets)
        self.log(f"{task} seed {seed}: " + ", ".join(
            f"{r['agent']} gold {r['gold']:.3f} at KL {r['kl']:.2f}" for r in rows
        ))  # fmt: skip
        return rows
