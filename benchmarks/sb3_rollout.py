"""SB3 rollout speed with and without the policy's KV cache, and a PPO iteration's time split.

    python benchmarks/sb3_rollout.py                # tiny preset, 32 and 64 new tokens
    python benchmarks/sb3_rollout.py --presets tiny small

Rollout steps/s counts env steps (one token each, all envs together) during SB3's
``collect_rollouts``, excluding the KL callback; times come from callback hooks
(``on_rollout_start`` / ``on_rollout_end``), medians over several rollouts. The iteration split
runs the example's PPO settings with the KL penalty: rollout (policy + env), KL (reference
forward + reward edit, inside ``on_step``) and update (``train()`` and logging).
Writes ``benchmarks/results/sb3_rollout.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import gymnasium as gym
import torch
from machine import load_average, write_result  # benchmarks/machine.py
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import rlhf_gym  # noqa: F401  (registers the envs)
from agents.sb3 import CausalLMPolicy, KLPenaltyCallback
from rlhf_gym.models import load_tokenizer

RESULTS = Path(__file__).parent / "results" / "sb3_rollout.json"


class IterationTimer(KLPenaltyCallback):
    """The KL callback (or a no-op when ``kl=False``) that also times each phase."""

    def __init__(self, kl: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kl = kl
        self.times: dict[str, list[float]] = {"rollout": [], "kl": [], "update": []}
        self._mark = 0.0
        self._kl_seconds = 0.0
        self._rollout_end: float | None = None

    def _init_callback(self) -> None:
        if self.kl:
            super()._init_callback()

    def _on_rollout_start(self) -> None:
        super()._on_rollout_start()
        now = time.perf_counter()
        if self._rollout_end is not None:
            self.times["update"].append(now - self._rollout_end)
        self._mark, self._kl_seconds = now, 0.0

    def _on_step(self) -> bool:
        if not self.kl:
            return True
        start = time.perf_counter()
        super()._on_step()
        self._kl_seconds += time.perf_counter() - start
        return True

    def _on_rollout_end(self) -> None:
        if self.kl:
            super()._on_rollout_end()
        now = time.perf_counter()
        self.times["rollout"].append(now - self._mark - self._kl_seconds)
        self.times["kl"].append(self._kl_seconds)
        self._rollout_end = now

    def _on_training_end(self) -> None:
        self.times["update"].append(time.perf_counter() - self._rollout_end)


def make_env(n_envs: int, new_tokens: int) -> DummyVecEnv:
    tokenizer = load_tokenizer("tiny")
    kwargs = {"tokenizer": tokenizer, "max_new_tokens": new_tokens, "max_prompt_tokens": 32}
    env = DummyVecEnv([lambda: gym.make("rlhf_gym/Sentiment-v0", **kwargs)] * n_envs)
    env.seed(0)
    return env


def rollout_speed(preset: str, new_tokens: int, cache: bool, args: argparse.Namespace) -> dict:
    """Rollout steps/s: the update is made as cheap as PPO allows (one epoch, one minibatch)."""
    n_steps = new_tokens
    env = make_env(args.n_envs, new_tokens)
    policy_kwargs = {"model": preset, "use_kv_cache": cache}
    batch = n_steps * args.n_envs
    agent = PPO(
        CausalLMPolicy,
        env,
        n_steps=n_steps,
        batch_size=batch,
        n_epochs=1,
        policy_kwargs=policy_kwargs,
        seed=0,
    )
    timer = IterationTimer(kl=False)
    agent.learn(batch * args.rollouts, callback=timer)
    rollout = statistics.median(timer.times["rollout"])
    return {
        "preset": preset,
        "new_tokens": new_tokens,
        "kv_cache": cache,
        "steps_per_s": batch / rollout,
        "rollout_s_median": rollout,
        "rollout_s_all": timer.times["rollout"],
    }


def iteration_split(args: argparse.Namespace) -> dict:
    """The example's PPO settings (tiny preset, 24 new tokens) with the KL penalty."""
    env = make_env(16, 24)
    agent = PPO(
        CausalLMPolicy,
        env,
        n_steps=48,
        batch_size=64,
        n_epochs=2,
        gamma=1.0,
        learning_rate=3e-3,
        vf_coef=0.1,
        policy_kwargs={"model": "tiny"},
        seed=0,
    )
    timer = IterationTimer(kl=True, kl_coef=0.02, gold_reward="vader")
    agent.learn(48 * 16 * args.rollouts, callback=timer)
    medians = {phase: statistics.median(values) for phase, values in timer.times.items()}
    total = sum(medians.values())
    return {
        "settings": "tiny, 16 envs x 48 steps, 24 new tokens, batch 64, 2 epochs, KL on",
        "median_s": medians,
        "share": {k: v / total for k, v in medians.items()},
        "all_s": timer.times,
    }


def markdown(results: dict) -> str:
    lines = [
        "| preset | new tokens | steps/s, no cache | steps/s, KV cache | speed-up |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = {(r["preset"], r["new_tokens"], r["kv_cache"]): r for r in results["rollout"]}
    for preset, tokens in sorted({(p, t) for p, t, _ in rows}):
        off, on = rows[(preset, tokens, False)], rows[(preset, tokens, True)]
        speedup = on["steps_per_s"] / off["steps_per_s"]
        lines.append(
            f"| {preset} | {tokens} | {off['steps_per_s']:.0f} | "
            f"{on['steps_per_s']:.0f} | {speedup:.2f}x |"
        )
    split = results["iteration"]
    parts = ", ".join(
        f"{k} {v:.2f} s ({split['share'][k]:.0%})" for k, v in split["median_s"].items()
    )
    lines.append(f"\nPPO iteration ({split['settings']}): {parts}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny"])
    parser.add_argument("--new-tokens", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--rollouts", type=int, default=3, help="rollouts per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = load_average()
    rollout = [
        rollout_speed(preset, tokens, cache, args)
        for preset in args.presets
        for tokens in args.new_tokens
        for cache in (False, True)
    ]
    results = {"rollout": rollout, "iteration": iteration_split(args)}
    record = write_result(args.output, results, load_before=load_before)
    print(markdown(results))
    print(f"\nload average before {load_before}, after {record['load']['after']}")


if __name__ == "__main__":
    main()
