"""End to end: the whole pipeline with the tiny preset, then resuming, forcing and bad input."""

import json
import shutil

import matplotlib.image
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from rlhf_gym.cli import main
from rlhf_gym.models import load_model
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.run import Pipeline
from rlhf_gym.pipeline.stages import STAGES, StageError
from rlhf_gym.rewards.learned import LearnedRewardModel

FAST = {
    "model": "tiny",
    "agent": "token-ppo",
    "sft_epochs": 1,
    "preference_prompts": 8,
    "completions_per_prompt": 3,
    "reward_epochs": 2,
    "iterations": 2,
    "dpo_epochs": 2,
    "batch_size": 8,
    "eval_prompts": 4,
    "eval_samples_per_prompt": 1,
    "max_new_tokens": 8,
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    report = Pipeline(RunConfig(output_dir=str(out), **FAST), log=lambda _: None).run()
    return out, report


def test_every_stage_leaves_its_output(finished_run):
    out, report = finished_run
    assert report == out / "report" / "report.md"
    for stage in ("sft", "preferences", "reward", "agent-token-ppo", "evaluate", "report"):
        assert (out / stage / "DONE.json").is_file()
    assert (out / "sft" / "model" / "config.json").is_file()
    assert (out / "reward" / "model" / "config.json").is_file()
    assert (out / "agent-token-ppo" / "policy" / "config.json").is_file()
    assert sum(1 for _ in (out / "preferences" / "pairs.jsonl").open()) == 8 * 3


def test_report_has_metrics_plots_and_samples(finished_run):
    out, report = finished_run
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    names = list(metrics["policies"])
    assert names[0] == "before (reference)" and names[1] == "after (token-ppo)"
    assert names[2].startswith("best-of-")
    assert metrics["policies"][names[0]]["kl"] == 0.0
    details = json.loads((out / "evaluate" / "details.json").read_text())["calibration"]
    spearman = metrics["reward_model"]["spearman_heldout"]
    if len(set(details["gold"])) > 1 and len(set(details["proxy"])) > 1:
        assert spearman == pytest.approx(spearmanr(details["proxy"], details["gold"]).statistic)
    else:  # undefined on a constant score, e.g. gold ties on every sample of the tiny policy
        assert spearman is None
    assert len(metrics["curves"]["token-ppo"]) == FAST["iterations"]
    for png in ("overoptimisation.png", "calibration.png"):
        image = matplotlib.image.imread(out / "report" / png)
        assert image.ndim == 3 and image.shape[0] > 100
    text = report.read_text()
    assert "| before (reference) |" in text and "Sample completions" in text
    assert "Spearman correlation with gold" in text


def test_rerun_skips_finished_stages_and_force_redoes_dependents(finished_run, tmp_path):
    out, _ = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    messages = []
    Pipeline(RunConfig(output_dir=str(copy), **FAST), log=messages.append).run()
    assert sum("skipped" in m for m in messages) == len(STAGES)  # one agent: one stage each
    messages.clear()
    agent_before = (copy / "agent-token-ppo" / "DONE.json").read_text()
    Pipeline(RunConfig(output_dir=str(copy), **FAST), log=messages.append).run(force=("evaluate",))
    assert sum("skipped" in m for m in messages) == 4  # sft, preferences, reward, agent
    assert (copy / "agent-token-ppo" / "DONE.json").read_text() == agent_before


def test_two_agents_stand_side_by_side_and_reuse_earlier_stages(finished_run, tmp_path):
    out, _ = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    messages = []
    config = RunConfig(output_dir=str(copy), **{**FAST, "agent": "token-ppo,dpo"})
    Pipeline(config, log=messages.append).run()
    assert [m.split(":")[0].split()[-1] for m in messages if "skipped" in m] == [
        "sft", "preferences", "reward", "agent-token-ppo",
    ]  # fmt: skip
    policies = json.loads((copy / "report" / "metrics.json").read_text())["policies"]
    assert {"after (token-ppo)", "after (dpo)"} <= set(policies)
    assert "| after (dpo) |" in (copy / "report" / "report.md").read_text()


def test_corrupt_stage_output_gets_a_clear_message(finished_run, tmp_path):
    out, _ = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "reward" / "model" / "config.json").write_text("{broken")
    pipeline = Pipeline(RunConfig(output_dir=str(copy), **FAST), log=lambda _: None)
    with pytest.raises(StageError, match=r"stage 'reward'.*--force reward"):
        pipeline.outputs.reward_model()


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    assert main(["run", "--task", "poetry", "--output-dir", str(tmp_path)]) == 2
    assert "unknown task 'poetry'" in capsys.readouterr().err
    assert main(["run", "--model", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path)]) == 2
    assert "could not load model" in capsys.readouterr().err
    assert main(["run", "--agent", "sarsa", "--output-dir", str(tmp_path)]) == 2
    assert "unknown agent" in capsys.readouterr().err


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"model": "tiny", "iterations": 5}))
    config = RunConfig.from_file(path, iterations=7)
    assert (config.model, config.iterations) == ("tiny", 7)
    path.write_text(json.dumps({"modle": "tiny"}))
    with pytest.raises(ValueError, match="unknown settings"):
        RunConfig.from_file(path)


def test_moving_average_matches_hand_values():
    from rlhf_gym.pipeline.report import moving_average

    assert moving_average([1.0, 3.0, 5.0, 7.0], 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([2.0], 5).tolist() == [2.0]


@pytest.mark.parametrize(
    ("backbone", "model", "frozen", "learning_rate"),
    [
        ("sentiment-rm", "smollm2-135m", False, 3e-4),  # pretrained: small steps
        ("tiny", "smollm2-135m", False, 3e-3),
        ("x/y", "tiny", True, 1e-2),  # a lone head on a frozen trunk
        (None, "tiny", False, 3e-4),  # the sentiment task's default: the shipped reward trunk
        ("policy", "tiny", False, 3e-3),  # the tiny policy's own trunk, fully fine-tuned
    ],
)
def test_reward_backbone_choice(tmp_path, backbone, model, frozen, learning_rate):
    from rlhf_gym.rewards.learned import default_sentiment_model_path

    config = RunConfig(output_dir=str(tmp_path), model=model, reward_backbone=backbone)
    pipeline = Pipeline(config, log=lambda _: None)
    shipped = str(default_sentiment_model_path())
    if backbone == "policy":  # the policy's trunk is the SFT stage's output
        assert pipeline.reward_backbone == "policy"
    else:
        assert pipeline._reward_trunk() == {"sentiment-rm": shipped, None: shipped}.get(
            backbone, backbone
        )
    assert pipeline._reward_config().freeze_trunk is frozen
    assert pipeline._reward_config().learning_rate == learning_rate


def test_reward_top_layers_train_a_pretrained_trunk_in_small_steps(tmp_path):
    config = RunConfig(
        output_dir=str(tmp_path), model="tiny", reward_backbone="minilm-l6",
        reward_trainable_layers=2,
    )  # fmt: skip
    reward = Pipeline(config, log=lambda _: None)._reward_config()
    assert (reward.freeze_trunk, reward.trainable_layers, reward.learning_rate) == (False, 2, 3e-4)


def test_reward_model_is_held_out_by_whole_prompts_and_compared_with_its_bound(finished_run):
    from rlhf_gym.preferences.io import read_jsonl

    out, _ = finished_run
    held_out = set(json.loads((out / "reward" / "heldout_prompts.json").read_text()))
    pairs = read_jsonl(out / "preferences" / "pairs.jsonl")
    summary = json.loads((out / "reward" / "DONE.json").read_text())["summary"]
    assert summary["heldout_prompts"] == len(held_out) == 1  # a tenth of 8 prompts, at least 1
    assert summary["heldout_pairs"] == sum(p.prompt in held_out for p in pairs)
    assert summary["train_pairs"] == sum(p.prompt not in held_out for p in pairs)
    assert summary["bayes_bound"]["pairs"] == summary["heldout_pairs"]
    # the reported accuracy is the saved model's on exactly the held-out pairs
    model = LearnedRewardModel.from_pretrained(out / "reward" / "model")
    evaluation = [p for p in pairs if p.prompt in held_out]
    chosen = model([p.prompt for p in evaluation], [p.chosen for p in evaluation])
    rejected = model([p.prompt for p in evaluation], [p.rejected for p in evaluation])
    assert summary["accuracy"] == pytest.approx(float(np.mean(chosen > rejected)))


def test_every_agent_trains_the_same_parameters(tmp_path):
    agents = ("token-ppo", "dpo", "sb3-ppo", "sb3-a2c", "sb3-trpo")
    settings = {**FAST, "agent": ",".join(agents), "iterations": 1, "dpo_epochs": 1}
    config = RunConfig(output_dir=str(tmp_path), freeze_layers=1, **settings)
    Pipeline(config, log=lambda _: None).run()
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    counts = {name: metrics["agents"][name]["trainable_parameters"] for name in agents}
    # the tiny preset has 2 layers: freezing one (and the tied embeddings) leaves the top layer
    # and the final norm, the same for every agent
    top_layer = sum(p.numel() for p in load_model("tiny").model.layers[1].parameters())
    assert set(counts.values()) == {top_layer + 64}, counts  # + the final norm's 64 weights
    assert f"token-ppo {counts['token-ppo']:,}" in (tmp_path / "report" / "report.md").read_text()


def test_a_policy_with_non_finite_weights_is_refused(tmp_path):
    from rlhf_gym.pipeline.run import check_finite_weights

    model = load_model("tiny")
    model.save_pretrained(tmp_path / "fine")
    check_finite_weights(tmp_path / "fine", "token-ppo")  # no error
    with torch.no_grad():
        model.model.norm.weight[3] = float("nan")
    model.save_pretrained(tmp_path / "diverged")
    with pytest.raises(StageError, match=r"agent 'token-ppo' diverged: 1 weight tensors.*norm"):
        check_finite_weights(tmp_path / "diverged", "token-ppo")


def test_an_ensemble_of_reward_models_rewards_the_agent_conservatively(tmp_path):
    """Two members from their own streams; the agents and the evaluation see the ensemble's
    mean-minus-std; the report has each member's accuracy and every policy's disagreement."""
    settings = {**FAST, "iterations": 1, "reward_ensemble_size": 2}
    config = RunConfig(
        output_dir=str(tmp_path), reward_ensemble_objective="mean-minus-std",
        reward_uncertainty_coef=0.5, **settings,
    )  # fmt: skip
    pipeline = Pipeline(config, log=lambda _: None)
    pipeline.run()
    first = LearnedRewardModel.from_pretrained(tmp_path / "reward" / "model")
    second = LearnedRewardModel.from_pretrained(tmp_path / "reward" / "model-1")
    texts = (["The film was"] * 2, [" great fun", " a dull mess"])
    assert not np.allclose(first(*texts), second(*texts))  # different seeds, different models
    ensemble = pipeline.outputs.reward_model()
    expected = np.mean([first(*texts), second(*texts)], 0) - 0.5 * np.std(
        [first(*texts), second(*texts)], 0
    )
    np.testing.assert_allclose(ensemble(*texts), expected, rtol=1e-5, atol=1e-6)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    reward = metrics["reward_model"]
    assert reward["ensemble"]["objective"] == "mean-minus-std"
    assert len(reward["ensemble"]["member_accuracies"]) == 2
    for name in ("before (reference)", "after (token-ppo)"):
        assert metrics["policies"][name]["disagreement"] > 0.0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "an ensemble of 2 (mean-minus-std)" in report
    curve = metrics["curves"]["token-ppo"]
    assert all(point["disagreement"] > 0.0 for point in curve)  # along training too
    assert "Reward-ensemble disagreement (members' std) on token-ppo's training batches" in report


def test_a_single_reward_model_reports_no_ensemble(finished_run):
    out, _ = finished_run
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert "ensemble" not in metrics["reward_model"]
    assert all("disagreement" not in p for p in metrics["policies"].values())
    assert not (out / "reward" / "model-1").exists()


def test_direct_gold_mode_rewards_the_agents_with_the_tasks_gold_scorer(tmp_path):
    """reward_source=gold (RL from verifiable rewards): what the agent optimised and what the
    evaluation calls proxy are the gold itself."""
    settings = {**FAST, "task": "arithmetic", "iterations": 2, "reward_source": "gold"}
    Pipeline(RunConfig(output_dir=str(tmp_path), **settings), log=lambda _: None).run()
    curve = json.loads((tmp_path / "agent-token-ppo" / "curve.json").read_text())
    assert all(point["proxy"] == pytest.approx(point["gold"]) for point in curve)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    for policy in metrics["policies"].values():
        assert policy["proxy"] == pytest.approx(policy["gold"])
    # no rank agreement of gold with itself passed off as the reward model's, no calibration
    assert "spearman_heldout" not in metrics["reward_model"]
    assert not (tmp_path / "report" / "calibration.png").exists()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "proxy = the agents' reward, the task's gold scorer itself" in report
    assert "not what the agents were rewarded by" in report and "Spearman" not in report


def test_an_unknown_reward_source_is_refused():
    with pytest.raises(ValueError, match="reward_source must be one of"):
        RunConfig(reward_source="oracle")
