"""Does SFT on Arithmetic-v0's demonstrations give SmolLM2-135M-Instruct a non-zero gold?

Without it the model answers no held-out problem, every preference pair is a gold tie and no
agent can learn (the SmolLM2 bench's arithmetic cells). This measures the held-out gold of the
reference and, for each learning rate, of the model after ``--epochs`` of the project's
SFTTrainer on the task's demonstrations: the first ``--prompts`` test-split prompts, one sample
each at the task's response budget, scored by the task's gold scorer.

Usage: python benchmarks/sft_arithmetic.py [--learning-rates 2e-3 1e-4] [--epochs 1]
Writes benchmarks/results/sft_arithmetic_smollm2.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from machine import load_average, write_result  # benchmarks/machine.py
from transformers import PreTrainedModel

from rlhf_gym.models.loading import load_model, load_tokenizer
from rlhf_gym.models.sampling import sample_completions
from rlhf_gym.rewards import make_reward_predictor
from rlhf_gym.tasks import get_task
from rlhf_gym.training.sft_config import SFTConfig
from rlhf_gym.training.sft_trainer import SFTTrainer

RESULTS = Path(__file__).parent / "results" / "sft_arithmetic_smollm2.json"
MODEL = "smollm2-135m"


def held_out_gold(model: PreTrainedModel, prompts: list[str], seed: int) -> dict[str, object]:
    """Mean gold of one sample per prompt, the count correct and three sample answers."""
    task = get_task("arithmetic")
    groups = sample_completions(
        model, load_tokenizer(MODEL), prompts, 1, max_new_tokens=task.max_new_tokens, seed=seed
    )
    texts = [group[0] for group in groups]
    scores = np.asarray(make_reward_predictor(task.gold_reward)(prompts, texts), dtype=float)
    return {"gold": float(scores.mean()), "correct": int(scores.sum()), "samples": texts[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[2e-3, 1e-4])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = load_average()
    task = get_task("arithmetic")
    prompts = task.prompts("test")[: args.prompts]
    demonstrations = task.demonstrations()
    rows = [{"sft": None, **held_out_gold(load_model(MODEL), prompts, args.seed)}]
    for learning_rate in args.learning_rates:
        model = load_model(MODEL)
        config = SFTConfig(
            num_train_epochs=args.epochs, learning_rate=learning_rate, seed=args.seed,
            progress_bar=False,
        )  # fmt: skip
        start = time.perf_counter()
        SFTTrainer(model, config, demonstrations, load_tokenizer(MODEL)).train()
        seconds = time.perf_counter() - start
        sft = {"learning_rate": learning_rate, "epochs": args.epochs, "seconds": seconds}
        rows.append({"sft": sft, **held_out_gold(model, prompts, args.seed)})
    settings = {"model": MODEL, "prompts": len(prompts), "demonstrations": len(demonstrations)}
    write_result(RESULTS, {"settings": settings, "rows": rows}, load_before=load_before)
    print("| SFT | held-out gold | correct | SFT seconds |\n| --- | ---: | ---: | ---: |")
    for row in rows:
        sft = row["sft"]
        name = "none (reference)" if sft is None else f"lr {sft['learning_rate']:g}"
        seconds = "" if sft is None else f"{sft['seconds']:.0f}"
        print(f"| {name} | {row['gold']:.3f} | {row['correct']}/{len(prompts)} | {seconds} |")


if __name__ == "__main__":
    main()
