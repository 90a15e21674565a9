"""Learning curve of TokenPPO on rlhf_gym/Sentiment-v0: held-out gold score against KL.

Trains within a wall-clock budget and evaluates every ``--eval-every`` iterations on the
held-out prompts (``split="test"``): the gold score (VADER compound of sampled completions)
the training reward's score of the same completions (the proxy) and the KL to the reference
(nats per completion), next to the training batch's proxy score and KL. The training reward is
``--reward``: by default the task's learned reward model ``sentiment-rm`` (Sentiment-v0's
default), so the curve shows gold against proxy against KL; ``--reward vader`` optimises the
gold labeler itself.

    python benchmarks/ppo_learning.py --model tiny --minutes 3
    python benchmarks/ppo_learning.py --model smollm2-135m --minutes 15 --freeze-layers 24

Writes benchmarks/results/ppo_learning_<model>.json, a plot of held-out gold and proxy against
sqrt(KL) next to it (.png), and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from machine import load_average, write_result  # benchmarks/machine.py

from agents import TokenPPO, TokenPPOConfig
from rlhf_gym.models import load_model_and_tokenizer
from rlhf_gym.tasks import get_task

RESULTS = Path(__file__).parent / "results"
GOLD_GAIN_TARGET, KL_LIMIT = 0.3, 6.0  # the learning target of the TokenPPO issue


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="preset, 'smollm2-135m' or HF id/path")
    parser.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget")
    parser.add_argument("--max-iterations", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-mini-batches", type=int, default=2)
    parser.add_argument("--num-ppo-epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--kl-coef", type=float, default=0.05)
    parser.add_argument("--adaptive-kl", action="store_true")
    parser.add_argument("--kl-target", type=float, default=6.0)
    parser.add_argument("--freeze-layers", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--missing-eos-penalty", type=float, default=None)
    parser.add_argument("--reward", default="sentiment-rm", help="training reward predictor")
    parser.add_argument("--eval-every", type=int, default=5, help="iterations between evals")
    parser.add_argument("--eval-prompts", type=int, default=64, help="held-out prompts per eval")
    parser.add_argument(
        "--eval-samples", type=int, default=1, help="samples per held-out prompt (less noise)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON path (default results/...)")
    return parser.parse_args()


def make_trainer(args: argparse.Namespace) -> TokenPPO:
    model, tokenizer = load_model_and_tokenizer(args.model)
    config = TokenPPOConfig(
        total_episodes=args.batch_size * args.max_iterations, batch_size=args.batch_size,
        num_mini_batches=args.num_mini_batches, num_ppo_epochs=args.num_ppo_epochs,
        learning_rate=args.learning_rate, kl_coef=args.kl_coef, adaptive_kl=args.adaptive_kl,
        kl_target=args.kl_target, freeze_layers=args.freeze_layers,
        max_new_tokens=args.max_new_tokens, missing_eos_penalty=args.missing_eos_penalty,
        seed=args.seed, progress_bar=False,
    )  # fmt: skip
    env_kwargs = {"task": "sentiment", "reward_predictor": args.reward}
    return TokenPPO(model, tokenizer, config, env_kwargs=env_kwargs, gold_predictor="vader")


def held_out(trainer: TokenPPO, prompts: list[str], reward: str) -> dict[str, float]:
    """Gold and proxy scores of the same held-out samples, and their KL to the reference."""
    figures = trainer.evaluate(
        prompts, "vader", seed=1234, batch_size=32, other_predictors={"proxy": reward}
    )
    return {
        "gold_heldout": figures["score"],
        "proxy_heldout": figures["score/proxy"],
        "kl_heldout": figures["kl"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    trainer = make_trainer(args)
    prompts = get_task("sentiment").prompts("test")[: args.eval_prompts] * args.eval_samples
    start = {"iteration": 0, "episodes": 0, "train_seconds": 0.0}
    curve = [{**start, **held_out(trainer, prompts, args.reward)}]
    print(json.dumps(curve[-1]), flush=True)
    train_seconds, budget = 0.0, args.minutes * 60
    while train_seconds < budget and trainer.iteration < args.max_iterations:
        start = time.perf_counter()
        metrics = trainer.step()
        train_seconds += time.perf_counter() - start
        point = {
            "iteration": trainer.iteration,
            "episodes": trainer.episodes,
            "train_seconds": round(train_seconds, 1),
            "proxy_train": metrics["objective/scores"],
            "gold_train": metrics["objective/gold_scores"],
            "kl_train": metrics["objective/kl"],
            "beta": metrics["objective/kl_coef"],
        }
        last = train_seconds >= budget or trainer.iteration >= args.max_iterations
        if trainer.iteration % args.eval_every == 0 or last:
            point.update(held_out(trainer, prompts, args.reward))
        curve.append(point)
        print(json.dumps(point), flush=True)
    return {"curve": curve, "summary": summary(curve)}


def summary(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """Before / after figures, and the first evaluation that meets the issue's learning target
    (held-out gold up by GOLD_GAIN_TARGET with KL under KL_LIMIT), or None."""
    evaluated = [p for p in curve if "gold_heldout" in p]
    first, last = evaluated[0], evaluated[-1]
    target = next(
        (
            {key: p[key] for key in ("iteration", "train_seconds", "gold_heldout", "kl_heldout")}
            for p in evaluated
            if p["gold_heldout"] - first["gold_heldout"] >= GOLD_GAIN_TARGET
            and p["kl_heldout"] < KL_LIMIT
        ),
        None,
    )
    return {
        "target_reached": target,
        "gold_before": first["gold_heldout"],
        "gold_after": last["gold_heldout"],
        "gold_gain": last["gold_heldout"] - first["gold_heldout"],
        "proxy_before": first["proxy_heldout"],
        "proxy_after": last["proxy_heldout"],
        "kl_after": last["kl_heldout"],
        "max_kl_heldout": max(p["kl_heldout"] for p in evaluated),
        "train_seconds": curve[-1]["train_seconds"],
        "iterations": curve[-1]["iteration"],
    }


def plot(curve: list[dict[str, Any]], path: Path) -> None:
    """Held-out gold and proxy against sqrt(KL), as the pipeline's over-optimisation plot."""
    from rlhf_gym.pipeline.report import plot_overoptimisation

    points = [
        {"kl": p["kl_heldout"], "gold": p["gold_heldout"], "proxy": p["proxy_heldout"]}
        for p in curve
        if "gold_heldout" in p
    ]
    plot_overoptimisation({"held-out prompts": points}, path, window=1)


def main() -> None:
    args = parse_args()
    load_before = load_average()
    result = run(args)
    result["config"] = vars(args)
    name = args.model.replace("/", "_").replace("-135m", "").replace("-", "")
    out = Path(args.output) if args.output else RESULTS / f"ppo_learning_{name}.json"
    write_result(out, result, load_before=load_before)
    plot(result["curve"], out.with_suffix(".png"))
    s = result["summary"]
    print(
        "| model | reward | train time | iterations | held-out gold before | after "
        "| proxy before | after | KL after (nats) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.model} | {args.reward} | {s['train_seconds']:.0f} s | {s['iterations']} | "
        f"{s['gold_before']:+.3f} | {s['gold_after']:+.3f} | {s['proxy_before']:+.3f} | "
        f"{s['proxy_after']:+.3f} | {s['kl_after']:.2f} |"
    )
    print(
        f"first evaluation with gold +{GOLD_GAIN_TARGET} and KL < {KL_LIMIT}: {s['target_reached']}"
    )


if __name__ == "__main__":
    main()
