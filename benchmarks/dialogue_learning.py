"""Learning across turns: an RL agent on a dialogue task with a pretrained model, measured.

Runs (or resumes) ``rlhf-gym run`` on ``--task`` (default ``guess_number``) and writes what the
held-out games say: the reference's and the trained policy's success rate, mean turns, gold and
KL on the same held-out secrets, the held-out probes along training, the training curve and
each stage's wall time (the agent's own training time apart from its probes).

    python benchmarks/dialogue_learning.py                # the defaults: SmolLM2, TokenPPO
    python benchmarks/dialogue_learning.py --iterations 4 --model tiny --output-dir /tmp/gn

An existing ``--output-dir`` made with the same settings is resumed, finished stages skipped,
so running it again only collects the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from machine import load_average, write_result
from scipy.stats import binomtest, fisher_exact

from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.report import plot_overoptimisation
from rlhf_gym.pipeline.run import Pipeline

STAGES = ("preferences", "reward", "evaluate", "report")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="guess_number")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--agent", default="token-ppo")
    parser.add_argument("--output-dir", default="runs/guess-number")
    parser.add_argument("--results", default="benchmarks/results/guess_number_smollm2")
    parser.add_argument("--reward-source", default="gold", choices=["gold", "learned"])
    parser.add_argument("--turn-reward", default="guess-number-off-rules")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="per turn")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--num-ppo-epochs", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=6)
    parser.add_argument("--probe-prompts", type=int, default=32)
    parser.add_argument("--eval-samples-per-prompt", type=int, default=64)
    parser.add_argument("--preference-prompts", type=int, default=8)
    parser.add_argument("--completions-per-prompt", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def training_seconds(agent_dir: Path) -> float | None:
    """The agent's rollout, preparation and update time summed over its iterations (its
    metrics.csv), which leaves out model loading and the held-out probes."""
    files = list(agent_dir.rglob("metrics.csv"))
    if not files:
        return None
    with files[0].open() as handle:
        rows = list(csv.DictReader(handle))
    parts = ("time/rollout", "time/prepare", "time/update")
    return sum(float(row[p]) for row in rows for p in parts if row.get(p))


def success_statistics(policies: dict[str, dict]) -> dict[str, dict]:
    """Each played policy's held-out successes with a 95% Clopper-Pearson interval, and a
    two-sided Fisher exact test of each trained policy against the reference (same secrets)."""
    played = {k: p for k, p in policies.items() if "success_rate" in p}
    counts = {
        k: (round(p["success_rate"] * p["num_samples"]), p["num_samples"])
        for k, p in played.items()
    }
    reference = counts["before (reference)"]
    stats = {}
    for name, (wins, n) in counts.items():
        interval = binomtest(wins, n).proportion_ci(confidence_level=0.95, method="exact")
        stats[name] = {"successes": wins, "games": n, "ci95": [interval.low, interval.high]}
        if name != "before (reference)":
            table = [[wins, n - wins], [reference[0], reference[1] - reference[0]]]
            stats[name]["fisher_p_vs_reference"] = float(fisher_exact(table).pvalue)
    return stats


def main() -> None:
    args = parse_args()
    config = RunConfig(
        task=args.task, model=args.model, agent=args.agent, output_dir=args.output_dir,
        reward_source=args.reward_source, turn_reward=args.turn_reward or None,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
        iterations=args.iterations, num_ppo_epochs=args.num_ppo_epochs,
        eval_every=args.eval_every, probe_prompts=args.probe_prompts,
        eval_samples_per_prompt=args.eval_samples_per_prompt,
        preference_prompts=args.preference_prompts,
        completions_per_prompt=args.completions_per_prompt, seed=args.seed,
    )  # fmt: skip
    load_before = load_average()
    pipeline = Pipeline(config)
    report = pipeline.run()
    out, agent = Path(args.output_dir), f"agent-{args.agent}"
    marker = lambda stage: json.loads((out / stage / "DONE.json").read_text())  # noqa: E731
    seconds = {stage: marker(stage)["seconds"] for stage in (*STAGES, agent)}
    evaluation = marker("evaluate")["summary"]
    results = {
        "settings": config.to_dict(),
        "stage_seconds": seconds,
        "agent_training_seconds": training_seconds(out / agent),
        "evaluation": evaluation,
        "success": success_statistics(evaluation["policies"]),
        "heldout_curve": json.loads((out / agent / "heldout_curve.json").read_text()),
        "training_curve": json.loads((out / agent / "curve.json").read_text()),
        "preferences": marker("preferences")["summary"],
        "reward_model": {k: v for k, v in marker("reward")["summary"].items() if k != "history"},
    }
    directory = Path(args.results)
    write_result(directory / "result.json", results, load_before=load_before)
    shutil.copy(report, directory / "report.md")
    for name in ("overoptimisation.png", "calibration.png"):  # calibration: learned rewards only
        if (report.parent / name).exists():
            shutil.copy(report.parent / name, directory / name)
        else:
            (directory / name).unlink(missing_ok=True)
    # the held-out probes (the same secrets each time) beside the training batches' scores
    plot_overoptimisation(
        {"training batches": results["training_curve"],
         "held-out probes": results["heldout_curve"]},
        directory / "curve.png", window=1,
    )  # fmt: skip
    print(json.dumps(results["evaluation"]["policies"], indent=1))


if __name__ == "__main__":
    main()
