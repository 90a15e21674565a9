"""Training throughput of TokenPPO, the SB3 path (CausalLMPolicy + PPO) and TRL's PPO trainer.

Same model, batch, prompt and response lengths for all: ``--batch-sizes`` prompts (default 16) of
exactly 8 tokens, 24-token responses of fixed length (TRL ``stop_token=None``; TokenPPO
``ignore_eos=True``), 4 PPO epochs, 1 minibatch, float32 weights, a reward model (a sequence
classifier built from the policy's config, seeded) scoring every completion. ``--device cpu``
(the default) hides the GPU; ``--device cuda`` runs both sides on the GPU: ours through its
data-parallel device, TRL with ``use_cpu=False``. ``--mixed-precision bf16`` (or fp16) autocasts
both: TokenPPO ``mixed_precision``, TRL ``bf16=True``. TRL 1.12's PPOTrainer builds its own
``Accelerator`` without passing that setting on, and transformers 5 no longer exports it to
``ACCELERATE_MIXED_PRECISION``, so ``bf16=True`` alone leaves it in fp32; its worker sets that
variable, as ``accelerate launch --mixed_precision bf16`` would. TRL then autocasts its training
forward (the prepared policy-and-value wrapper); its rollout's generation, reference, reward and
value passes stay float32, as TRL ships them. Each worker records the mode its trainer ended up
in (``environment.mixed_precision``).

TRL runs in its own venv (``--trl-python``, trl==1.12.0; ``make bench-trl`` builds it), as
shipped and with ``gc.collect`` disabled (``trl-nogc``; its two calls per update are patched out
in that worker). Each measurement is a fresh process; the figures are medians over ``--runs``.

Models (``--presets``): ``tiny``, ``small``, ``smollm2-135m`` or a shape directory
(``trainer_bench.load_policy``). Each step is timed from the end of the previous one (ours: the
trainer's ``callbacks``; TRL: a ``TrainerCallback.on_step_end``), the device synchronised before
each clock read; every run's per-step times are in the JSON. Episodes/s and generated tokens/s
are over the training loop after the first ``--warmup`` iterations (0: the whole loop),
generation + scoring + update, model construction excluded; ``gen_share`` is the share of that
time spent generating (TokenPPO: generation + env stepping + scoring; TRL: its
``batch_generation``). The SB3 path has no per-step clock and runs with ``--warmup 0`` only.

Run: ``make bench-trl`` once, then ``python benchmarks/ppo_throughput.py --presets tiny small``
(writes benchmarks/results/ppo_throughput_<model>[_b<batch>][_<device>][_<mixed precision>].json,
one per model and batch size, the suffixes only where they differ from 16, cpu and no, and prints
a Markdown table). ``benchmarks/gpu.sh`` runs it on a GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import load_average, write_result  # benchmarks/machine.py
from trainer_bench import (
    DEVICES,
    MIXED_PRECISION,
    RESULTS,
    TRL_PYTHON,
    StepClock,
    check_device,
    fresh_process,
    load_policy,
    model_label,
    prompt_ids,
    result_name,
    synchronize,
    trl_missing,
    trl_version,
    worker_environment,
)

BATCH, PROMPT_TOKENS, RESPONSE_TOKENS, EPOCHS, KL_COEF, LR = 16, 8, 24, 4, 0.05, 1e-5
IMPLS = ("tokenppo", "tokenppo-separate-value", "sb3", "trl", "trl-nogc")
OURS, PEERS = ("tokenppo", "tokenppo-separate-value"), ("trl", "trl-nogc")


# ---------------------------------------------------------------------- shared setup
def build(preset: str) -> tuple[Any, Any, Any, list[list[int]]]:
    """Policy, tokenizer, reward model and 8-token prompts, identical in every process."""
    from transformers import AutoModelForSequenceClassification

    from rlhf_gym.models.presets import PRESET_SEED

    policy, tokenizer = load_policy(preset)
    config = copy.deepcopy(policy.config)
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PRESET_SEED + 1)
        reward_model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    return policy, tokenizer, reward_model.eval(), prompt_ids(tokenizer, PROMPT_TOKENS)


class RewardModelPredictor:
    """The reward model as an env reward predictor: score at the last real token of the text."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    @torch.no_grad()
    def __call__(self, prompts: list[str], completions: list[str]) -> np.ndarray:
        texts = [p + c for p, c in zip(prompts, completions, strict=True)]
        batch = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.model.device)
        return self.model(**batch).logits[:, 0].float().cpu().numpy()


# ---------------------------------------------------------------------- workers
def run_tokenppo(args: argparse.Namespace, value_model: str) -> dict[str, Any]:
    from agents import TokenPPO, TokenPPOConfig

    batch, device = args.batch_sizes[0], args.device
    policy, tokenizer, reward_model, prompts = build(args.presets[0])
    config = TokenPPOConfig(
        total_episodes=batch * args.iterations_n, batch_size=batch, num_ppo_epochs=EPOCHS,
        num_mini_batches=1, learning_rate=LR, kl_coef=KL_COEF, ignore_eos=True,
        value_model=value_model, progress_bar=False, max_new_tokens=RESPONSE_TOKENS,
        mixed_precision=args.mixed_precision,
    )  # fmt: skip
    env_kwargs = {
        "prompts": [tokenizer.decode(ids) for ids in prompts],
        "reward_predictor": RewardModelPredictor(reward_model.to(device), tokenizer),
        "max_prompt_tokens": PROMPT_TOKENS,
    }
    clock = StepClock(device)

    def on_step(trainer: TokenPPO, metrics: dict[str, float]) -> None:
        tokens = metrics["val/response_length"] * batch
        clock.tick(metrics["time/rollout"], episodes=batch, tokens=tokens)

    trainer = TokenPPO(policy, tokenizer, config, env_kwargs=env_kwargs, callbacks=[on_step])
    check_device(device, trainer.dp.device, "TokenPPO")
    clock.start()
    trainer.train()
    mixed = trainer.dp.accelerator.mixed_precision
    return {"steps": clock.steps, "environment": worker_environment(device, mixed)}


def run_sb3(args: argparse.Namespace) -> dict[str, Any]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from agents.sb3 import CausalLMPolicy, KLPenaltyCallback
    from rlhf_gym.envs import TextGenerationEnv

    batch, device = args.batch_sizes[0], args.device
    policy, tokenizer, reward_model, prompts = build(args.presets[0])
    env_kwargs = {
        "tokenizer": tokenizer,
        "prompts": [tokenizer.decode(ids) for ids in prompts],
        "reward_predictor": RewardModelPredictor(reward_model.to(device), tokenizer),
        "max_prompt_tokens": PROMPT_TOKENS,
        "max_new_tokens": RESPONSE_TOKENS,
    }
    venv = make_vec_env(lambda: TextGenerationEnv(**env_kwargs), n_envs=batch, seed=0)
    steps = RESPONSE_TOKENS + 1  # NEXT_STEP autoreset spends one step per episode
    agent = PPO(
        CausalLMPolicy, venv, n_steps=steps, batch_size=batch * steps, n_epochs=EPOCHS,
        gamma=1.0, gae_lambda=0.95, vf_coef=0.1, ent_coef=0.0, learning_rate=LR,
        policy_kwargs={"model": policy}, seed=0, device=device,
    )  # fmt: skip
    clock = StepClock(device)  # one "step": the whole loop (SB3 has no per-iteration hook here)
    clock.start()
    agent.learn(batch * steps * args.iterations_n, callback=KLPenaltyCallback(KL_COEF))
    lengths = [n for env_lengths in venv.env_method("get_episode_lengths") for n in env_lengths]
    clock.tick(float("nan"), episodes=len(lengths), tokens=sum(lengths))
    return {"steps": clock.steps, "environment": worker_environment(device, "no")}


def run_trl(args: argparse.Namespace, disable_gc: bool) -> dict[str, Any]:
    import gc

    from datasets import Dataset
    from transformers import TrainerCallback
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    from trl.experimental.ppo import ppo_trainer as trl_module

    batch, device, mixed = args.batch_sizes[0], args.device, args.mixed_precision
    if disable_gc:
        gc.collect = lambda *args, **kwargs: 0  # the calls the peer makes twice per update
    if mixed != "no":  # PPOTrainer's Accelerator reads only this (see the module docstring)
        os.environ["ACCELERATE_MIXED_PRECISION"] = mixed
    clock, generating = StepClock(device), TimedGeneration(trl_module, device)

    class Clock(TrainerCallback):
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            clock.start()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.tick(generating.lap(), episodes=batch, tokens=batch * RESPONSE_TOKENS)

    policy, tokenizer, reward_model, prompts = build(args.presets[0])
    value_model = type(reward_model)(reward_model.config)
    value_model.load_state_dict(reward_model.state_dict())
    rows = [prompts[i % len(prompts)] for i in range(max(256, batch))]
    with tempfile.TemporaryDirectory() as out:
        trainer = PPOTrainer(
            args=trl_config(PPOConfig, out, batch, args.iterations_n, device, mixed),
            processing_class=tokenizer, model=policy, ref_model=type(policy)(policy.config),
            reward_model=reward_model, train_dataset=Dataset.from_dict({"input_ids": rows}),
            value_model=value_model, callbacks=[Clock()],
        )  # fmt: skip
        check_device(device, trainer.accelerator.device, "TRL PPOTrainer")
        trainer.train()
    environment = worker_environment(device, trainer.accelerator.mixed_precision)
    gc_state = "disabled (patched out)" if disable_gc else "as shipped"
    return {"steps": clock.steps, "environment": environment | {"trl_gc_collect": gc_state}}


def trl_config(
    config_class: type, output_dir: str, batch: int, iterations: int, device: str, mixed: str
) -> Any:
    """TRL's PPOConfig for the settings of the module docstring."""
    return config_class(
        output_dir=output_dir, per_device_train_batch_size=batch, gradient_accumulation_steps=1,
        num_ppo_epochs=EPOCHS, num_mini_batches=1, total_episodes=batch * iterations,
        response_length=RESPONSE_TOKENS, stop_token=None, temperature=1.0,
        learning_rate=LR, kl_coef=KL_COEF, bf16=mixed == "bf16", fp16=mixed == "fp16",
        gradient_checkpointing=False, report_to=[], save_strategy="no",
        num_sample_generations=0, local_rollout_forward_batch_size=batch,
        use_cpu=device == "cpu", seed=0, logging_steps=1000,
    )  # fmt: skip


class TimedGeneration:
    """Wraps TRL's ``batch_generation`` to add up its wall time (device synchronised)."""

    def __init__(self, module: Any, device: str) -> None:
        self.seconds, self.lapped = 0.0, 0.0
        original = module.batch_generation

        def timed(*args: Any, **kwargs: Any) -> Any:
            synchronize(device)
            start = time.perf_counter()
            out = original(*args, **kwargs)
            synchronize(device)
            self.seconds += time.perf_counter() - start
            return out

        module.batch_generation = timed

    def lap(self) -> float:
        """Seconds generating since the previous lap."""
        lap, self.lapped = self.seconds - self.lapped, self.seconds
        return lap


def worker(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    impl = args.worker
    if impl.startswith("tokenppo"):
        return run_tokenppo(args, "separate" if impl.endswith("separate-value") else "head")
    if impl == "sb3":
        return run_sb3(args)
    return run_trl(args, disable_gc=impl == "trl-nogc")


# ---------------------------------------------------------------------- orchestration
def measure(impl: str, preset: str, batch: int, args: argparse.Namespace) -> dict[str, Any] | str:
    """One fresh process per measurement; returns its figures or why it failed."""
    python = args.trl_python if impl.startswith("trl") else sys.executable
    command = [__file__, "--worker", impl, "--presets", preset, "--batch-sizes", str(batch)]
    command += ["--iterations", str(args.iterations[preset]), "--threads", str(args.threads)]
    command += ["--device", args.device, "--mixed-precision", args.mixed_precision]
    outcome = fresh_process(python, command, args.device)
    return outcome if isinstance(outcome, str) else run_figures(outcome, args.warmup)


def available(impl: str, args: argparse.Namespace) -> str | None:
    """Why ``impl`` cannot run here, or None."""
    if impl.startswith("trl"):
        return trl_missing(args.trl_python)
    if impl == "sb3":
        if args.warmup:
            return "skipped: the SB3 path has no per-step clock (--warmup 0 only)"
        try:
            from agents.sb3 import CausalLMPolicy  # noqa: F401
        except ImportError as err:
            return f"missing: agents.sb3 is not importable ({err})"
    return None


def run_figures(raw: dict[str, Any], warmup: int) -> dict[str, Any]:
    """One run's throughput over its steps after the first ``warmup``."""
    steps = raw["steps"][warmup:]
    seconds = sum(step["seconds"] for step in steps)
    return {
        "episodes_per_s": sum(step["episodes"] for step in steps) / seconds,
        "tokens_per_s": sum(step["tokens"] for step in steps) / seconds,
        "gen_share": sum(step["generating"] for step in steps) / seconds,
        "seconds": seconds,
        **raw,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("episodes_per_s", "tokens_per_s", "gen_share", "seconds")
    medians = {key: statistics.median(run[key] for run in runs) for key in keys}
    return medians | {"environment": runs[0]["environment"], "runs": runs}


def speedups(figures: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Ours / TRL in episodes/s, for every pair that ran: ``"tokenppo/trl-nogc": 3.1``."""
    rate = {impl: fig["episodes_per_s"] for impl, fig in figures.items() if "error" not in fig}
    return {
        f"{ours}/{peer}": rate[ours] / rate[peer]
        for ours in OURS
        for peer in PEERS
        if ours in rate and peer in rate
    }


def measure_batch(preset: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every trainer's figures over ``--runs`` fresh processes, interleaved."""
    runs: dict[str, list] = {impl: [] for impl in args.impls}
    for repeat in range(args.runs):  # interleaved, so load changes hit every impl alike
        for impl in args.impls:
            outcome = available(impl, args) or measure(impl, preset, batch, args)
            shown = outcome if isinstance(outcome, str) else f"{outcome['episodes_per_s']:.1f}"
            print(f"{model_label(preset)} B={batch} {impl} run {repeat}: {shown}", file=sys.stderr)
            runs[impl].append(outcome)
    figures = {}
    for impl, outcomes in runs.items():
        good = [o for o in outcomes if isinstance(o, dict)]
        figures[impl] = summarise(good) if good else {"error": outcomes[-1]}
    return figures


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    args.iterations = {p: args.iterations_n or (8 if p == "tiny" else 4) for p in args.presets}
    if min(args.iterations.values()) <= args.warmup:
        raise SystemExit(f"--iterations {args.iterations} must exceed --warmup {args.warmup}")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for preset in args.presets:
        for batch in args.batch_sizes:
            load_before = load_average()
            results[preset, batch] = measure_batch(preset, batch, args)
            save(preset, batch, results[preset, batch], args, load_before)  # invocations add up
    print(table(results))


def save(
    preset: str,
    batch: int,
    figures: dict[str, Any],
    args: argparse.Namespace,
    load_before: list[float],
) -> None:
    """One model's and batch size's figures, settings and speed-ups, in one file (see the
    module docstring for its name)."""
    label = model_label(preset)
    result = {
        "preset": label, "batch": batch, "settings": settings(args, batch),
        "results": figures, "speedups": speedups(figures),
    }  # fmt: skip
    name = result_name("ppo_throughput", label, args.device, args.mixed_precision, batch, BATCH)
    path = args.output_dir / name
    write_result(path, result, load_before=load_before, trl=trl_version(args.trl_python))
    print(f"wrote {path}", file=sys.stderr)


def settings(args: argparse.Namespace, batch: int) -> dict[str, Any]:
    return {
        "batch": batch, "prompt_tokens": PROMPT_TOKENS, "response_tokens": RESPONSE_TOKENS,
        "num_ppo_epochs": EPOCHS, "minibatches": 1, "dtype": "float32",
        "mixed_precision": args.mixed_precision, "device": args.device,
        "iterations_per_run": args.iterations, "warmup_iterations": args.warmup,
        "runs": args.runs, "threads": args.threads,
    }  # fmt: skip


def table(results: dict[tuple[str, int], dict[str, Any]]) -> str:
    lines = [
        "| model | batch | trainer | episodes/s | tokens/s | generating | TokenPPO speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (preset, batch), by_impl in results.items():
        label, ours = model_label(preset), by_impl.get("tokenppo", {}).get("episodes_per_s")
        for impl, fig in by_impl.items():
            if "error" in fig:
                lines.append(f"| {label} | {batch} | {impl} | {fig['error']} | | | |")
                continue
            ratio = f"{ours / fig['episodes_per_s']:.2f}x" if ours else "-"
            share = "-" if np.isnan(fig["gen_share"]) else f"{fig['gen_share']:.0%}"
            lines.append(
                f"| {label} | {batch} | {impl} | {fig['episodes_per_s']:.1f} | "
                f"{fig['tokens_per_s']:.0f} | {share} | {ratio} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--presets", nargs="+", default=["tiny", "small"],
        help="models: tiny, small, smollm2-135m or a shape directory (trainer_bench)",
    )  # fmt: skip
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[BATCH])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per trainer")
    parser.add_argument(
        "--iterations", dest="iterations_n", type=int, default=0,
        help="PPO iterations per run, warm-up included (default 8 tiny, 4 otherwise)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=int, default=0, help="iterations left out of the figures (0: none)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=DEVICES, default="cpu")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="no")
    parser.add_argument(
        "--trl-python", default=str(TRL_PYTHON), help="python of the TRL venv (make bench-trl)"
    )
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
