"""The whole pipeline over several seeds: every agent's held-out gold, KL and perplexity as
mean ± sd over the seeds, and the reward model's held-out accuracy against the Bayes bound of
the same pairs, per seed.

    python benchmarks/pipeline_seeds.py --model tiny --seeds 0 1 2 \
        --agent token-ppo,dpo,sb3-ppo,sb3-a2c,sb3-trpo

Each seed is one ``rlhf-gym run`` into ``<runs>/seed-<S>`` (resumable: a rerun skips finished
stages, so agents can be added later); extra arguments after ``--`` go to every run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import load_average, write_result  # benchmarks/machine.py

RESULTS = Path(__file__).parent / "results"
HEADLINE = ("gold", "proxy", "kl", "perplexity")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--agent", default="token-ppo,dpo,sb3-ppo,sb3-a2c,sb3-trpo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, default=Path("runs/seeds"))
    parser.add_argument("--output", type=Path, default=RESULTS / "pipeline_seeds_tiny.json")
    parser.add_argument("run_args", nargs="*", help="after --: more `rlhf-gym run` flags")
    return parser.parse_args()


def run_seed(args: argparse.Namespace, seed: int) -> tuple[dict[str, Any], float]:
    """One pipeline run; returns its ``metrics.json`` and the wall seconds it took."""
    out = args.runs / f"seed-{seed}"
    command = [
        sys.executable, "-m", "rlhf_gym.cli", "run", "--model", args.model,
        "--agent", args.agent, "--seed", str(seed), "--output-dir", str(out), *args.run_args,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return json.loads((out / "report" / "metrics.json").read_text()), seconds


def summarise(per_seed: dict[int, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per policy present in every seed and headline metric: mean, sd (ddof 1), per-seed values.
    (Best-of-n rows differ between seeds: n is matched to each seed's KL.)"""
    runs = list(per_seed.values())
    names = [n for n in runs[0]["policies"] if all(n in m["policies"] for m in runs)]
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        summary[name] = {}
        for metric in HEADLINE:
            if metric not in runs[0]["policies"][name]:
                continue
            values = [m["policies"][name][metric] for m in runs]
            summary[name][metric] = {
                "mean": float(np.mean(values)),
                "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "per_seed": values,
            }
    return summary


def reward_models(per_seed: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per seed: held-out accuracy ± SE, the bound of the same pairs, and how many SEs above."""
    rows = {}
    for seed, metrics in per_seed.items():
        rm = metrics["reward_model"]
        bound = rm["bayes_bound"]
        excess = (rm["accuracy"] - bound["accuracy"]) / rm["accuracy_standard_error"]
        rows[seed] = {
            "accuracy": rm["accuracy"],
            "standard_error": rm["accuracy_standard_error"],
            "bayes_optimal": bound["accuracy"],
            "bayes_standard_error": bound["standard_error"],
            "gold_tie_share": bound["gold_tie_share"],
            "heldout_pairs": rm["heldout_pairs"],
            "heldout_prompts": rm["heldout_prompts"],
            "standard_errors_above_bayes": excess,
            "spearman_heldout": rm["spearman_heldout"],
        }
    return rows


def markdown(summary: dict[str, Any], trainable: dict[str, int]) -> str:
    lines = [
        "| policy | held-out gold | proxy | KL (nats) | perplexity | trainable params |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, metrics in summary.items():
        cells = [
            f"{metrics[m]['mean']:.3f} ± {metrics[m]['sd']:.3f}" if m in metrics else "–"
            for m in HEADLINE
        ]
        agent = name.removeprefix("after (").removesuffix(")")
        lines.append(f"| {name} | {' | '.join(cells)} | {trainable.get(agent, '–')} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    load_before = load_average()
    per_seed, seconds = {}, {}
    for seed in args.seeds:
        per_seed[seed], seconds[seed] = run_seed(args, seed)
        print(f"seed {seed}: {seconds[seed]:.0f} s", flush=True)
    summary = summarise(per_seed)
    first = next(iter(per_seed.values()))
    trainable = {n: a["trainable_parameters"] for n, a in first["agents"].items()}
    result = {
        "model": args.model,
        "agents": args.agent,
        "seeds": args.seeds,
        "run_args": args.run_args,
        "wall_seconds": seconds,
        "policies": summary,
        "reward_model": reward_models(per_seed),
        "trainable_parameters": trainable,
    }
    write_result(args.output, result, load_before=load_before)
    print(markdown(summary, trainable))
    print(json.dumps(result["reward_model"], indent=2))


if __name__ == "__main__":
    main()
