"""Training throughput of our GRPO (``agents.GRPO``) against TRL's ``GRPOTrainer`` (trl 1.12.0).

Same settings for both: the preset's config-built model (``rlhf_gym.models``; TRL gets it saved
with ``save_pretrained`` to a temporary directory, which it loads twice, policy and reference,
and the same tokenizer), 8 prompts of exactly 8 tokens x k = 4 completions per step (32
episodes; TRL ``per_device_train_batch_size=32``, ``num_generations=4``), completions of exactly
24 tokens (ours: EOS banned from the sampler, as TokenPPO's ``ignore_eos``; TRL:
``generation_kwargs={"min_new_tokens": 24}``), one optimisation pass of one optimizer step per
batch (``num_iterations=1``), beta 0.04 (a reference model runs), a reward that costs nothing
(the completion's length in characters / 100), float32 weights, ``--threads`` torch threads.
``--device cpu`` (the default) hides the GPU; ``--device cuda`` runs both on the GPU (ours on its
data-parallel device, TRL ``use_cpu=False``). ``--mixed-precision bf16`` (or fp16) autocasts
both: ours ``GRPOConfig.mixed_precision``, TRL ``bf16=True``, which its Trainer hands to
accelerate; each worker records the mode its trainer ended up in. Models (``--presets``):
``tiny``, ``small``, ``smollm2-135m`` or a shape directory (``trainer_bench.load_policy``). TRL
runs in its own venv (``--trl-python``; ``make bench-trl`` builds it).

Each measurement is a fresh process, ``--runs`` per trainer, interleaved. A step's time runs from
the end of the previous step (or the start of training) to the end of this one: ours from the
trainer's ``callbacks``, TRL's from a ``TrainerCallback.on_step_end``, the device synchronised
before each clock read. The first ``--warmup``
steps are dropped; episodes/s is 32 over the median of the other steps' times, and the figures
are medians over runs.

``gen_share`` is the median share of a step spent generating. Ours: the rollout's own clock
(``time/rollout``: generation, env stepping and scoring). TRL: in its process the policy class's
``generate`` is wrapped to add up its wall time, so it is HF ``generate`` alone, without TRL's
tokenising, decoding and reward call around it.

FLOPs per step (``trainer_bench.ModelShape``, 2 per multiply-add) count the passes each trainer
runs, per completion x 32: generation (the prompt, then one pass per sampled token with a KV
cache), the reference's forward, the update's forward and backward (3 forwards). Ours feeds
P + R - 1 = 31 tokens to those passes and computes R = 24 logits; TRL feeds P + R = 32 and
computes R + 1 (``logits_to_keep + 1``). TRL's third forward, the "old" log-probs, runs only
when generation and optimizer steps are misaligned; the worker reads that from TRL's settings
(not here). The ratio of the two counts is the speed-up equal arithmetic would give.

A third worker, ``passes`` ("transformers passes alone"), runs our step's passes through the
model's own forward (transformers' code, which both trainers call) and nothing else: the prompt
and 23 cached decoding passes, the reference's forward and the update's forward and backward
down to the response's log-probs; no sampling, env, reward, loss, optimizer step or bookkeeping.
It is clocked like the trainers, in fresh processes interleaved with them, so its episodes/s
over TRL's (column "ceiling, transformers passes alone") is the largest speed-up a trainer can
reach on this machine at that moment while its model calls are transformers' eager forward.

The linear-layer floor (``trainer_bench.linear_floor``) times our step's passes on this machine
with everything but their linear layers' matrix products left out (float32, ``--threads``): 32
over it bounds the episodes/s of any trainer running these passes here, and its ratio to TRL's
measured episodes/s is the largest speed-up these settings allow.

Run: ``make bench-trl`` once, then ``python benchmarks/grpo_throughput.py`` (writes
benchmarks/results/grpo_throughput_<model>[_<device>][_<mixed precision>].json per model, the
suffixes only where they are not cpu and no, and prints a Markdown table); ``--quick`` is a smoke
run (tiny, 2 steps, 1 run; results to a temporary directory unless ``--output-dir`` is given).
``benchmarks/gpu.sh`` runs it on a GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
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
    LinearPass,
    ModelShape,
    StepClock,
    check_device,
    fresh_process,
    linear_floor,
    load_policy,
    model_label,
    prompt_ids,
    result_name,
    synchronize,
    trl_missing,
    trl_version,
    worker_environment,
)

PROMPTS, K, PROMPT_TOKENS, RESPONSE_TOKENS, BETA, LR = 8, 4, 8, 24, 0.04, 1e-5
EPISODES = PROMPTS * K  # completions per step
IMPLS = ("grpo", "trl", "passes")
TRAINER_NAMES = {
    "grpo": "ours (GRPO)",
    "trl": "TRL GRPOTrainer",
    "passes": "transformers passes alone",
}
TARGETS = {"tiny": 2.0, "small": 1.5}  # ours / TRL episodes/s we aim at


# ---------------------------------------------------------------------- shared setup
def build(preset: str) -> tuple[Any, Any, list[str]]:
    """Policy, tokenizer and 8-token prompt texts, identical in every process."""
    policy, tokenizer = load_policy(preset)
    prompts = [tokenizer.decode(ids) for ids in prompt_ids(tokenizer, PROMPT_TOKENS)]
    return policy, tokenizer, prompts


def length_reward(completions: list[str]) -> list[float]:
    """The reward both trainers use: the completion's length in characters / 100."""
    return [len(text) / 100 for text in completions]


class GRPOClock(StepClock):
    """Per-step clocks, and the completion lengths (in tokens) seen."""

    def __init__(self, device: str) -> None:
        super().__init__(device)
        self.lengths: set[int] = set()

    def figures(self, flops: dict[str, float], environment: dict[str, Any]) -> dict[str, Any]:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        lengths = [min(self.lengths), max(self.lengths)]
        return {
            "steps": self.steps,
            "completion_tokens": lengths,
            "flops": flops,
            "peak_rss_mb": peak,
            "environment": environment,
        }


def step_passes() -> list[LinearPass]:
    """Our step's passes as its linear layers see them (the FLOP count's passes): the prompts,
    one pass per sampled token but the last, the reference's forward, the update's forward and
    backward."""
    fed, logits = EPISODES * (PROMPT_TOKENS + RESPONSE_TOKENS - 1), EPISODES * RESPONSE_TOKENS
    return [
        LinearPass("prompt", EPISODES * PROMPT_TOKENS, EPISODES),
        LinearPass("decode", EPISODES, EPISODES, count=RESPONSE_TOKENS - 1),
        LinearPass("reference", fed, logits),
        LinearPass("update", fed, logits, backward=True),
    ]


def step_flops(shape: ModelShape, fed: int, logits: int, no_grad_forwards: int) -> dict[str, float]:
    """FLOPs of one step of 32 completions: generation, the no-grad forwards (the reference,
    and TRL's old log-probs where it runs them) and the update (forward + backward)."""
    forward = shape.forward_flops(fed, 0, logits)
    per_completion = {
        "generation": shape.generation_flops(PROMPT_TOKENS, RESPONSE_TOKENS),
        "no_grad_forwards": no_grad_forwards * forward,
        "update": 3 * forward,
    }
    flops = {name: EPISODES * value for name, value in per_completion.items()}
    return flops | {"total": sum(flops.values())}


# ---------------------------------------------------------------------- workers
def run_ours(preset: str, steps: int, device: str, mixed: str) -> dict[str, Any]:
    from agents import GRPO, GRPOConfig
    from agents.token_ppo.rollout import Sampler

    policy, tokenizer, prompts = build(preset)
    config = GRPOConfig(
        total_episodes=EPISODES * steps, batch_size=PROMPTS, num_generations=K,
        max_new_tokens=RESPONSE_TOKENS, beta=BETA, num_iterations=1, num_mini_batches=1,
        learning_rate=LR, progress_bar=False, mixed_precision=mixed,
    )  # fmt: skip
    clock = GRPOClock(device)

    def on_step(trainer: GRPO, metrics: dict[str, float]) -> None:
        clock.tick(metrics["time/rollout"])
        for key in ("completions/min_length", "completions/max_length"):
            clock.lengths.add(int(metrics[key]))

    env_kwargs = {
        "prompts": prompts,
        "reward_predictor": lambda _, completions: np.asarray(length_reward(completions)),
        "max_prompt_tokens": PROMPT_TOKENS,
    }
    trainer = GRPO(policy, tokenizer, config, env_kwargs=env_kwargs, callbacks=[on_step])
    check_device(device, trainer.dp.device, "GRPO")
    # GRPOConfig has no ignore_eos: ban EOS as TokenPPO does, for fixed-length completions.
    trainer.sampler = Sampler(config.temperature, trainer.env.eos_token_id)
    clock.start()
    trainer.train()
    fed, logits = PROMPT_TOKENS + RESPONSE_TOKENS - 1, RESPONSE_TOKENS  # response_hidden
    flops = step_flops(ModelShape.of(policy.config), fed, logits, no_grad_forwards=1)
    return clock.figures(flops, worker_environment(device, trainer.dp.accelerator.mixed_precision))


class GenerateTimer:
    """Wraps ``cls.generate`` to add up the wall time spent in it (device synchronised)."""

    def __init__(self, cls: type, device: str) -> None:
        self.seconds, self.calls = 0.0, 0
        original = cls.generate

        def timed(model: Any, *args: Any, **kwargs: Any) -> Any:
            synchronize(device)
            start = time.perf_counter()
            try:
                return original(model, *args, **kwargs)
            finally:
                synchronize(device)
                self.seconds += time.perf_counter() - start
                self.calls += 1

        cls.generate = timed


def run_trl(preset: str, steps: int, device: str, mixed: str) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    policy, tokenizer, prompts = build(preset)
    clock = GRPOClock(device)
    timer = GenerateTimer(type(policy), device)  # TRL loads this class from the saved directory
    generated = [0.0]

    class Clock(TrainerCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            clock.start()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            clock.tick(timer.seconds - generated[0])
            generated[0] = timer.seconds

    def reward(completions: list[str], completion_ids: list[list[int]], **_: Any) -> list[float]:
        clock.lengths |= {len(ids) for ids in completion_ids}
        return length_reward(completions)

    with tempfile.TemporaryDirectory() as tmp:
        policy.save_pretrained(f"{tmp}/model")
        tokenizer.save_pretrained(f"{tmp}/model")
        args = trl_config(GRPOConfig, f"{tmp}/out", steps, device, mixed)
        trainer = GRPOTrainer(
            model=f"{tmp}/model", reward_funcs=reward, args=args, processing_class=tokenizer,
            train_dataset=Dataset.from_dict({"prompt": prompts}), callbacks=[Clock()],
        )  # fmt: skip
        check_device(device, trainer.accelerator.device, "TRL GRPOTrainer")
        trainer.train()
    if timer.calls != steps:
        raise RuntimeError(f"generate was timed {timer.calls} times over {steps} steps")
    misaligned = args.gradient_accumulation_steps % (
        args.steps_per_generation * args.num_iterations
    )
    fed, logits = PROMPT_TOKENS + RESPONSE_TOKENS, RESPONSE_TOKENS + 1  # logits_to_keep + 1
    shape = ModelShape.of(policy.config)
    flops = step_flops(shape, fed, logits, no_grad_forwards=1 + bool(misaligned))
    return clock.figures(flops, worker_environment(device, trainer.accelerator.mixed_precision))


def trl_config(config_class: type, output_dir: str, steps: int, device: str, mixed: str) -> Any:
    """TRL's GRPOConfig for the settings of the module docstring."""
    return config_class(
        output_dir=output_dir, per_device_train_batch_size=EPISODES, num_generations=K,
        gradient_accumulation_steps=1, max_completion_length=RESPONSE_TOKENS,
        generation_kwargs={"min_new_tokens": RESPONSE_TOKENS}, temperature=1.0,
        num_iterations=1, beta=BETA, learning_rate=LR, max_steps=steps,
        bf16=mixed == "bf16", fp16=mixed == "fp16", gradient_checkpointing=False,
        use_cpu=device == "cpu", report_to=[], save_strategy="no", logging_steps=1000,
        disable_tqdm=True, seed=0,
    )  # fmt: skip


def worker(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    run = {"grpo": run_ours, "trl": run_trl, "passes": run_passes}[args.worker]
    return run(args.presets[0], args.steps_n, args.device, args.mixed_precision)


def run_passes(preset: str, steps: int, device: str, mixed: str) -> dict[str, Any]:
    """Our step's passes through the model's own forward (transformers' code) and nothing else:
    no sampling, env, reward, loss beyond the log-probs, optimizer or bookkeeping. Steps are
    clocked as the trainers' are; episodes/s here bounds any trainer that runs these passes
    through this model code, on this machine at this moment, from above."""
    policy, tokenizer, _ = build(preset)
    policy.to(device)
    reference = copy.deepcopy(policy).eval()
    groups = prompt_ids(tokenizer, PROMPT_TOKENS)[:PROMPTS]
    prompt = torch.tensor(groups, device=device).repeat_interleave(K, 0)  # (32, P), k per prompt
    response = prompt[:, -1:].expand(-1, RESPONSE_TOKENS)  # (32, R): what is fed costs the same
    sequences = torch.cat([prompt, response], 1)  # (32, P + R)
    clock = GRPOClock(device)
    clock.lengths.add(RESPONSE_TOKENS)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed)
    with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
        clock.start()
        for _ in range(steps):
            synchronize(device)
            start = time.perf_counter()
            decode_passes(policy, prompt)
            synchronize(device)
            generating = time.perf_counter() - start
            with torch.no_grad():
                response_logprobs(reference, sequences)
            response_logprobs(policy, sequences).mean().backward()
            policy.zero_grad(set_to_none=True)
            clock.tick(generating)
    fed, logits = PROMPT_TOKENS + RESPONSE_TOKENS - 1, RESPONSE_TOKENS
    flops = step_flops(ModelShape.of(policy.config), fed, logits, no_grad_forwards=1)
    return clock.figures(flops, worker_environment(device, mixed))


@torch.no_grad()
def decode_passes(model: Any, prompt: torch.Tensor) -> None:
    """Generation's passes: the prompt (B, P) in one pass filling the KV cache, then one (B, 1)
    pass per sampled token but the last, each feeding the prompt's last token (what is fed
    does not change the cost)."""
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    for _ in range(RESPONSE_TOKENS - 1):
        out = model(input_ids=prompt[:, -1:], cache=out.cache, use_cache=True, logits_to_keep=1)


def response_logprobs(model: Any, sequences: torch.Tensor) -> torch.Tensor:
    """(B, P + R) prompt and response -> (B, R) log-probs of the response's tokens, feeding
    the P + R - 1 tokens that predict them (the reference's and the update's pass)."""
    logits = model(input_ids=sequences[:, :-1], logits_to_keep=RESPONSE_TOKENS).logits  # (B, R, V)
    response = sequences[:, -RESPONSE_TOKENS:, None]  # (B, R, 1)
    return logits.log_softmax(-1).gather(-1, response).squeeze(-1)


# ---------------------------------------------------------------------- orchestration
def measure(impl: str, preset: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """One fresh process; its figures, or why it failed (or cannot run)."""
    if impl == "trl" and trl_missing(args.trl_python):
        return trl_missing(args.trl_python)
    python = args.trl_python if impl == "trl" else sys.executable
    command = [__file__, "--worker", impl, "--presets", preset]
    command += ["--steps", str(args.steps[preset]), "--threads", str(args.threads)]
    command += ["--device", args.device, "--mixed-precision", args.mixed_precision]
    outcome = fresh_process(python, command, args.device)
    return outcome if isinstance(outcome, str) else run_figures(outcome, args.warmup)


def run_figures(raw: dict[str, Any], warmup: int) -> dict[str, Any]:
    """One run's episodes/s and generating share, medians over the steps after warm-up."""
    steps = raw["steps"][warmup:]
    seconds = statistics.median(step["seconds"] for step in steps)
    return {
        "episodes_per_s": EPISODES / seconds,
        "tokens_per_s": EPISODES * RESPONSE_TOKENS / seconds,
        "gen_share": statistics.median(step["generating"] / step["seconds"] for step in steps),
        "step_seconds": seconds,
        "gflop_per_s": raw["flops"]["total"] / seconds / 1e9,
        **raw,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("episodes_per_s", "tokens_per_s", "gen_share", "step_seconds", "gflop_per_s")
    medians = {key: statistics.median(run[key] for run in runs) for key in keys}
    firsts = {"flops_per_step": runs[0]["flops"], "environment": runs[0]["environment"]}
    return medians | firsts | {"runs": runs}


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    args.steps = {p: args.steps_n or (12 if p == "tiny" else 8) for p in args.presets}
    if min(args.steps.values()) <= args.warmup:
        raise SystemExit(f"--steps {args.steps} must exceed --warmup {args.warmup}")
    results = {}
    for preset in args.presets:
        load_before = load_average()
        results[preset] = measure_preset(preset, args)
        save(preset, results[preset], args, load_before)  # per preset: invocations add up
    print(table(results))


def measure_preset(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both trainers' figures over ``--runs`` fresh processes each, and their comparison."""
    runs: dict[str, list] = {impl: [] for impl in IMPLS}
    for repeat in range(args.runs):  # interleaved, so load changes hit both alike
        for impl in IMPLS:
            outcome = measure(impl, preset, args)
            shown = outcome if isinstance(outcome, str) else f"{outcome['episodes_per_s']:.1f}"
            print(f"{model_label(preset)} {impl} run {repeat}: {shown}", file=sys.stderr)
            runs[impl].append(outcome)
    figures = {}
    for impl, outcomes in runs.items():
        good = [o for o in outcomes if isinstance(o, dict)]
        figures[impl] = summarise(good) if good else {"error": outcomes[-1]}
    if args.device == "cpu" and args.mixed_precision == "no":  # the floor's matmuls: fp32, CPU
        shape = ModelShape.of(build(preset)[0].config)
        figures["linear_floor_seconds"] = linear_floor(shape, step_passes(), args.threads)
    return figures | {"comparison": comparison(preset, figures)}


def comparison(preset: str, by_impl: dict[str, Any]) -> dict[str, Any]:
    """Ours / TRL in episodes/s, the target, and the ceilings: at equal arithmetic, with our
    passes through transformers' model code alone, with their linear layers alone."""
    ours, trl, passes = by_impl["grpo"], by_impl["trl"], by_impl["passes"]
    if "error" in ours or "error" in trl:
        return {"target": TARGETS.get(preset)}
    floor = by_impl.get("linear_floor_seconds")
    return {
        "speedup": ours["episodes_per_s"] / trl["episodes_per_s"],
        "target": TARGETS.get(preset),
        "flop_ratio": trl["flops_per_step"]["total"] / ours["flops_per_step"]["total"],
        "passes_ratio": None
        if "error" in passes
        else passes["episodes_per_s"] / trl["episodes_per_s"],
        "floor_ratio": None if floor is None else EPISODES / floor["total"] / trl["episodes_per_s"],
    }


def save(
    preset: str, figures: dict[str, Any], args: argparse.Namespace, load_before: list[float]
) -> None:
    """One model's figures and settings, in one file (see the module docstring for its name)."""
    label = model_label(preset)
    result = {"preset": label, "settings": settings(args), "results": figures}
    name = result_name("grpo_throughput", label, args.device, args.mixed_precision)
    path = args.output_dir / name
    write_result(path, result, load_before=load_before, trl=trl_version(args.trl_python))
    print(f"wrote {path}", file=sys.stderr)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "prompts_per_step": PROMPTS, "num_generations": K, "episodes_per_step": EPISODES,
        "prompt_tokens": PROMPT_TOKENS, "response_tokens": RESPONSE_TOKENS, "beta": BETA,
        "num_iterations": 1, "learning_rate": LR, "reward": "len(completion) / 100",
        "dtype": "float32", "mixed_precision": args.mixed_precision, "device": args.device,
        "steps_per_run": args.steps,
        "warmup_steps": args.warmup, "runs": args.runs, "threads": args.threads,
    }  # fmt: skip


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| model | trainer | episodes/s | generating | GFLOP/step | GFLOP/s | ours/TRL | target "
        "| ceiling at equal FLOP/s | ceiling, transformers passes alone "
        "| ceiling, linear layers alone |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for preset, by_impl in results.items():
        comp, label = by_impl["comparison"], model_label(preset)
        for impl in IMPLS:
            fig, name = by_impl[impl], TRAINER_NAMES[impl]
            if "error" in fig:
                lines.append(f"| {label} | {name} | {fig['error']} | | | | | | | | |")
                continue
            cells = comparison_cells(comp) if impl == "grpo" else ("",) * 5
            gflop = fig["flops_per_step"]["total"] / 1e9
            lines.append(
                f"| {label} | {name} | {fig['episodes_per_s']:.1f} | {fig['gen_share']:.0%} | "
                f"{gflop:.3f} | {fig['gflop_per_s']:.1f} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def comparison_cells(comp: dict[str, Any]) -> tuple[str, ...]:
    """The table's ours/TRL, target (met or missed) and the three ceilings' cells."""
    if "speedup" not in comp:
        return ("-",) * 5
    speedup, target = comp["speedup"], comp["target"]
    verdict = (
        "-" if target is None else f">= {target}x " + ("met" if speedup >= target else "missed")
    )
    ceilings = (comp["passes_ratio"], comp["floor_ratio"])
    return (
        f"{speedup:.2f}x", verdict, f"{comp['flop_ratio']:.2f}x",
        *("-" if ratio is None else f"{ratio:.2f}x" for ratio in ceilings),
    )  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--presets", nargs="+", default=["tiny", "small"],
        help="models: tiny, small, smollm2-135m or a shape directory (trainer_bench)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per trainer")
    parser.add_argument(
        "--steps", dest="steps_n", type=int, default=0,
        help="steps per run, warm-up included (default 12 tiny, 8 otherwise)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped from each run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=DEVICES, default="cpu")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="no")
    parser.add_argument(
        "--trl-python", default=str(TRL_PYTHON), help="python of the TRL venv (make bench-trl)"
    )
    parser.add_argument("--output-dir", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: tiny, 2 steps (1 warm-up), 1 run"
    )
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.presets, args.steps_n, args.warmup, args.runs = ["tiny"], 2, 1, 1
        quick_dir = Path(tempfile.gettempdir()) / "grpo_throughput_quick"
        args.output_dir = args.output_dir or quick_dir
    args.output_dir = args.output_dir or RESULTS
    return args


if __name__ == "__main__":
    main()
