"""KLPenaltyCallback: exact reward edits, zero KL against itself, adaptive beta, logging."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import configure

from agents.sb3.kl_callback import KLPenaltyCallback, kl_penalty
from agents.sb3.lm_cache import full_forward
from agents.sb3.policy import CausalLMPolicy
from agents.sb3.reference import ReferenceModel, frozen_copy

PPO_KWARGS = {"n_steps": 8, "batch_size": 12, "n_epochs": 1, "learning_rate": 1e-3, "seed": 0}


def test_kl_penalty_is_minus_beta_times_log_ratio():
    kl, penalty = kl_penalty(np.array([-1.0, -2.0]), np.array([-1.5, -1.0]), beta=0.1)
    np.testing.assert_allclose(kl, [0.5, -1.0])
    np.testing.assert_allclose(penalty, [-0.05, 0.1], rtol=1e-6)
    assert penalty.dtype == np.float32


class _Recorder(BaseCallback):
    """Runs before the KL callback: keeps what the env returned and what the policy stored."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict] = []

    def _on_step(self) -> bool:
        obs = self.locals["obs_tensor"]
        self.steps.append(
            {
                "rewards": self.locals["rewards"].copy(),
                "log_probs": self.locals["log_probs"].clone(),
                "actions": torch.as_tensor(self.locals["actions"]).reshape(-1).clone(),
                "input_ids": obs["input_ids"].long().clone(),
                "attention_mask": obs["attention_mask"].long().clone(),
            }
        )
        return True

    def _on_rollout_end(self) -> None:
        if not hasattr(self, "stored"):
            self.stored = self.model.rollout_buffer.rewards.copy()  # (n_steps, n_envs)


def _perturbed_reference(tiny_model) -> ReferenceModel:
    other = frozen_copy(tiny_model)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return ReferenceModel(other, n_actions=1024)


def _run(make_vec_env, callback: KLPenaltyCallback, steps: int = 24) -> tuple[PPO, _Recorder]:
    recorder = _Recorder()
    agent = PPO(CausalLMPolicy, make_vec_env(n=3), policy_kwargs={"model": "tiny"}, **PPO_KWARGS)
    agent.learn(steps, callback=CallbackList([recorder, callback]))
    return agent, recorder


def test_stored_rewards_change_by_exactly_minus_beta_kl(make_vec_env, tiny_model):
    reference = _perturbed_reference(tiny_model)
    _, recorder = _run(make_vec_env, KLPenaltyCallback(kl_coef=0.3, reference=reference))
    for row, step in enumerate(recorder.steps[:8]):  # the first rollout
        out, _ = full_forward(reference.model, step["input_ids"], step["attention_mask"], False)
        logp_ref = torch.log_softmax(out.logits, -1).gather(-1, step["actions"][:, None])[:, 0]
        kl = (step["log_probs"] - logp_ref).numpy()
        assert np.abs(kl).max() > 1e-3  # the perturbed reference really differs
        expected = step["rewards"] - np.float32(0.3) * kl.astype(np.float32)
        np.testing.assert_allclose(recorder.stored[row], expected, atol=1e-6, rtol=0)


def test_kl_is_zero_when_the_policy_is_the_reference(make_vec_env):
    _, recorder = _run(make_vec_env, KLPenaltyCallback(kl_coef=1.0), steps=24)
    for row, step in enumerate(recorder.steps[:8]):  # before the first update
        np.testing.assert_allclose(recorder.stored[row], step["rewards"], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("target", "direction"), [(1e-3, 1), (1e3, -1)])
def test_adaptive_beta_moves_towards_the_target(make_vec_env, tiny_model, target, direction):
    reference = _perturbed_reference(tiny_model)
    callback = KLPenaltyCallback(
        0.1, adaptive_kl=True, kl_target=target, kl_horizon=10, reference=reference
    )
    _run(make_vec_env, callback, steps=24)
    assert np.sign(callback.controller.value - 0.1) == direction


def test_the_kl_budget_stops_learning_after_the_rollout_that_spends_it(make_vec_env, tiny_model):
    reference = _perturbed_reference(tiny_model)
    unlimited = KLPenaltyCallback(0.1, reference=reference)
    _run(make_vec_env, unlimited, steps=72)  # three rollouts of 8 steps x 3 envs
    first_kl = unlimited.history[0]["episode_kl"]
    assert len(unlimited.history) == 3 and first_kl > 0

    budgeted = KLPenaltyCallback(0.1, kl_budget=first_kl, reference=reference)
    agent, _ = _run(make_vec_env, budgeted, steps=72)
    assert len(budgeted.history) == 1 and budgeted.kl_budget.spent
    assert agent.num_timesteps < 72


def test_kl_beta_and_scores_reach_the_sb3_logger(make_vec_env, tiny_model, tmp_path):
    env = make_vec_env(n=3, reward_predictor="vader")
    agent = PPO(CausalLMPolicy, env, policy_kwargs={"model": "tiny"}, **PPO_KWARGS)
    agent.set_logger(configure(str(tmp_path), ["csv"]))
    reference = _perturbed_reference(tiny_model)
    agent.learn(
        48, callback=KLPenaltyCallback(kl_coef=0.2, reference=reference, gold_reward="vader")
    )
    with open(tmp_path / "progress.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["kl/beta"]) == pytest.approx(0.2)
    for key in ("kl/token_kl", "kl/episode_kl", "rollout/proxy_score", "rollout/gold_score"):
        assert rows[-1][key] != "", key
    # The env's reward here is the gold labeler itself, so the two scores agree.
    assert float(rows[-1]["rollout/proxy_score"]) == pytest.approx(
        float(rows[-1]["rollout/gold_score"])
    )


def test_default_reference_is_made_once_and_shares_frozen_layers(make_vec_env):
    kwargs = {"model": "tiny", "freeze_layers": 1}
    agent = PPO(CausalLMPolicy, make_vec_env(n=3), policy_kwargs=kwargs, **PPO_KWARGS)
    callback = KLPenaltyCallback(kl_coef=0.1)
    agent.learn(24, callback=callback)
    reference = callback.reference
    agent.learn(24, callback=callback, reset_num_timesteps=False)
    assert callback.reference is reference
    frozen = agent.policy.lm.model.layers[0].self_attn.q_proj.weight
    assert reference.model.model.layers[0].self_attn.q_proj.weight is frozen
    trainable = agent.policy.lm.model.layers[1].self_attn.q_proj.weight
    copied = reference.model.model.layers[1].self_attn.q_proj.weight
    assert copied is not trainable and not copied.requires_grad
