"""Agents as plug-ins: the registry, the protocol, the checks before any stage, and a
third-party agent found through the ``rlhf_gym.agents`` entry-point group."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pytest
import torch

from rlhf_gym.cli import main
from rlhf_gym.models import freeze_lower_layers
from rlhf_gym.pipeline.agents import (
    ENTRY_POINT_GROUP,
    Agent,
    AgentResult,
    available_agents,
    make_agent,
)
from rlhf_gym.pipeline.builtin_agents import critic_free_config, token_ppo_config
from rlhf_gym.pipeline.config import RunConfig

BUILTINS = ["dpo", "grpo", "reinforce", "rloo", "sb3-a2c", "sb3-ppo", "sb3-trpo", "token-ppo"]
TINY = [
    "--model", "tiny", "--sft-epochs", "1", "--preference-prompts", "4",
    "--completions-per-prompt", "2", "--reward-epochs", "1", "--iterations", "1",
    "--batch-size", "4", "--eval-prompts", "2", "--eval-samples-per-prompt", "1",
    "--max-new-tokens", "4",
]  # fmt: skip


class ShiftHeadAgent:
    """A third-party agent: it 'trains' by shifting the top layer's norm, under the run's freeze
    rule, and refuses batches over 8."""

    def check(self, config: RunConfig) -> None:
        if config.batch_size > 8:
            raise ValueError("shift-head takes at most 8 episodes per batch")

    def train(self, outputs, workdir):
        policy, _ = outputs.starting_policy()
        c = outputs.config
        freeze_lower_layers(policy, c.resolved_freeze_layers(policy.config.num_hidden_layers))
        with torch.no_grad():
            policy.model.norm.weight.add_(0.5)
        (workdir / "note.txt").write_text("shifted")
        point = {"iteration": 1, "kl": 0.0, "proxy": 0.0, "gold": 0.0}
        return AgentResult(policy, [point], {"shift": 0.5})


@pytest.fixture
def shift_head(installed_plugins):
    entry = EntryPoint("shift-head", f"{__name__}:ShiftHeadAgent", ENTRY_POINT_GROUP)
    installed_plugins[ENTRY_POINT_GROUP] = [entry]


def test_every_builtin_is_registered_and_follows_the_protocol():
    assert available_agents() == BUILTINS
    for name in BUILTINS:
        assert isinstance(make_agent(name), Agent)


def test_an_unknown_agent_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown agent 'ppo2'.*'token-ppo'"):
        RunConfig(agent="ppo2")


@pytest.mark.parametrize(
    ("agent", "settings", "message"),
    [
        ("token-ppo", {"batch_size": 6, "num_mini_batches": 4}, "divisible by num_mini_batches"),
        ("sb3-ppo", {"temperature": 0.7}, "the SB3 agents sample at 1"),
        ("sb3-trpo", {"batch_size": 1, "max_new_tokens": 1, "num_mini_batches": 1}, "fewer than 2"),
        ("grpo", {"batch_size": 6, "num_generations": 4}, "divisible by num_generations=4"),
        ("rloo", {"num_generations": 1, "batch_size": 4}, "num_generations must be >= 2"),
    ],
)
def test_each_agent_checks_its_own_settings(agent, settings, message):
    config = RunConfig(agent=agent, model="tiny", **settings)
    with pytest.raises(ValueError, match=message):
        make_agent(agent).check(config)


def test_the_kl_controller_settings_reach_the_native_trainers():
    run = RunConfig(
        model="tiny", adaptive_kl=True, kl_coef=0.2, kl_target=3.0, kl_horizon=500,
        kl_budget=4.5, batch_size=8, num_generations=2,
    )  # fmt: skip
    configs = [token_ppo_config(run, 1e-3, 0, "out")]
    configs += [critic_free_config(name, run, 1e-3, 0, "out") for name in ("grpo", "rloo")]
    for config in configs:
        assert (config.adaptive_kl, config.kl_target, config.kl_horizon) == (True, 3.0, 500)
        assert getattr(config, config.kl_coef_field) == 0.2
        assert config.kl_budget_stop().budget == 4.5


def test_grpos_own_settings_reach_grpo_only():
    run = RunConfig(
        model="tiny", grpo_scale_rewards="none", grpo_loss_type="dr_grpo", batch_size=8,
        num_generations=2,
    )  # fmt: skip
    grpo = critic_free_config("grpo", run, 1e-3, 0, "out")
    assert (grpo.scale_rewards, grpo.loss_type) == ("none", "dr_grpo")
    assert not hasattr(critic_free_config("rloo", run, 1e-3, 0, "out"), "loss_type")


def test_a_plugin_agent_runs_from_the_command_line_next_to_a_builtin(shift_head, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--output-dir", str(out), *TINY, "--agent", "token-ppo,shift-head"]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["agents"]["shift-head"]["shift"] == 0.5
    # the pipeline counted what the plug-in left trainable: the whole tiny model (no freezing)
    assert (
        metrics["agents"]["shift-head"]["trainable_parameters"]
        == (metrics["agents"]["token-ppo"]["trainable_parameters"])
    )
    assert "after (shift-head)" in metrics["policies"]
    assert (out / "agent-shift-head" / "note.txt").read_text() == "shifted"
    trained = json.loads((out / "agent-shift-head" / "curve.json").read_text())
    assert trained == [{"iteration": 1, "kl": 0.0, "proxy": 0.0, "gold": 0.0}]


def test_a_kl_budget_ends_the_rl_agents_early_and_the_report_says_where(tmp_path):
    out = tmp_path / "run"
    settings = ["--iterations", "4", "--kl-budget", "1e-9", "--learning-rate", "1e-2"]
    assert main(["run", "--output-dir", str(out), *TINY, *settings, "--agent", "rloo"]) == 0
    summary = json.loads((out / "report" / "metrics.json").read_text())["agents"]["rloo"]
    curve = json.loads((out / "agent-rloo" / "curve.json").read_text())
    # it stopped after the first iteration whose KL reached the budget (within the window of 3)
    running = [sum(p["kl"] for p in curve[: i + 1]) / (i + 1) for i in range(len(curve))]
    assert summary["kl_budget_stop"] == summary["iterations"] == len(curve) < 4
    assert running[-1] >= 1e-9 and all(kl < 1e-9 for kl in running[:-1])
    report = (out / "report" / "report.md").read_text()
    assert f"rloo stopped after iteration {len(curve)}" in report


def test_a_plugin_agents_check_runs_before_any_stage(shift_head, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            ["run", "--output-dir", str(out), *TINY, "--agent", "shift-head", "--batch-size", "16"]
        )
        == 2
    )
    assert "shift-head takes at most 8" in capsys.readouterr().err
    assert not (out / "sft").exists()
