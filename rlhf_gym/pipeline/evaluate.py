"""The evaluation stage: the policy before and after the agent, and best-of-n at matched KL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rlhf_gym.evaluation import best_of_n, evaluate_policy, n_matching_kl
from rlhf_gym.rewards import make_reward_predictor
from rlhf_gym.seeding import derived_seed

if TYPE_CHECKING:
    from rlhf_gym.pipeline.outputs import RunOutputs

MAX_BEST_OF_N = 16
SAMPLES_IN_REPORT = 8


def evaluate_run(outputs: RunOutputs) -> dict[str, Any]:
    """Metrics of each policy on held-out prompts, samples before/after, calibration data."""
    c = outputs.config
    reference, tokenizer = outputs.starting_policy()
    gold, proxy = make_reward_predictor(outputs.task.gold_reward), outputs.reward_model()
    prompts = outputs.eval_prompts()
    # every policy samples at the temperature the agents trained at, from the same stream
    options = {
        "samples_per_prompt": c.eval_samples_per_prompt,
        "max_new_tokens": c.max_new_tokens,
        "seed": derived_seed(c.seed, "evaluation"),
        "temperature": c.temperature,
        "progress_bar": c.progress_bars,
    }
    before, before_samples = evaluate_policy(
        reference, reference, tokenizer, prompts, gold, proxy, **options
    )
    policies = {"before (reference)": before.as_dict() | _disagreement(proxy, before_samples)}
    all_samples = list(before_samples)
    after_samples: dict[str, list[tuple[str, str]]] = {}
    for name in c.agents:
        trained = outputs.agent_policy(name)
        after, after_samples[name] = evaluate_policy(
            trained, reference, tokenizer, prompts, gold, proxy, **options
        )
        policies[f"after ({name})"] = after.as_dict() | _disagreement(proxy, after_samples[name])
        all_samples += after_samples[name]
    # best-of-n at each policy's KL, and always at MAX_BEST_OF_N: the benchmark's anchor
    matched = {min(n_matching_kl(max(p["kl"], 0.0)), MAX_BEST_OF_N) for p in policies.values()}
    ns = sorted(matched | {MAX_BEST_OF_N})
    for baseline in best_of_n(
        reference, tokenizer, prompts, gold, proxy, ns,
        max_new_tokens=c.max_new_tokens, seed=options["seed"], temperature=c.temperature,
        progress_bar=c.progress_bars,
    ):  # fmt: skip
        policies[f"best-of-{baseline['n']} (reference)"] = baseline
    return {
        "policies": policies,
        "held_out_prompts": len(prompts),
        "samples": _sample_table(before_samples, after_samples, c.eval_samples_per_prompt),
        "calibration": _calibration(all_samples, gold, proxy),
    }


def _disagreement(proxy: Any, samples: list[tuple[str, str]]) -> dict[str, float]:
    """An ensemble's mean disagreement (members' std) on a policy's samples: it grows where the
    policy reaches text the members were not trained to agree on (empty for a single model)."""
    if not hasattr(proxy, "disagreement"):
        return {}
    prompts, completions = [p for p, _ in samples], [c for _, c in samples]
    return {"disagreement": float(np.mean(proxy.disagreement(prompts, completions)))}


def _calibration(samples: list[tuple[str, str]], gold, proxy) -> dict[str, list[float]]:
    prompts = [prompt for prompt, _ in samples]
    completions = [completion for _, completion in samples]
    return {
        "gold": gold(prompts, completions).tolist(),
        "proxy": proxy(prompts, completions).tolist(),
    }


def _sample_table(
    before: list[tuple[str, str]], after: dict[str, list[tuple[str, str]]], step: int
) -> list[dict[str, str]]:
    """One row per prompt (its first sample): the completion before and after each agent."""
    rows = []
    for position in range(0, min(len(before), SAMPLES_IN_REPORT * step), step):
        prompt, completion = before[position]
        row = {"prompt": prompt, "before": completion}
        row |= {f"after ({name})": samples[position][1] for name, samples in after.items()}
        rows.append(row)
    return rows
