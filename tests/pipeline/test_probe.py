"""Held-out probes along training (``eval_every``): every agent records gold, proxy and KL on
the same held-out prompts before training and every N iterations, without changing training."""

import json

import pytest

from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.run import Pipeline

FAST = {
    "model": "tiny",
    "sft_epochs": 1,
    "preference_prompts": 8,
    "completions_per_prompt": 3,
    "reward_epochs": 1,
    "iterations": 4,
    "dpo_epochs": 4,
    "batch_size": 4,
    "eval_prompts": 2,
    "eval_samples_per_prompt": 1,
    "max_new_tokens": 6,
    "probe_prompts": 3,
}
AGENTS = ("token-ppo", "dpo", "sb3-ppo")


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("probed")
    config = RunConfig(output_dir=str(out), agent=",".join(AGENTS), eval_every=2, **FAST)
    Pipeline(config, log=lambda _: None).run()
    return out


@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_is_probed_before_training_and_every_n_iterations(probed_run, agent):
    points = json.loads((probed_run / f"agent-{agent}" / "heldout_curve.json").read_text())
    assert [p["iteration"] for p in points] == [0, 2, 4]
    assert points[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # the starting policy itself
    assert all({"kl", "proxy", "gold"} <= set(p) for p in points)


def test_every_agent_starts_from_the_same_probe(probed_run):
    """Same prompts, same seed, same starting policy: identical first points."""
    firsts = [
        json.loads((probed_run / f"agent-{a}" / "heldout_curve.json").read_text())[0]
        for a in AGENTS
    ]
    assert all(first == firsts[0] for first in firsts)


def test_probing_does_not_change_training(probed_run, tmp_path):
    config = RunConfig(output_dir=str(tmp_path), agent="token-ppo", **FAST)
    Pipeline(config, log=lambda _: None).run()
    assert not (tmp_path / "agent-token-ppo" / "heldout_curve.json").exists()
    unprobed = json.loads((tmp_path / "agent-token-ppo" / "curve.json").read_text())
    probed = json.loads((probed_run / "agent-token-ppo" / "curve.json").read_text())
    assert probed == unprobed
