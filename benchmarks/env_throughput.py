"""Throughput of the text-generation env with a random agent and the tiny tokenizer.

For the single env and the vector env (N sub-envs, ``SAME_STEP`` autoreset so that every
sub-env writes one token on every step) it measures, as medians over ``--repeats`` runs:

* steps/s (tokens written per second, over all sub-envs) and episodes/s;
* the share of the time spent inside the reward predictor (VADER, and a zero-cost one);
* the env's own time per ``step`` call (everything but the predictor) divided by the time of
  ONE forward pass of the tiny model on the same batch (1 or N sequences of the observation's
  length): how much the env adds to the cheapest possible policy.

Run: ``python benchmarks/env_throughput.py`` (writes benchmarks/results/env_throughput.json and
prints a Markdown table).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from machine import load_average, write_result  # benchmarks/machine.py

from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv
from rlhf_gym.models import load_model, load_tokenizer
from rlhf_gym.rewards import VaderSentiment

RESULT = Path(__file__).parent / "results" / "env_throughput.json"


class TimedPredictor:
    """Wraps a reward predictor and adds up the wall-clock time spent inside it."""

    def __init__(self, predictor: Callable[..., np.ndarray]) -> None:
        self.predictor = predictor
        self.seconds = 0.0

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        scores = self.predictor(prompts, completions)
        self.seconds += time.perf_counter() - start
        return scores


def zero_predictor(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.zeros(len(prompts), dtype=np.float32)


def run_single(tokenizer: Any, predictor: Callable, steps: int, seed: int) -> dict[str, float]:
    timed = TimedPredictor(predictor)
    env = TextGenerationEnv(task="sentiment", tokenizer=tokenizer, reward_predictor=timed)
    actions = np.random.default_rng(seed).integers(len(tokenizer), size=steps)  # the random agent
    env.reset(seed=seed)
    episodes = 0
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
            episodes += 1
    elapsed = time.perf_counter() - start
    return _figures(elapsed, timed.seconds, steps, episodes, calls=steps)


def run_vector(
    tokenizer: Any, predictor: Callable, num_envs: int, steps: int, seed: int
) -> dict[str, float]:
    timed = TimedPredictor(predictor)
    env = TextGenerationVectorEnv(
        num_envs,
        autoreset_mode=AutoresetMode.SAME_STEP,
        task="sentiment",
        tokenizer=tokenizer,
        reward_predictor=timed,
    )
    calls = max(steps // num_envs, 2 * env.max_new_tokens)
    actions = np.random.default_rng(seed).integers(len(tokenizer), size=(calls, num_envs))
    env.reset(seed=seed)
    episodes = 0
    start = time.perf_counter()
    for batch in actions:
        _, _, terminated, _, _ = env.step(batch)
        episodes += int(terminated.sum())
    elapsed = time.perf_counter() - start
    return _figures(elapsed, timed.seconds, calls * num_envs, episodes, calls=calls)


def _figures(
    elapsed: float, predictor_s: float, tokens: int, episodes: int, calls: int
) -> dict[str, float]:
    return {
        "steps_per_s": tokens / elapsed,
        "episodes_per_s": episodes / elapsed,
        "predictor_share": predictor_s / elapsed,
        "env_us_per_call": (elapsed - predictor_s) / calls * 1e6,
    }


def forward_ms(model: torch.nn.Module, batch: int, length: int, repeats: int) -> float:
    """Median time of one forward pass of ``model`` on a (batch, length) batch of token ids."""
    ids = torch.randint(model.config.vocab_size, (batch, length))  # (B, T)
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    tokenizer = load_tokenizer("tiny")
    model = load_model("tiny", tokenizer)
    length = TextGenerationEnv(task="sentiment", tokenizer=tokenizer).sequence_length
    predictors = {"vader": VaderSentiment(), "zero": zero_predictor}
    rows = []
    for num_envs in [0, *args.num_envs]:  # 0 stands for the single env
        batch = max(num_envs, 1)
        fwd = forward_ms(model, batch, length, args.forward_repeats)
        for name, predictor in predictors.items():
            runs = [
                run_single(tokenizer, predictor, args.steps, seed)
                if num_envs == 0
                else run_vector(tokenizer, predictor, num_envs, args.steps, seed)
                for seed in range(args.repeats)
            ]
            figures = median_of(runs)
            rows.append(
                {
                    "env": "single" if num_envs == 0 else "vector",
                    "num_envs": batch,
                    "predictor": name,
                    **figures,
                    "forward_ms": fwd,
                    "forward_shape": [batch, length],
                    "overhead_per_forward": figures["env_us_per_call"] / 1e3 / fwd,
                }
            )
            print(_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


HEADER = (
    "| env | N | predictor | steps/s | episodes/s | time in predictor | env µs per step call "
    "| tiny forward (ms, batch N) | env overhead / forward |\n"
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _row(r: dict[str, Any]) -> str:
    return (
        f"| {r['env']} | {r['num_envs']} | {r['predictor']} | {r['steps_per_s']:,.0f} "
        f"| {r['episodes_per_s']:,.1f} | {r['predictor_share']:.0%} | {r['env_us_per_call']:,.1f} "
        f"| {r['forward_ms']:.2f} | {r['overhead_per_forward']:.1%} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4800, help="tokens written per run")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5, help="runs per setting (median)")
    parser.add_argument("--forward-repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the forward")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = load_average()
    rows = measure(args)
    result = {
        "settings": {
            **vars(args),
            "output": str(args.output),
            "task": "sentiment",
            "tokenizer": "tiny",
            "autoreset_mode": "SameStep",
        },
        "results": rows,
    }
    command = sys.argv if argv is None else [sys.argv[0], *argv]
    versions = {"gymnasium": gymnasium.__version__, "numpy": np.__version__}
    write_result(args.output, result, load_before=load_before, argv=command, **versions)
    print(HEADER)
    print("\n".join(_row(row) for row in rows))


if __name__ == "__main__":
    main()
