"""The critic-free trainers: grouped rollouts, first-pass invariants, logging, saving, exact
resume, callbacks and the caller's model left alone."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from agents import GRPO, RLOO, GRPOConfig, Reinforce, ReinforceConfig, RLOOConfig
from agents.token_ppo.rollout import response_logprobs

TRAINERS = {
    "grpo": (GRPO, GRPOConfig),
    "rloo": (RLOO, RLOOConfig),
    "reinforce": (Reinforce, ReinforceConfig),
}
TRL_METRICS = (
    "reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "loss", "lr",
    "completions/mean_length", "completions/min_length", "completions/max_length",
    "completions/clipped_ratio", "clip_ratio/low_mean", "clip_ratio/high_mean",
    "clip_ratio/region_mean",
)  # fmt: skip
PIPELINE_METRICS = ("objective/kl", "objective/scores", "objective/gold_scores", "episode", "eps")


def make(name, model, tokenizer, env_kwargs, **overrides):
    trainer_class, config_class = TRAINERS[name]
    settings = {
        "total_episodes": 48, "batch_size": 4, "num_generations": 4, "learning_rate": 1e-2,
        "progress_bar": False, "seed": 3, **overrides,
    }  # fmt: skip
    return trainer_class(model, tokenizer, config_class(**settings), env_kwargs=env_kwargs)


def state(trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.policy.state_dict().items()}


def test_one_rollout_holds_k_completions_of_each_drawn_prompt(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    env_kwargs = {**toy_env_kwargs, "prompts": ["p", "p p", "p p p"], "max_prompt_tokens": 3}
    trainer = make("grpo", toy_model, toy_tokenizer, env_kwargs, batch_size=5, num_generations=3)
    assert trainer.env.num_envs == 15
    rollout = trainer.rollout()
    groups = [rollout.prompts[i : i + 3] for i in range(0, 15, 3)]
    assert all(len(set(group)) == 1 for group in groups)
    assert len({group[0] for group in groups}) > 1  # prompts drawn, not all the same
    assert rollout.input_ids.shape[0] == 15


@pytest.mark.parametrize("name", list(TRAINERS))
def test_rollout_logprobs_equal_the_first_updates_and_the_ratio_is_one(
    name, tiny_model, tiny_tokenizer
):
    prompts = ["Hi", "The food at this little place was", "Our hotel room", "A quiet film"]
    env_kwargs = {"prompts": prompts, "reward_predictor": "vader", "max_new_tokens": 8}
    trainer = make(name, tiny_model, tiny_tokenizer, env_kwargs, num_generations=2)
    rollout = trainer.rollout()
    assert len(set(rollout.attention_mask[:, : rollout.prompt_length].sum(1).tolist())) > 1
    with torch.no_grad():
        recomputed = response_logprobs(trainer.policy, rollout, trainer.sampler)
    mask = rollout.response_mask
    torch.testing.assert_close(recomputed * mask, rollout.logprobs, atol=1e-5, rtol=0)
    stats = trainer.update(trainer.make_batch(rollout))  # mu = 1, one minibatch: the first pass
    assert stats["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert stats["clip_ratio/region_mean"] == 0.0


@pytest.mark.parametrize("name", list(TRAINERS))
def test_training_changes_every_parameter_but_not_the_callers_model(
    name, toy_model, toy_tokenizer, toy_env_kwargs
):
    before = {k: v.clone() for k, v in toy_model.state_dict().items()}
    trainer = make(name, toy_model, toy_tokenizer, toy_env_kwargs)
    start = state(trainer)
    history = trainer.train()
    assert len(history) == 3 and history[-1]["episode"] == 48
    for param_name, param in trainer.policy.named_parameters():
        assert not torch.equal(param, start[param_name]), f"{param_name} did not change"
    for param_name, value in toy_model.state_dict().items():
        assert torch.equal(value, before[param_name]), f"the caller's {param_name} changed"
        assert torch.equal(trainer.ref_model.state_dict()[param_name], before[param_name])
    assert history[-1]["lr"] == pytest.approx(1e-2 / 3)  # linear annealing: 1, 2/3, 1/3


def test_several_passes_move_the_ratio_and_report_clipping(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = make(
        "grpo", toy_model, toy_tokenizer, toy_env_kwargs, num_iterations=4, num_mini_batches=2,
        learning_rate=5e-2, epsilon=0.05,
    )  # fmt: skip
    stats = trainer.update(trainer.make_batch(trainer.rollout()))
    assert stats["policy/ratio_mean"] != pytest.approx(1.0, abs=1e-4)
    assert stats["clip_ratio/region_mean"] > 0


def test_reinforce_baseline_is_a_moving_average_of_mean_rewards(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = make(
        "reinforce", toy_model, toy_tokenizer, toy_env_kwargs, num_generations=1,
        batch_size=16, baseline_decay=0.5, beta=0.0,
    )  # fmt: skip
    first = trainer.step()
    assert first["baseline"] == pytest.approx(first["reward"])  # the first batch's own mean
    second = trainer.step()
    assert second["baseline"] == pytest.approx(0.5 * first["reward"] + 0.5 * second["reward"])


@pytest.mark.parametrize("name", list(TRAINERS))
def test_adaptive_kl_moves_beta_and_the_next_batch_is_penalised_with_it(
    name, toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = make(
        name, toy_model, toy_tokenizer, toy_env_kwargs, adaptive_kl=True, beta=0.1,
        kl_target=1.0, kl_horizon=160,
    )  # fmt: skip
    first = trainer.step()
    # The first batch is the reference's own (KL ~0 < target): the error clips at -0.2 and a
    # step of 16 episodes is a tenth of the horizon.
    assert abs(first["objective/kl"]) < 1e-4
    assert first["beta"] == 0.1
    assert trainer.kl_controller.value == pytest.approx(0.1 * (1 - 0.2 * 0.1))

    batch = trainer.make_batch(trainer.rollout())
    scores, beta = batch.rollout.scores, trainer.kl_controller.value
    if name == "grpo":  # KL in the loss: the rewards are the scores
        assert torch.equal(batch.rewards, scores)
    else:  # KL in the reward, with the adapted beta
        assert torch.allclose(batch.rewards, scores - beta * batch.kl)


def test_a_fixed_beta_stays_put(toy_model, toy_tokenizer, toy_env_kwargs):
    trainer = make("rloo", toy_model, toy_tokenizer, toy_env_kwargs, beta=0.1, kl_horizon=16)
    history = trainer.train()
    assert [m["beta"] for m in history] == [0.1] * 3


def test_the_kl_budget_ends_training_after_the_first_batch_that_spends_it(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    unlimited = make("rloo", toy_model, toy_tokenizer, toy_env_kwargs, total_episodes=96)
    kls = [m["objective/kl"] for m in unlimited.train()]  # 6 iterations
    running = [np.mean(kls[max(0, i - 1) : i + 1]) for i in range(len(kls))]  # window 2
    budget = max(running[:4])  # reached by iteration 4 at the latest
    stop_after = next(i for i, kl in enumerate(running) if kl >= budget) + 1

    budgeted = make(
        "rloo", toy_model, toy_tokenizer, toy_env_kwargs, total_episodes=96, kl_budget=budget,
        kl_budget_window=2,
    )  # fmt: skip
    history = budgeted.train()
    assert len(history) == stop_after < 6
    assert [m["objective/kl"] for m in history] == kls[:stop_after]  # the same run, cut short


@pytest.mark.parametrize("name", list(TRAINERS))
def test_resumed_run_makes_the_same_updates(
    name, toy_model, toy_tokenizer, toy_env_kwargs, tmp_path
):
    # an adaptive beta with a short horizon: its state must be restored too
    adaptive = {"adaptive_kl": True, "kl_target": 1.0, "kl_horizon": 32}
    straight = make(name, toy_model, toy_tokenizer, toy_env_kwargs, **adaptive)
    expected = straight.train()

    partial = make(name, toy_model, toy_tokenizer, toy_env_kwargs, **adaptive)
    partial.step()  # as if interrupted after one of three steps
    partial.save_checkpoint(tmp_path / "checkpoint.pt")
    torch.manual_seed(999)  # whatever happens in between must not matter
    np.random.default_rng(5).random()
    resumed = make(name, toy_model, toy_tokenizer, toy_env_kwargs, **adaptive)
    history = resumed.train(resume_from=tmp_path / "checkpoint.pt")

    assert len(history) == 2
    assert expected[1]["beta"] != expected[0]["beta"]
    for param_name, value in resumed.policy.state_dict().items():
        assert torch.equal(value, straight.policy.state_dict()[param_name]), param_name
    for metric in ("reward", "objective/kl", "loss", "lr", "beta"):
        assert [m[metric] for m in history] == [m[metric] for m in expected[1:]], metric
    assert resumed.kl_budget.recent == straight.kl_budget.recent  # the budget's window too


def test_train_writes_logs_checkpoint_and_an_hf_model(
    toy_model, toy_tokenizer, toy_env_kwargs, tmp_path
):
    seen = []
    trainer_class, config_class = TRAINERS["grpo"]
    config = config_class(
        total_episodes=48, batch_size=4, num_generations=4, progress_bar=False,
        output_dir=str(tmp_path), save_steps=1,
    )  # fmt: skip
    trainer = trainer_class(
        toy_model, toy_tokenizer, config, env_kwargs=toy_env_kwargs, gold_predictor="vader",
        callbacks=[lambda t, metrics: seen.append((t.iteration, metrics["reward"]))],
    )  # fmt: skip
    history = trainer.train()
    assert seen == [(i + 1, m["reward"]) for i, m in enumerate(history)]
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert set(TRL_METRICS) | set(PIPELINE_METRICS) <= set(rows[0])
    assert list((tmp_path / "tensorboard").iterdir())
    assert (tmp_path / "checkpoint.pt").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "final").eval()
    ids = torch.tensor([[5, 2, 3]])
    torch.testing.assert_close(loaded(ids).logits, trainer.policy(ids).logits)
    assert (tmp_path / "final" / "tokenizer.json").exists()


def test_freeze_layers_keeps_embeddings_and_lower_layers_fixed(
    toy_model, toy_tokenizer, toy_env_kwargs
):
    trainer = make("rloo", toy_model, toy_tokenizer, toy_env_kwargs, freeze_layers=1)
    start = state(trainer)
    trainer.train()
    after = trainer.policy.state_dict()
    frozen = [k for k in after if "embed_tokens" in k or ".layers.0." in k]
    trained = [k for k in after if ".layers.1." in k]
    assert frozen and trained
    assert all(torch.equal(after[k], start[k]) for k in frozen)
    assert all(not torch.equal(after[k], start[k]) for k in trained)
