"""``rlhf-gym demo``: a few random-agent episodes, printing texts and rewards."""

from __future__ import annotations

import argparse

import gymnasium as gym

import rlhf_gym  # noqa: F401  (registers the envs)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("demo", help="run a few random-agent episodes and print them")
    parser.add_argument("--env", default="rlhf_gym/Sentiment-v0", help="registered env id")
    parser.add_argument("--model", default="tiny", help="tokenizer source: preset, HF id or path")
    parser.add_argument("--episodes", type=int, default=3, help="episodes to run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first reset")
    return parser


def run(args: argparse.Namespace) -> int:
    env = gym.make(args.env, model=args.model)
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    for episode in range(args.episodes):
        if episode:
            env.reset()
        done = False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            done = terminated or truncated
        print(f"[{episode}] reward={reward:+.3f} eos={info['eos']}")
        print(f"    prompt:     {info['prompt']}")
        print(f"    completion: {info['completion']!r}")
    env.close()
    return 0
