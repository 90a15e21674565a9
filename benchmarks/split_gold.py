"""Does a trained policy's gain carry past the prompts it trained on? Gold on both splits.

The pipeline evaluates on held-out (test-split) prompts only. This scores a reference and
trained policies on a task's train split and its test split alike: the same samples per
prompt, sampling seed, temperature and response budget for every policy and split, gold from
the task's gold scorer, KL to the reference from the samples (``rlhf_gym.evaluation``). A
policy that gains on train prompts but not on test ones learned those prompts (or what SFT
already memorised of them), not the task.

    python benchmarks/split_gold.py --task arithmetic --reference RUN/sft/model \\
        --policy grpo=RUN/agent-grpo/policy --max-new-tokens 20 --output OUT.json

Writes ``--output`` (JSON: per split, per policy: gold, its standard error, KL, samples) and
prints a Markdown table. The standard error treats the samples as independent; with several
samples per prompt they are not quite (a prompt's samples share its difficulty), so it is a
little optimistic.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from machine import load_average, write_result  # benchmarks/machine.py
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlhf_gym.evaluation import evaluate_policy
from rlhf_gym.models import load_model, load_tokenizer
from rlhf_gym.rewards import make_reward_predictor
from rlhf_gym.tasks import Task, get_task

SPLITS = ("train", "test")


def split_gold(
    task: Task,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    policies: dict[str, PreTrainedModel],
    *,
    samples_per_prompt: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    limit: int | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """{split: {name: figures}} for the reference (named "reference") and each policy, on
    the first ``limit`` prompts of each split (all by default)."""
    gold = make_reward_predictor(task.gold_reward)
    everyone = {"reference": reference, **policies}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for split in SPLITS:
        prompts = task.prompts(split)[:limit]
        results[split] = {}
        for name, policy in everyone.items():
            evaluation, _ = evaluate_policy(
                policy, reference, tokenizer, prompts, gold, gold,
                samples_per_prompt=samples_per_prompt, max_new_tokens=max_new_tokens,
                seed=seed, temperature=temperature, progress_bar=False,
            )  # fmt: skip
            figures = evaluation.as_dict()
            n = figures["num_samples"]
            results[split][name] = {
                "gold": figures["gold"],
                "gold_standard_error": figures["gold_std"] / max(n - 1, 1) ** 0.5,
                "kl": figures["kl"],
                "prompts": len(prompts),
                "samples": n,
            }
    return results


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(results[SPLITS[0]])
    lines = ["| policy | " + " | ".join(f"{s} gold | {s} KL" for s in SPLITS) + " |"]
    lines.append("| --- |" + " ---: | ---: |" * len(SPLITS))
    for name in names:
        cells = [
            f"{results[s][name]['gold']:.3f} ± {results[s][name]['gold_standard_error']:.3f} | "
            f"{results[s][name]['kl']:.2f}"
            for s in SPLITS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_policy(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--policy wants NAME=PATH, got {text!r}")
    return name, path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, help="a registered task (rlhf_gym.tasks)")
    parser.add_argument("--reference", required=True, help="the reference policy's directory")
    parser.add_argument(
        "--policy", type=parse_policy, action="append", required=True, metavar="NAME=PATH",
        help="a trained policy's directory (repeatable)",
    )  # fmt: skip
    parser.add_argument("--samples-per-prompt", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the task's")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--limit", type=int, default=None, help="prompts per split (all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    load_before = load_average()
    task = get_task(args.task)
    policies = {name: load_model(path) for name, path in args.policy}
    results = split_gold(
        task, load_model(args.reference), load_tokenizer(args.reference), policies,
        samples_per_prompt=args.samples_per_prompt,
        max_new_tokens=args.max_new_tokens or task.max_new_tokens, seed=args.seed,
        temperature=args.temperature, limit=args.limit,
    )  # fmt: skip
    settings: dict[str, Any] = {
        "task": args.task, "reference": args.reference, "policies": dict(args.policy),
        "samples_per_prompt": args.samples_per_prompt, "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens or task.max_new_tokens, "seed": args.seed,
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.output, {"settings": settings, "results": results}, load_before=load_before)
    print(table(results))


if __name__ == "__main__":
    main()
