"""TokenPPO's update, bookkeeping, logging, checkpoints and exact resume."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from agents import TokenPPO, TokenPPOConfig

TRL_METRICS = (
    "objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward",
    "objective/scores", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg",
    "loss/value_avg", "val/clipfrac_avg", "policy/entropy_avg", "val/ratio", "val/ratio_var",
    "val/num_eos_tokens", "lr", "episode", "eps",
)  # fmt: skip


def make_config(**overrides) -> TokenPPOConfig:
    defaults = {
        "total_episodes": 48, "batch_size": 16, "num_mini_batches": 2, "learning_rate": 1e-2,
        "progress_bar": False, "seed": 3,
    }  # fmt: skip
    return TokenPPOConfig(**{**defaults, **overrides})


def state(trainer: TokenPPO) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.actor.state_dict().items()}


@pytest.mark.parametrize("accumulation", [1, 2])
def test_first_minibatch_has_ratio_one_and_no_kl_or_clipping(
    toy_model, toy_tokenizer, toy_env_kwargs, accumulation
):
    config = make_config(
        num_ppo_epochs=1, num_mini_batches=1, gradient_accumulation_steps=accumulation
    )
    trainer = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    stats = trainer.update(trainer.make_batch(trainer.rollout()))  # one step: the first minibatch
    assert stats["val/ratio"] == pytest.approx(1.0, abs=1e-6)
    assert stats["val/ratio_var"] < 1e-12
    assert stats["policy/approxkl_avg"] < 1e-12
    assert stats["policy/clipfrac_avg"] == 0.0


def test_training_changes_every_trainable_parameter_but_not_the_callers_model(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    before = {k: v.clone() for k, v in toy_model.state_dict().items()}
    trainer = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    start = state(trainer)
    history = trainer.train()
    assert len(history) == 3 and history[-1]["episode"] == 48
    for name, param in trainer.actor.named_parameters():
        assert not torch.equal(param, start[name]), f"{name} did not change"
    for name, value in toy_model.state_dict().items():
        assert torch.equal(value, before[name]), f"the caller's {name} changed"
    for name, value in trainer.ref_model.state_dict().items():
        assert torch.equal(value, before[name]), f"the reference's {name} changed"
    assert history[-1]["lr"] == pytest.approx(1e-2 / 3)  # linear annealing: 1, 2/3, 1/3


def test_freeze_layers_keeps_embeddings_and_lower_layers_fixed(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = TokenPPO(
        toy_model, toy_tokenizer, make_config(freeze_layers=1), env_kwargs=toy_env_kwargs
    )
    start = state(trainer)
    trainer.train()
    after = trainer.actor.state_dict()
    frozen = [k for k in after if "embed_tokens" in k or ".layers.0." in k]
    trained = [k for k in after if ".layers.1." in k or "value_head" in k]
    assert frozen and trained
    assert all(torch.equal(after[k], start[k]) for k in frozen)
    assert all(not torch.equal(after[k], start[k]) for k in trained)


def test_separate_value_model_trains_its_own_trunk(toy_model, toy_tokenizer, toy_env_kwargs):
    trainer = TokenPPO(
        toy_model, toy_tokenizer, make_config(value_model="separate"), env_kwargs=toy_env_kwargs
    )
    start = state(trainer)
    history = trainer.train()
    after = trainer.actor.state_dict()
    value_trunk = [k for k in after if k.startswith("value_trunk.")]
    assert value_trunk
    assert any(not torch.equal(after[k], start[k]) for k in value_trunk)
    assert history[0]["loss/value_avg"] > 0


def test_adaptive_kl_controller_moves_beta(toy_model, toy_tokenizer, toy_env_kwargs):
    config = make_config(adaptive_kl=True, kl_coef=0.1, kl_target=1.0, kl_horizon=160)
    trainer = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    metrics = trainer.step()
    # The first batch has KL ~0 < target: error clipped at -0.2, n / horizon = 0.1.
    assert abs(metrics["objective/kl"]) < 1e-4
    assert trainer.kl_controller.value == pytest.approx(0.1 * (1 - 0.2 * 0.1))


def test_a_spent_kl_budget_ends_training(toy_model, toy_tokenizer, toy_env_kwargs):
    kl_budget = 1e-9  # the first batch is the reference's own (KL ~0); the update moves it
    config = make_config(kl_budget=kl_budget, kl_budget_window=1)
    trainer = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    history = trainer.train()
    first_over = next(i for i, m in enumerate(history) if m["objective/kl"] >= kl_budget)
    assert len(history) == first_over + 1 < trainer.total_iterations


def test_resumed_run_makes_the_same_next_update(toy_model, toy_tokenizer, toy_env_kwargs, tmp_path):
    config = make_config(adaptive_kl=True)
    straight = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    straight.step()
    expected_metrics = straight.step()
    expected = state(straight)

    first = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    first.step()
    first.save_checkpoint(tmp_path / "checkpoint.pt")
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")
    metrics = resumed.step()

    for name, value in resumed.actor.state_dict().items():
        assert torch.equal(value, expected[name]), f"{name} differs after resume"
    for name in ("objective/kl", "objective/scores", "loss/policy_avg", "lr"):
        assert metrics[name] == expected_metrics[name]
    assert resumed.kl_controller.value == straight.kl_controller.value
    assert resumed.episodes == straight.episodes == 32


def test_train_writes_logs_checkpoint_and_an_hf_model(
    toy_model, toy_tokenizer, toy_env_kwargs, tmp_path
):
    config = make_config(output_dir=str(tmp_path), save_steps=1)
    trainer = TokenPPO(
        toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs, gold_predictor="vader"
    )
    trainer.train()
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert set(TRL_METRICS) | {"objective/gold_scores"} <= set(rows[0])
    assert list((tmp_path / "tensorboard").iterdir())
    assert (tmp_path / "checkpoint.pt").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "final").eval()
    ids = torch.tensor([[5, 2, 3]])
    torch.testing.assert_close(loaded(ids).logits, trainer.policy(ids).logits)
    assert (tmp_path / "final" / "tokenizer.json").exists()


def test_train_resumes_from_a_checkpoint(toy_model, toy_tokenizer, toy_env_kwargs, tmp_path):
    straight = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    straight.train()
    partial = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    partial.step()  # as if interrupted after one of three iterations
    partial.save_checkpoint(tmp_path / "checkpoint.pt")
    resumed = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    history = resumed.train(resume_from=tmp_path / "checkpoint.pt")
    assert len(history) == 2
    for name, value in resumed.actor.state_dict().items():
        assert torch.equal(value, straight.actor.state_dict()[name]), name


def test_evaluate_leaves_the_training_rng_alone(toy_model, toy_tokenizer, toy_env_kwargs):
    trainer = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    rng = torch.get_rng_state()
    first = trainer.evaluate(["p"] * 20, toy_env_kwargs["reward_predictor"], batch_size=8)
    assert torch.equal(torch.get_rng_state(), rng)
    assert first == trainer.evaluate(["p"] * 20, toy_env_kwargs["reward_predictor"], batch_size=8)
    assert 0.0 <= first["score"] <= 1.0
    assert abs(first["kl"]) < 1e-4  # untrained policy == reference


def test_evaluate_scores_the_same_completions_with_other_predictors(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    reward = toy_env_kwargs["reward_predictor"]

    def negated(prompts, completions):
        return -np.asarray(reward(prompts, completions))

    figures = trainer.evaluate(["p"] * 20, reward, other_predictors={"negated": negated})
    assert figures["score/negated"] == pytest.approx(-figures["score"])
    assert figures["score"] == trainer.evaluate(["p"] * 20, reward)["score"]


def test_metrics_are_finite_when_eos_is_banned(toy_model, toy_tokenizer, toy_env_kwargs):
    # The banned EOS has log-prob -inf in every distribution; no statistic may turn into nan.
    config = make_config(batch_size=8, num_mini_batches=1, ignore_eos=True, num_ppo_epochs=2)
    trainer = TokenPPO(toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs)
    metrics = trainer.step()
    assert all(math.isfinite(value) for value in metrics.values()), metrics
    assert metrics["policy/entropy_avg"] > 0


def test_a_diverged_update_stops_training_with_a_clear_error(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = TokenPPO(toy_model, toy_tokenizer, make_config(), env_kwargs=toy_env_kwargs)
    with torch.no_grad():
        trainer.actor.value_head.linear.bias.fill_(float("inf"))  # every value estimate blows up
    with pytest.raises(
        FloatingPointError, match=r"diverged at iteration 1: .*'loss/value_avg': nan"
    ):
        trainer.train()
    assert trainer.iteration == 0


def test_monitors_are_logged_per_iteration_over_the_rollouts_completions(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    seen = []

    def characters(prompts, completions):
        seen.append(list(completions))
        return [len(c) for c in completions]

    config = make_config(total_episodes=32)
    trainer = TokenPPO(
        toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs,
        monitors={"characters": characters},
    )  # fmt: skip
    history = trainer.train()
    assert len(seen) == len(history) == 2 and all(len(c) == 16 for c in seen)
    for metrics, completions in zip(history, seen, strict=True):
        assert metrics["objective/characters"] == pytest.approx(
            np.mean([len(c) for c in completions])
        )
