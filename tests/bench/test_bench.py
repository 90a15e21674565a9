"""``rlhf-gym bench`` end to end on a tiny grid, resuming, a plug-in agent, and the report's
numbers against hand-computed ones."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from rlhf_gym.bench.config import BenchConfig, default_tasks
from rlhf_gym.bench.report import anchor_gains, score_matrix, scored_tasks
from rlhf_gym.bench.results import gain_standard_error, gold_at_kl, overoptimisation
from rlhf_gym.bench.runner import Bench
from rlhf_gym.cli import main
from rlhf_gym.pipeline.agents import ENTRY_POINT_GROUP

FAST = {
    "sft_epochs": 1, "preference_prompts": 6, "completions_per_prompt": 3, "reward_epochs": 1,
    "iterations": 2, "dpo_epochs": 2, "batch_size": 4, "eval_prompts": 3,
    "eval_samples_per_prompt": 1, "max_new_tokens": 5, "eval_every": 1, "probe_prompts": 2,
}  # fmt: skip
GRID = {"tasks": ("sentiment", "length"), "agents": ("token-ppo", "dpo"), "seeds": (0, 1)}


def done_times(root):
    return {str(p): p.stat().st_mtime_ns for p in sorted(root.rglob("DONE.json"))}


@pytest.fixture(scope="module")
def finished_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    config = BenchConfig(**GRID, output_dir=str(out), run_settings=FAST, bootstrap_reps=200)
    report = Bench(config, log=lambda _: None, progress_bar=False).run()
    return config, out, report


def test_the_grid_writes_one_row_per_task_agent_and_seed(finished_bench):
    _, out, report = finished_bench
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    cells = {(r["task"], r["agent"], r["seed"]) for r in rows}
    assert len(rows) == len(cells) == 8
    for row in rows:
        assert row["trainable_parameters"] > 0 and row["wall_seconds"] > 0
        assert {"gold", "proxy", "kl", "gold_at_kl_1", "gold_at_kl_3", "gold_at_kl_10"} <= set(row)
        assert (row["episodes_per_second"] is None) == (row["agent"] == "dpo")
    text = report.read_text()
    assert "## Leaderboard" in text and "### sentiment" in text and "### length" in text
    summary = json.loads((out / "aggregate.json").read_text())
    assert set(summary["per_task_iqm"]) == set(summary["tasks_aggregated"])
    assert (out / "frontier.png").is_file() and (out / "aggregate.json").is_file()


def test_agents_of_one_cell_share_preferences_and_reward_model(finished_bench):
    _, out, _ = finished_bench
    run = out / "runs" / "length" / "seed-1"
    assert {p.name for p in run.glob("agent-*")} == {"agent-token-ppo", "agent-dpo"}
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    cell = [r for r in rows if r["task"] == "length" and r["seed"] == 1]
    assert len({(r["reference_gold"], r["anchor_gold"], r["anchor_gain_se"]) for r in cell}) == 1
    assert 0.0 <= cell[0]["anchor_gain_se"] < np.inf


def test_a_rerun_redoes_nothing(finished_bench):
    config, out, _ = finished_bench
    before = done_times(out / "runs")
    Bench(config, log=lambda _: None, progress_bar=False).run()
    assert done_times(out / "runs") == before


def test_an_interrupted_bench_resumes_without_redoing_finished_cells(tmp_path, monkeypatch):
    grid = {"tasks": ("length",), "agents": ("token-ppo",), "seeds": (0, 1)}
    config = BenchConfig(**grid, output_dir=str(tmp_path), run_settings=FAST, bootstrap_reps=200)
    bench = Bench(config, log=lambda _: None, progress_bar=False)
    original, calls = Bench.run_cell, []

    def interrupted(self, task, seed):
        calls.append(seed)
        if seed == 1:
            raise KeyboardInterrupt
        return original(self, task, seed)

    monkeypatch.setattr(Bench, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench.run()
    first = done_times(tmp_path / "runs" / "length" / "seed-0")
    assert first and not (tmp_path / "runs" / "length" / "seed-1").exists()
    monkeypatch.setattr(Bench, "run_cell", original)
    bench.run()
    assert done_times(tmp_path / "runs" / "length" / "seed-0") == first
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2


def _shard(source, destination, keep):
    """A copy of a finished bench's settings and of its rows for which ``keep(row)``."""
    destination.mkdir()
    (destination / "bench.json").write_text((source / "bench.json").read_text())
    rows = (source / "results.jsonl").read_text().splitlines()
    kept = [line for line in rows if keep(json.loads(line))]
    (destination / "results.jsonl").write_text("".join(line + "\n" for line in kept))
    return kept


def test_cells_a_shard_finished_are_merged_and_the_rest_run(finished_bench, tmp_path):
    _, out, _ = finished_bench
    shard = tmp_path / "shard"
    kept = _shard(out, shard, lambda row: row["task"] == "length" and row["seed"] == 0)
    grid = {**GRID, "tasks": ("length",)}
    config = BenchConfig(
        **grid, output_dir=str(tmp_path / "merged"), run_settings=FAST, bootstrap_reps=200,
        merge_from=(str(shard),),
    )  # fmt: skip
    Bench(config, log=lambda _: None, progress_bar=False).run()
    runs = tmp_path / "merged" / "runs" / "length"
    assert not (runs / "seed-0").exists() and (runs / "seed-1" / "report").is_dir()
    rows = (tmp_path / "merged" / "results.jsonl").read_text().splitlines()
    assert rows[:2] == kept and len(rows) == 4
    assert {json.loads(line)["seed"] for line in rows[2:]} == {1}


def test_a_shard_with_other_settings_is_refused_before_any_run(finished_bench, tmp_path):
    _, out, _ = finished_bench
    shard = tmp_path / "shard"
    _shard(out, shard, lambda row: True)
    other = {**FAST, "iterations": 3}
    config = BenchConfig(
        **GRID, output_dir=str(tmp_path / "merged"), run_settings=other, bootstrap_reps=200,
        merge_from=(str(shard),),
    )  # fmt: skip
    with pytest.raises(ValueError, match="other settings: \\['run_settings'\\]"):
        Bench(config, log=lambda _: None, progress_bar=False).run()
    assert not (tmp_path / "merged").exists()


def test_a_shard_from_before_the_anchors_standard_error_is_refused_before_any_run(
    finished_bench, tmp_path
):
    _, out, _ = finished_bench
    shard = tmp_path / "shard"
    kept = _shard(out, shard, lambda row: row["task"] == "length")
    older = [{k: v for k, v in json.loads(line).items() if k != "anchor_gain_se"} for line in kept]
    (shard / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in older))
    config = BenchConfig(
        **GRID, output_dir=str(tmp_path / "merged"), run_settings=FAST, bootstrap_reps=200,
        merge_from=(str(shard),),
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"predates the anchor's standard error.*'length', 0"):
        Bench(config, log=lambda _: None, progress_bar=False).run()
    assert not (tmp_path / "merged").exists()


class StandStill:
    """A third-party agent: returns the starting policy untouched."""

    def check(self, config):
        pass

    def train(self, outputs, workdir):
        from rlhf_gym.pipeline.agents import AgentResult

        policy, _ = outputs.starting_policy()
        return AgentResult(policy, [{"iteration": 1, "kl": 0.0, "proxy": 0.0, "gold": 0.0}])


def test_a_plugin_agent_runs_in_the_bench_by_name(installed_plugins, tmp_path, capsys):
    installed_plugins[ENTRY_POINT_GROUP] = [
        EntryPoint("stand-still", f"{__name__}:StandStill", ENTRY_POINT_GROUP)
    ]
    code = main([
        "bench", "--tasks", "length", "--agents", "stand-still", "--seeds", "3",
        "--output-dir", str(tmp_path), "--run-settings", json.dumps(FAST),
        "--bootstrap-reps", "100",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (row,) = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert row["agent"] == "stand-still" and row["seed"] == 3
    # the policy did not move: the evaluation samples it as it sampled the reference
    assert row["gold"] == pytest.approx(row["reference_gold"]) and abs(row["kl"]) < 1e-4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tasks": ("chess",)}, "unknown task 'chess'"),
        ({"agents": ("ppo2",)}, "agents must be agents among"),
        ({"seeds": (0, 0)}, "seeds must be distinct"),
        ({"kl_budgets": (0.0,)}, "positive numbers of nats"),
        ({"min_anchor_z": -1.0}, "min_anchor_z must be >= 0"),
        ({"run_settings": {"seed": 3}}, "the grid sets them"),
        ({"run_settings": {"iterations": 0}}, "iterations must be positive"),
    ],
)
def test_bad_bench_settings_fail_before_any_run(settings, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        BenchConfig(output_dir=str(tmp_path), **settings)
    assert not any(tmp_path.iterdir())


def row(task, agent, seed, gold, reference, anchor, anchor_gain_se=0.01):
    return {"task": task, "agent": agent, "seed": seed, "gold": gold,
            "reference_gold": reference, "anchor_gold": anchor,
            "anchor_gain_se": anchor_gain_se}  # fmt: skip


def test_normalised_scores_use_each_runs_reference_and_the_tasks_mean_anchor_gain():
    config = BenchConfig(tasks=("length", "sentiment"), agents=("dpo",), seeds=(0, 1))
    rows = [
        row("length", "dpo", 0, gold=0.5, reference=0.2, anchor=0.4),  # anchor gain 0.2
        row("length", "dpo", 1, gold=0.3, reference=0.3, anchor=0.7),  # anchor gain 0.4
        row("sentiment", "dpo", 0, gold=0.9, reference=0.1, anchor=0.1),
        row("sentiment", "dpo", 1, gold=0.9, reference=0.1, anchor=0.05),
    ]
    gains = anchor_gains(rows)
    assert gains["length"].mean == pytest.approx(0.3)
    assert gains["sentiment"].mean == pytest.approx(-0.025)
    scored, excluded = scored_tasks(config, rows)
    assert scored == ["length"] and "is not 2 standard errors above 0" in excluded["sentiment"]
    # (0.5 - 0.2) / 0.3 = 1, (0.3 - 0.3) / 0.3 = 0
    np.testing.assert_allclose(score_matrix(config, rows, "dpo", scored), [[1.0], [0.0]])


def test_an_anchor_gain_of_noises_size_keeps_its_task_out_of_the_aggregates():
    """Arithmetic as SmolLM2 without SFT ran it: best-of-16 right once among 52 prompts in one
    seed and never in the other; one agent's single right answer then scored 1.0."""
    config = BenchConfig(tasks=("arithmetic", "sentiment"), agents=("dpo",), seeds=(0, 1))
    one_in_52 = gain_standard_error(
        {"gold_std": 0.0, "num_samples": 104},
        {"gold_std": float(np.std([1.0] + [0.0] * 51)), "num_samples": 52},
    )
    rows = [
        row("arithmetic", "dpo", 0, gold=0.0, reference=0.0, anchor=0.0, anchor_gain_se=0.0),
        row("arithmetic", "dpo", 1, gold=0.01, reference=0.0, anchor=1 / 52,
            anchor_gain_se=one_in_52),
        row("sentiment", "dpo", 0, gold=0.2, reference=0.18, anchor=0.56, anchor_gain_se=0.05),
        row("sentiment", "dpo", 1, gold=0.2, reference=0.12, anchor=0.54, anchor_gain_se=0.05),
    ]  # fmt: skip
    gains = anchor_gains(rows)
    # a mean of two seeds: sqrt(se0^2 + se1^2) / 2, se1 = sd(ddof=1) / sqrt(52) = 1/52
    assert one_in_52 == pytest.approx(1 / 52)
    assert gains["arithmetic"].mean == pytest.approx(1 / 104)
    assert gains["arithmetic"].standard_error == pytest.approx(1 / 104)
    assert gains["sentiment"].standard_error == pytest.approx(np.sqrt(2 * 0.05**2) / 2)
    scored, excluded = scored_tasks(config, rows)
    assert scored == ["sentiment"] and "0.00962 ± 0.0096" in excluded["arithmetic"]
    lenient = BenchConfig(**{**config.to_dict(), "min_anchor_z": 1.0})
    assert scored_tasks(lenient, rows)[0] == ["arithmetic", "sentiment"]


@pytest.mark.parametrize(
    ("reference", "anchor", "expected"),
    [
        ((0.5, 101), (0.3, 26), np.sqrt(0.25 / 100 + 0.09 / 25)),
        ((0.0, 10), (0.0, 10), 0.0),
        ((0.2, 10), (0.0, 1), np.inf),  # one sample has no spread to measure
    ],
)
def test_the_anchor_gains_standard_error_is_welchs(reference, anchor, expected):
    before = {"gold_std": reference[0], "num_samples": reference[1]}
    after = {"gold_std": anchor[0], "num_samples": anchor[1]}
    assert gain_standard_error(before, after) == pytest.approx(expected)


@given(st.lists(st.floats(-1, 1), min_size=2, max_size=30))
def test_welchs_error_from_population_spreads_equals_scipys_sem(golds):
    values = np.array(golds)
    one_side = {"gold_std": float(values.std()), "num_samples": len(values)}
    zero = {"gold_std": 0.0, "num_samples": 2}
    assert gain_standard_error(zero, one_side) == pytest.approx(scipy.stats.sem(values), abs=1e-12)


def test_a_task_with_missing_runs_is_not_aggregated():
    config = BenchConfig(tasks=("length",), agents=("dpo",), seeds=(0, 1))
    _, excluded = scored_tasks(config, [row("length", "dpo", 0, 0.5, 0.2, 0.4)])
    assert excluded == {"length": "1 of 2 runs finished"}


def test_gold_at_a_kl_budget_is_the_best_probe_within_it():
    probes = [{"kl": 0.0, "gold": 0.1}, {"kl": 0.8, "gold": 0.4}, {"kl": 2.5, "gold": 0.3},
              {"kl": 5.0, "gold": 0.9}]  # fmt: skip
    assert [gold_at_kl(probes, b) for b in (1, 3, 10)] == [0.4, 0.4, 0.9]
    assert gold_at_kl([], 1) is None


def test_overoptimisation_is_proxy_gain_minus_gold_gain_in_reference_deviations():
    reference = {"proxy": 0.0, "proxy_std": 2.0, "gold": 0.1, "gold_std": 0.2}
    policy = {"proxy": 3.0, "gold": 0.2}
    assert overoptimisation(policy, reference) == pytest.approx(1.5 - 0.5)
    assert overoptimisation(policy, {**reference, "gold_std": 0.0}) is None


def test_the_tiny_preset_defaults_to_the_tasks_it_can_learn():
    from rlhf_gym.bench.config import TINY_TASKS

    assert BenchConfig().tasks == TINY_TASKS
    assert BenchConfig(model="small").tasks == default_tasks("small")
    assert BenchConfig(tasks=("arithmetic",)).tasks == ("arithmetic",)


def test_other_models_default_to_every_single_turn_task():
    # dialogue tasks (several completions per conversation) run only when named
    expected = ("arithmetic", "concepts", "length", "readable", "sentiment")
    assert default_tasks("smollm2-135m") == expected


def test_a_dialogue_task_runs_in_the_bench_by_name(tmp_path):
    settings = {**FAST, "eval_samples_per_prompt": 2, "max_new_tokens": 3}
    del settings["eval_prompts"], settings["dpo_epochs"]
    config = BenchConfig(
        tasks=("guess_number",), agents=("token-ppo", "grpo"), seeds=(0,),
        output_dir=str(tmp_path), run_settings={**settings, "num_generations": 2},
        bootstrap_reps=100,
    )  # fmt: skip
    Bench(config, log=lambda _: None, progress_bar=False).run()
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(r["task"], r["agent"]) for r in rows} == {
        ("guess_number", "token-ppo"), ("guess_number", "grpo"),
    }  # fmt: skip
    assert all(0.0 <= r["anchor_gold"] <= 1.0 and r["gold_at_kl_1"] is not None for r in rows)
