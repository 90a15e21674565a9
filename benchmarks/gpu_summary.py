"""Ours against TRL, from the files ``benchmarks/gpu.sh`` wrote: one row per comparison, the
ratio of episodes/s against the target, in ``<dir>/gpu_summary.json`` and a Markdown table.

Rows: TokenPPO (value head, the default) and TokenPPO with a separate value model (TRL's layout)
against TRL's PPOTrainer with its ``gc.collect`` calls disabled (the stronger figure, the one the
target is set against) and as shipped, at every batch size measured; our GRPO against TRL's
GRPOTrainer. Each row carries the model, device name, versions and settings its figures were
measured with, and both sides' per-step seconds (first run); the figures themselves, every run's
steps included, stay in the files the row names.

Run: ``python benchmarks/gpu_summary.py --output-dir benchmarks/results/gpu`` (gpu.sh does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from machine import load_average, write_result  # benchmarks/machine.py

TARGETS = {("ppo_throughput", 64): 3.0, ("grpo_throughput", None): 3.0}
"""Ours / TRL episodes/s the GPU run aims at (the issue's): PPO at B = 64 against TRL with its gc
calls off, GRPO against TRL's GRPOTrainer."""
PPO_PAIRS = (("tokenppo", "trl-nogc"), ("tokenppo-separate-value", "trl-nogc"))
AS_SHIPPED = "trl"


def ppo_rows(record: dict[str, Any], file: str) -> list[dict[str, Any]]:
    """TokenPPO's rows of one ppo_throughput file."""
    results, batch = record["results"], record["batch"]
    rows = []
    for ours, peer in PPO_PAIRS:
        if ours not in results:
            continue
        row = comparison_row(record, file, results[ours], results.get(peer), ours, peer)
        row["target"] = TARGETS.get(("ppo_throughput", batch)) if ours == "tokenppo" else None
        shipped = results.get(AS_SHIPPED, {})
        row["trl_as_shipped_episodes_per_s"] = shipped.get("episodes_per_s")
        row["ratio_vs_trl_as_shipped"] = ratio(results[ours], shipped)
        rows.append(row | {"met": met(row)})
    return rows


def grpo_rows(record: dict[str, Any], file: str) -> list[dict[str, Any]]:
    """The GRPO row of one grpo_throughput file."""
    results = record["results"]
    row = comparison_row(record, file, results["grpo"], results.get("trl"), "grpo", "trl")
    row["target"] = TARGETS[("grpo_throughput", None)]
    return [row | {"met": met(row)}]


def comparison_row(
    record: dict[str, Any],
    file: str,
    ours: dict[str, Any],
    peer: dict[str, Any] | None,
    ours_name: str,
    peer_name: str,
) -> dict[str, Any]:
    """Ours against the peer: episodes/s, ratio, where and how both were measured."""
    peer = peer or {"error": f"{peer_name} was not run"}
    return {
        "benchmark": record["benchmark"], "file": file, "model": record["preset"],
        "batch": record.get("batch", record["settings"].get("episodes_per_step")),
        "ours": ours_name, "peer": peer_name,
        "ours_episodes_per_s": ours.get("episodes_per_s"),
        "peer_episodes_per_s": peer.get("episodes_per_s"),
        "ratio": ratio(ours, peer),
        "ours_error": ours.get("error"), "peer_error": peer.get("error"),
        "ours_environment": ours.get("environment"), "peer_environment": peer.get("environment"),
        "settings": record["settings"],
        "ours_step_seconds": step_seconds(ours), "peer_step_seconds": step_seconds(peer),
    }  # fmt: skip


def ratio(ours: dict[str, Any], peer: dict[str, Any]) -> float | None:
    if "episodes_per_s" not in ours or "episodes_per_s" not in peer:
        return None
    return ours["episodes_per_s"] / peer["episodes_per_s"]


def step_seconds(figures: dict[str, Any]) -> list[float] | None:
    """The first run's per-step seconds, warm-up included."""
    runs = figures.get("runs")
    return [step["seconds"] for step in runs[0]["steps"]] if runs else None


def met(row: dict[str, Any]) -> bool | None:
    if row["target"] is None or row["ratio"] is None:
        return None
    return row["ratio"] >= row["target"]


def summarise(directory: Path) -> list[dict[str, Any]]:
    """Every comparison in the result files of ``directory``: PPO by batch size, then GRPO."""
    rows = []
    for pattern, make_rows in (("ppo_throughput_*", ppo_rows), ("grpo_throughput_*", grpo_rows)):
        records = [
            (json.loads(path.read_text(encoding="utf-8")), path.name)
            for path in sorted(directory.glob(f"{pattern}.json"))
        ]
        for record, name in sorted(records, key=lambda pair: pair[0].get("batch", 0)):
            rows += make_rows(record, name)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| benchmark | model | device | batch | ours | ours ep/s | TRL | TRL ep/s | ours/TRL "
        "| target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        device = (row["ours_environment"] or {}).get("device_name", "-")
        speedup = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        target = "-" if row["target"] is None else f">= {row['target']}x"
        if row["met"] is not None:
            target += " met" if row["met"] else " missed"
        lines.append(
            f"| {row['benchmark']} | {row['model']} | {device} | {row['batch']} | {row['ours']} "
            f"| {cell(row['ours_episodes_per_s'], row['ours_error'])} | {row['peer']} "
            f"| {cell(row['peer_episodes_per_s'], row['peer_error'])} | {speedup} | {target} |"
        )
    return "\n".join(lines)


def cell(value: float | None, error: str | None) -> str:
    return f"{value:.1f}" if value is not None else (error or "-")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, required=True, help="where gpu.sh wrote")
    args = parser.parse_args(argv)
    load_before = load_average()
    rows = summarise(args.output_dir)
    if not rows:
        raise SystemExit(f"no ppo_throughput_*.json or grpo_throughput_*.json in {args.output_dir}")
    path = args.output_dir / "gpu_summary.json"
    write_result(path, {"comparisons": rows}, load_before=load_before)
    print(table(rows))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
