"""Train a language model with TokenPPO on rlhf_gym/Sentiment-v0 and save it in HF format.

Prints the held-out gold score (VADER, split="test") and the KL to the reference before and
after training; logs TRL-named metrics to <output>/metrics.csv and TensorBoard.

    python examples/token_ppo_sentiment.py --model tiny --episodes 4096 --output runs/tiny
    python examples/token_ppo_sentiment.py --model smollm2-135m --freeze-layers 22 \\
        --learning-rate 3e-5 --max-new-tokens 16 --episodes 512

The training reward is the task's default (or ``--reward``); the gold score printed here is what
the policy really achieves once the proxy is a learned reward model.
"""

from __future__ import annotations

import argparse

import torch

from agents import TokenPPO, TokenPPOConfig
from rlhf_gym.models import load_model_and_tokenizer
from rlhf_gym.tasks import get_task


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--episodes", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--kl-coef", type=float, default=0.05)
    parser.add_argument("--freeze-layers", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--reward", default=None, help="training reward (default: the task's)")
    parser.add_argument("--output", default="runs/token_ppo_sentiment")
    parser.add_argument("--resume", default=None, help="a checkpoint.pt to continue from")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model_and_tokenizer(args.model)
    config = TokenPPOConfig(
        total_episodes=args.episodes,
        batch_size=args.batch_size,
        num_mini_batches=2,
        learning_rate=args.learning_rate,
        kl_coef=args.kl_coef,
        freeze_layers=args.freeze_layers,
        max_new_tokens=args.max_new_tokens,
        output_dir=args.output,
        save_steps=10,
    )
    env_kwargs = {"task": "sentiment"}
    if args.reward is not None:
        env_kwargs["reward_predictor"] = args.reward
    trainer = TokenPPO(model, tokenizer, config, env_kwargs=env_kwargs, gold_predictor="vader")
    held_out = get_task("sentiment").prompts("test")
    before = trainer.evaluate(held_out, "vader")
    print(f"before: gold {before['score']:+.3f}  KL {before['kl']:.2f} nats")
    trainer.train(resume_from=args.resume)
    after = trainer.evaluate(held_out, "vader")
    print(f"after:  gold {after['score']:+.3f}  KL {after['kl']:.2f} nats")
    print(f"policy saved to {args.output}/final (AutoModelForCausalLM.from_pretrained)")


if __name__ == "__main__":
    main()
