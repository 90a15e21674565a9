"""Training throughput of TokenPPO, the SB3 path (CausalLMPolicy + PPO) and TRL's PPO trainer.

Same model, batch, prompt and response lengths for all: batch 16 prompts of exactly 8 tokens,
24-token responses of fixed length (TRL ``stop_token=None``; TokenPPO ``ignore_eos=True``), 4
PPO epochs, 1 minibatch, fp32, CPU (the GPU is hidden), a reward model
(``LlamaForSequenceClassification`` built from the preset's config) scoring every completion.
TRL runs in its own venv (``--trl-python``, trl==1.12.0; ``make bench-trl`` builds it), as
shipped and with ``gc.collect`` disabled. Each measurement is a fresh process; the figures are
medians over ``--runs``.

Episodes/s and generated tokens/s are over the whole training loop (generation + scoring +
update), model construction excluded; ``gen_share`` is the share of that time spent
generating (TokenPPO: generation + env stepping + scoring; TRL: its ``batch_generation``).

Run: ``make bench-trl`` once, then ``python benchmarks/ppo_throughput.py --presets tiny small``
(writes benchmarks/results/ppo_throughput_<preset>.json, one per preset, and prints a Markdown
table).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import load_average, write_result  # benchmarks/machine.py
from trainer_bench import RESULTS, TRL_PYTHON, fresh_process, prompt_ids, trl_missing, trl_version

BATCH, PROMPT_TOKENS, RESPONSE_TOKENS, EPOCHS, KL_COEF, LR = 16, 8, 24, 4, 0.05, 1e-5
IMPLS = ("tokenppo", "tokenppo-separate-value", "sb3", "trl", "trl-nogc")


# ---------------------------------------------------------------------- shared setup
def build(preset: str) -> tuple[Any, Any, Any, list[list[int]]]:
    """Policy, tokenizer, reward model and 8-token prompts, identical in every process."""
    from transformers import LlamaForSequenceClassification

    from rlhf_gym.models import load_model, load_tokenizer
    from rlhf_gym.models.presets import PRESET_SEED, preset_config

    tokenizer = load_tokenizer(preset)
    policy = load_model(preset, tokenizer)
    config = preset_config(preset, tokenizer)
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PRESET_SEED + 1)
        reward_model = LlamaForSequenceClassification(config).eval()
    return policy, tokenizer, reward_model, prompt_ids(tokenizer, PROMPT_TOKENS)


class RewardModelPredictor:
    """The reward model as an env reward predictor: score at the last real token of the text."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    @torch.no_grad()
    def __call__(self, prompts: list[str], completions: list[str]) -> np.ndarray:
        texts = [p + c for p, c in zip(prompts, completions, strict=True)]
        batch = self.tokenizer(texts, padding=True, return_tensors="pt")
        return self.model(**batch).logits[:, 0].float().numpy()


# ---------------------------------------------------------------------- workers
def run_tokenppo(preset: str, iterations: int, value_model: str) -> dict[str, float]:
    from agents import TokenPPO, TokenPPOConfig

    policy, tokenizer, reward_model, prompts = build(preset)
    config = TokenPPOConfig(
        total_episodes=BATCH * iterations, batch_size=BATCH, num_ppo_epochs=EPOCHS,
        num_mini_batches=1, learning_rate=LR, kl_coef=KL_COEF, ignore_eos=True,
        value_model=value_model, progress_bar=False, max_new_tokens=RESPONSE_TOKENS,
    )  # fmt: skip
    env_kwargs = {
        "prompts": [tokenizer.decode(ids) for ids in prompts],
        "reward_predictor": RewardModelPredictor(reward_model, tokenizer),
        "max_prompt_tokens": PROMPT_TOKENS,
    }
    trainer = TokenPPO(policy, tokenizer, config, env_kwargs=env_kwargs)
    start = time.perf_counter()
    history = trainer.train()
    seconds = time.perf_counter() - start
    tokens = sum(m["val/response_length"] for m in history) * BATCH
    generating = sum(m["time/rollout"] for m in history)
    return _figures(seconds, BATCH * iterations, tokens, generating)


def run_sb3(preset: str, iterations: int) -> dict[str, float]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from agents.sb3 import CausalLMPolicy, KLPenaltyCallback
    from rlhf_gym.envs import TextGenerationEnv

    policy, tokenizer, reward_model, prompts = build(preset)
    env_kwargs = {
        "tokenizer": tokenizer,
        "prompts": [tokenizer.decode(ids) for ids in prompts],
        "reward_predictor": RewardModelPredictor(reward_model, tokenizer),
        "max_prompt_tokens": PROMPT_TOKENS,
        "max_new_tokens": RESPONSE_TOKENS,
    }
    venv = make_vec_env(lambda: TextGenerationEnv(**env_kwargs), n_envs=BATCH, seed=0)
    steps = RESPONSE_TOKENS + 1  # NEXT_STEP autoreset spends one step per episode
    agent = PPO(
        CausalLMPolicy, venv, n_steps=steps, batch_size=BATCH * steps, n_epochs=EPOCHS,
        gamma=1.0, gae_lambda=0.95, vf_coef=0.1, ent_coef=0.0, learning_rate=LR,
        policy_kwargs={"model": policy}, seed=0, device="cpu",
    )  # fmt: skip
    start = time.perf_counter()
    agent.learn(BATCH * steps * iterations, callback=KLPenaltyCallback(KL_COEF))
    seconds = time.perf_counter() - start
    lengths = [n for env_lengths in venv.env_method("get_episode_lengths") for n in env_lengths]
    return _figures(seconds, len(lengths), sum(lengths), float("nan"))


def run_trl(preset: str, iterations: int, disable_gc: bool) -> dict[str, float]:
    import gc

    from datasets import Dataset
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    from trl.experimental.ppo import ppo_trainer as trl_module

    if disable_gc:
        gc.collect = lambda *args, **kwargs: 0  # the calls the peer makes twice per update
    generating = [0.0]
    original = trl_module.batch_generation

    def timed_generation(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = original(*args, **kwargs)
        generating[0] += time.perf_counter() - start
        return out

    trl_module.batch_generation = timed_generation
    policy, tokenizer, reward_model, prompts = build(preset)
    value_model = type(reward_model)(reward_model.config)
    value_model.load_state_dict(reward_model.state_dict())
    dataset = Dataset.from_dict({"input_ids": [prompts[i % len(prompts)] for i in range(256)]})
    with tempfile.TemporaryDirectory() as out:
        args = PPOConfig(
            output_dir=out, per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
            num_ppo_epochs=EPOCHS, num_mini_batches=1, total_episodes=BATCH * iterations,
            response_length=RESPONSE_TOKENS, stop_token=None, temperature=1.0,
            learning_rate=LR, kl_coef=KL_COEF, bf16=False, fp16=False,
            gradient_checkpointing=False, report_to=[], save_strategy="no",
            num_sample_generations=0, local_rollout_forward_batch_size=BATCH,
            use_cpu=True, seed=0, logging_steps=1000,
        )  # fmt: skip
        trainer = PPOTrainer(
            args=args, processing_class=tokenizer, model=policy,
            ref_model=type(policy)(policy.config), reward_model=reward_model,
            train_dataset=dataset, value_model=value_model,
        )  # fmt: skip
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return _figures(
        seconds, BATCH * iterations, BATCH * iterations * RESPONSE_TOKENS, generating[0]
    )


def _figures(seconds: float, episodes: int, tokens: float, generating: float) -> dict[str, float]:
    return {
        "seconds": seconds,
        "episodes_per_s": episodes / seconds,
        "tokens_per_s": tokens / seconds,
        "gen_share": generating / seconds,
    }


def worker(impl: str, preset: str, iterations: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    if impl.startswith("tokenppo"):
        value = "separate" if impl.endswith("separate-value") else "head"
        return run_tokenppo(preset, iterations, value)
    if impl == "sb3":
        return run_sb3(preset, iterations)
    return run_trl(preset, iterations, disable_gc=impl == "trl-nogc")


# ---------------------------------------------------------------------- orchestration
def measure(impl: str, preset: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """One fresh process per measurement; returns its figures or why it failed."""
    python = args.trl_python if impl.startswith("trl") else sys.executable
    command = [__file__, "--worker", impl, "--presets", preset]
    command += ["--iterations", str(args.iterations[preset]), "--threads", str(args.threads)]
    return fresh_process(python, command)


def available(impl: str, args: argparse.Namespace) -> str | None:
    """Why ``impl`` cannot run here, or None."""
    if impl.startswith("trl"):
        return trl_missing(args.trl_python)
    if impl == "sb3":
        try:
            from agents.sb3 import CausalLMPolicy  # noqa: F401
        except ImportError as err:
            return f"missing: agents.sb3 is not importable ({err})"
    return None


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = ("episodes_per_s", "tokens_per_s", "gen_share", "seconds")
    return {key: statistics.median(run[key] for run in runs) for key in keys} | {"runs": runs}


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.presets[0], args.iterations_n, args.threads)))
        return
    args.iterations = {p: args.iterations_n or (8 if p == "tiny" else 4) for p in args.presets}
    results: dict[str, dict[str, Any]] = {}
    for preset in args.presets:
        load_before = load_average()
        results[preset] = {}
        runs: dict[str, list] = {impl: [] for impl in args.impls}
        for repeat in range(args.runs):  # interleaved, so load changes hit every impl alike
            for impl in args.impls:
                reason = available(impl, args)
                outcome = reason or measure(impl, preset, args)
                print(f"{preset} {impl} run {repeat}: {outcome}", file=sys.stderr)
                runs[impl].append(outcome)
        for impl, outcomes in runs.items():
            good = [o for o in outcomes if isinstance(o, dict)]
            results[preset][impl] = summarise(good) if good else {"error": outcomes[-1]}
        save(preset, results[preset], args, load_before)  # per preset: invocations add up
    print(table(results))


def save(
    preset: str, figures: dict[str, Any], args: argparse.Namespace, load_before: list[float]
) -> None:
    """One preset's figures and settings, in <output dir>/ppo_throughput_<preset>.json."""
    result = {"preset": preset, "settings": settings(args), "results": figures}
    path = args.output_dir / f"ppo_throughput_{preset}.json"
    write_result(path, result, load_before=load_before, trl=trl_version(args.trl_python))


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "batch": BATCH, "prompt_tokens": PROMPT_TOKENS, "response_tokens": RESPONSE_TOKENS,
        "num_ppo_epochs": EPOCHS, "minibatches": 1, "dtype": "float32", "device": "cpu",
        "iterations_per_run": args.iterations, "runs": args.runs, "threads": args.threads,
    }  # fmt: skip


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| preset | trainer | episodes/s | tokens/s | generating | TokenPPO speed-up |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for preset, by_impl in results.items():
        ours = by_impl.get("tokenppo", {}).get("episodes_per_s")
        for impl, fig in by_impl.items():
            if "error" in fig:
                lines.append(f"| {preset} | {impl} | {fig['error']} | | | |")
                continue
            ratio = f"{ours / fig['episodes_per_s']:.2f}x" if ours else "-"
            share = "-" if np.isnan(fig["gen_share"]) else f"{fig['gen_share']:.0%}"
            lines.append(
                f"| {preset} | {impl} | {fig['episodes_per_s']:.1f} | "
                f"{fig['tokens_per_s']:.0f} | {share} | {ratio} |"
            )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per trainer")
    parser.add_argument(
        "--iterations", dest="iterations_n", type=int, default=0,
        help="PPO iterations per run (default 8 tiny, 4 otherwise)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--trl-python", default=str(TRL_PYTHON), help="python of the TRL venv (make bench-trl)"
    )
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
