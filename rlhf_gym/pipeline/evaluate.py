"""The evaluation stage: the policy before and after the agent, and best-of-n at matched KL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rlhf_gym.evaluation import best_of_n, evaluate_policy, n_matching_kl
from rlhf_gym.models import load_model
from rlhf_gym.rewards import make_reward_predictor

if TYPE_CHECKING:
    from rlhf_gym.pipeline.run import Pipeline

MAX_BEST_OF_N = 16
SAMPLES_IN_REPORT = 8


def evaluate_run(pipeline: Pipeline) -> dict[str, Any]:
    """Metrics of each policy on held-out prompts, samples before/after, calibration data."""
    c = pipeline.config
    reference, tokenizer = pipeline._starting_policy()
    trained = pipeline._load("agent", lambda p: load_model(str(p / "policy")))
    gold, proxy = make_reward_predictor(pipeline.task.gold_reward), pipeline._reward_model()
    prompts = pipeline.eval_prompts()
    options = {
        "samples_per_prompt": c.eval_samples_per_prompt,
        "max_new_tokens": c.max_new_tokens,
        "seed": c.seed,
    }
    before, before_samples = evaluate_policy(
        reference, reference, tokenizer, prompts, gold, proxy, **options
    )
    after, after_samples = evaluate_policy(
        trained, reference, tokenizer, prompts, gold, proxy, **options
    )
    n = min(n_matching_kl(max(after.kl, 0.0)), MAX_BEST_OF_N)
    baseline = best_of_n(
        reference, tokenizer, prompts, gold, proxy, n, max_new_tokens=c.max_new_tokens, seed=c.seed
    )
    completions = [text for _, text in before_samples + after_samples]
    texts_prompts = [prompt for prompt, _ in before_samples + after_samples]
    calibration = {
        "gold": gold(texts_prompts, completions).tolist(),
        "proxy": proxy(texts_prompts, completions).tolist(),
    }
    step = c.eval_samples_per_prompt
    samples = [
        {"prompt": b[0], "before": b[1], "after": a[1]}
        for b, a in zip(before_samples[::step], after_samples[::step], strict=True)
    ][:SAMPLES_IN_REPORT]
    return {
        "policies": {
            "before (reference)": before.as_dict(),
            f"after ({c.agent})": after.as_dict(),
            f"best-of-{n} (reference)": baseline,
        },
        "gold_gain": after.gold - before.gold,
        "held_out_prompts": len(prompts),
        "rm_gold_correlation": float(np.corrcoef(calibration["gold"], calibration["proxy"])[0, 1]),
        "samples": samples,
        "calibration": calibration,
    }
