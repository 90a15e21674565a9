"""The evaluation stage on its own: policies before and after, best-of-n at matched KL, the
sample table and the calibration data, from a stand-in for a run's outputs."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from rlhf_gym.evaluation import n_matching_kl
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.evaluate import MAX_BEST_OF_N, SAMPLES_IN_REPORT, evaluate_run
from rlhf_gym.tasks import get_task


def length_score(prompts, completions):
    return np.array([len(c) for c in completions], dtype=np.float32)


@dataclass
class Outputs:
    """The part of RunOutputs the evaluation reads."""

    config: RunConfig
    reference: torch.nn.Module
    trained: dict[str, torch.nn.Module]
    tokenizer: object

    @property
    def task(self):
        return get_task("sentiment")

    def starting_policy(self):
        return copy.deepcopy(self.reference), self.tokenizer

    def reward_model(self):
        return length_score

    def eval_prompts(self):
        return self.task.prompts("test")[: self.config.eval_prompts]

    def agent_policy(self, name):
        return self.trained[name]


@pytest.fixture
def outputs(tiny_model, tiny_tokenizer):
    shifted = copy.deepcopy(tiny_model)
    with torch.no_grad():
        shifted.lm_head.weight.mul_(3.0)  # sharper: a clearly different policy
    config = RunConfig(
        model="tiny", agent="token-ppo,dpo", eval_prompts=10, eval_samples_per_prompt=2,
        max_new_tokens=6,
    )  # fmt: skip
    return Outputs(config, tiny_model, {"token-ppo": tiny_model, "dpo": shifted}, tiny_tokenizer)


def test_an_unchanged_policy_scores_as_the_reference_and_a_changed_one_moves_away(outputs):
    result = evaluate_run(outputs)
    policies = result["policies"]
    before, same, moved = (
        policies["before (reference)"], policies["after (token-ppo)"], policies["after (dpo)"]
    )  # fmt: skip
    assert same == before  # same weights, same sampling stream: identical metrics
    assert before["kl"] == 0.0 and moved["kl"] > 0.0
    # a best-of-n baseline at each policy's KL (n = 1 for the reference's 0), and the bench's
    # anchor at MAX_BEST_OF_N
    ns = {int(name[len("best-of-") :].split()[0]) for name in policies if name.startswith("best")}
    assert ns == {1, min(n_matching_kl(moved["kl"]), MAX_BEST_OF_N), MAX_BEST_OF_N}
    assert result["held_out_prompts"] == 10


def test_samples_and_calibration_cover_every_policy(outputs):
    result = evaluate_run(outputs)
    rows = result["samples"]
    assert len(rows) == min(10, SAMPLES_IN_REPORT)
    assert set(rows[0]) == {"prompt", "before", "after (token-ppo)", "after (dpo)"}
    assert all(row["before"] == row["after (token-ppo)"] for row in rows)
    calibration = result["calibration"]
    samples = 10 * 2 * 3  # prompts x samples per prompt x (reference + two agents)
    assert len(calibration["gold"]) == len(calibration["proxy"]) == samples
