"""The critic-free agents (grpo, rloo, reinforce) in ``rlhf-gym run``: one tiny pipeline trains
all three on shared upstream stages, reports each, and probes each on held-out prompts."""

import json

import pytest

from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.run import Pipeline

AGENTS = ("grpo", "rloo", "reinforce")
FAST = {
    "model": "tiny",
    "sft_epochs": 1,
    "preference_prompts": 8,
    "completions_per_prompt": 3,
    "reward_epochs": 1,
    "iterations": 2,
    "batch_size": 8,
    "num_generations": 4,
    "eval_prompts": 2,
    "eval_samples_per_prompt": 1,
    "max_new_tokens": 6,
    "eval_every": 1,
    "probe_prompts": 2,
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("critic-free")
    config = RunConfig(output_dir=str(out), agent=",".join(AGENTS), **FAST)
    report = Pipeline(config, log=lambda _: None).run()
    return out, report


@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_trains_reports_and_is_probed(finished_run, agent):
    out, report = finished_run
    stage = out / f"agent-{agent}"
    assert (stage / "DONE.json").is_file()
    assert (stage / "policy" / "config.json").is_file()
    curve = json.loads((stage / "curve.json").read_text())
    assert [p["iteration"] for p in curve] == [1, 2]
    assert all({"kl", "proxy", "gold"} <= set(p) for p in curve)
    assert curve[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the first batch: policy == reference
    probes = json.loads((stage / "heldout_curve.json").read_text())
    assert [p["iteration"] for p in probes] == [0, 1, 2]
    with (stage / agent / "metrics.csv").open() as handle:  # the trainer's own log
        assert "reward_std" in handle.readline()
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert f"after ({agent})" in metrics["policies"]
    assert len(metrics["curves"][agent]) == 2
    assert f"after ({agent})" in report.read_text()
