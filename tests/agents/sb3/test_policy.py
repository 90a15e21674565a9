"""CausalLMPolicy: construction checks, rollout/training log-prob parity, SB3 algorithms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback
from transformers import LlamaConfig, LlamaForCausalLM

from agents.sb3.lm_cache import CachedCausalLM
from agents.sb3.policy import CausalLMPolicy

SMALL_PPO = {"n_steps": 16, "batch_size": 16, "n_epochs": 2, "learning_rate": 1e-3, "seed": 0}


def _lm(vocab: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config).eval()


def _spaces(n_actions: int = 1024, length: int = 8):
    box = spaces.Box(0, n_actions - 1, (length,), np.int64)
    obs = spaces.Dict({"input_ids": box, "attention_mask": spaces.Box(0, 1, (length,), np.int64)})
    return obs, spaces.Discrete(n_actions)


def _policy(**kwargs) -> CausalLMPolicy:
    obs_space, action_space = _spaces()
    return CausalLMPolicy(obs_space, action_space, lambda _: 1e-3, **kwargs)


def test_refuses_a_model_with_another_vocabulary():
    with pytest.raises(ValueError, match="512 tokens but the env's action space has 1024"):
        _policy(model=_lm(512))
    with pytest.raises(ValueError, match="allow_padded_vocab=True"):
        _policy(model=_lm(1088))


def test_padded_vocabulary_is_sliced_to_the_action_space_when_allowed():
    policy = _policy(model=_lm(1088), allow_padded_vocab=True)
    obs = {"input_ids": torch.ones(2, 8), "attention_mask": torch.ones(2, 8)}
    assert policy.get_distribution(obs).distribution.logits.shape == (2, 1024)


def test_refuses_observations_that_are_not_the_text_env_dict():
    _, action_space = _spaces()
    with pytest.raises(TypeError, match="input_ids"):
        CausalLMPolicy(spaces.Box(0, 1, (8,)), action_space, lambda _: 1e-3, model="tiny")


def test_caller_model_is_copied_value_head_zero_and_dropout_off(tiny_model):
    policy = _policy(model=tiny_model)
    assert policy.lm is not tiny_model
    policy.set_training_mode(True)
    assert policy.training and not policy.lm.training
    obs = {"input_ids": torch.randint(0, 1024, (3, 8)).float(), "attention_mask": torch.ones(3, 8)}
    assert torch.equal(policy.predict_values(obs), torch.zeros(3, 1))


def test_freeze_layers_bounds():
    with pytest.raises(ValueError, match=r"freeze_layers=3 is outside 0\.\.2"):
        _policy(freeze_layers=3)


class _RolloutParity(BaseCallback):
    """At rollout end, recompute the stored log-probs like PPO's first minibatch does."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.max_error: float | None = None
        self.ratios: torch.Tensor | None = None

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.max_error is not None:
            return
        policy = self.model.policy
        first = next(self.model.rollout_buffer.get(self.batch_size))
        with torch.no_grad():
            _, logp, _ = policy.evaluate_actions(first.observations, first.actions.long().flatten())
        self.ratios = torch.exp(logp - first.old_log_prob)
        self.max_error = (logp - first.old_log_prob).abs().max().item()


@pytest.mark.parametrize(
    ("use_kv_cache", "attn_implementation"), [(True, None), (False, None), (True, "eager")]
)
def test_stored_logprob_equals_evaluate_actions(make_vec_env, use_kv_cache, attn_implementation):
    env = make_vec_env(n=3, max_new_tokens=6)
    parity = _RolloutParity(batch_size=16)
    kwargs = {
        "model": "tiny",
        "use_kv_cache": use_kv_cache,
        "attn_implementation": attn_implementation,
    }
    agent = PPO(CausalLMPolicy, env, policy_kwargs=kwargs, **SMALL_PPO)
    agent.learn(48, callback=parity)
    assert parity.max_error < 1e-5
    # PPO's first minibatch: ratio 1, so no sample is clipped.
    assert torch.allclose(parity.ratios, torch.ones_like(parity.ratios), atol=1e-5)
    assert ((parity.ratios - 1).abs() > 0.2).float().mean() == 0


def test_conversations_keep_stored_logprobs_equal_to_evaluate_actions(make_vec_env, monkeypatch):
    # 3-token turns: within 48 steps every slot crosses several turn ends, where the user's
    # reply extends the KV cache by several tokens at once.
    env = make_vec_env(
        n=3, max_new_tokens=3, env_id="rlhf_gym/GuessNumber-v0", max_prompt_tokens=80
    )
    shifts: list[int] = []
    extend = CachedCausalLM._extend

    def recording_extend(self, rows, k, input_ids, attention_mask):
        shifts.append(k)
        return extend(self, rows, k, input_ids, attention_mask)

    monkeypatch.setattr(CachedCausalLM, "_extend", recording_extend)
    parity = _RolloutParity(batch_size=16)
    agent = PPO(CausalLMPolicy, env, policy_kwargs={"model": "tiny"}, **SMALL_PPO)
    agent.learn(48, callback=parity)
    assert parity.max_error < 1e-5
    assert max(shifts) > 1  # the cache was extended by whole user turns, not rebuilt


def _always_one(prompts: list[str], completions: list[str]) -> np.ndarray:
    return np.ones(len(completions), dtype=np.float32)


def _snapshot(policy: CausalLMPolicy) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in policy.named_parameters()}


def test_frozen_layers_stay_and_the_rest_trains(make_vec_env):
    kwargs = {"model": "tiny", "freeze_layers": 1}
    agent = PPO(CausalLMPolicy, make_vec_env(n=2), policy_kwargs=kwargs, **SMALL_PPO)
    before = _snapshot(agent.policy)
    agent.learn(64)
    after = _snapshot(agent.policy)
    for name in before:
        changed = not torch.equal(before[name], after[name])
        frozen = name.startswith("lm.model.layers.0.")
        assert changed != frozen, f"{name}: changed={changed}, frozen={frozen}"


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_unmodified_sb3_algorithms_train_the_lm(make_vec_env, algo):
    kwargs = {"n_steps": 16, "seed": 0, "learning_rate": 1e-3}
    if algo is PPO:
        kwargs |= {"batch_size": 32, "n_epochs": 1}
    env = make_vec_env(n=4, reward_predictor=_always_one)  # a reward that the value head can fit
    agent = algo(CausalLMPolicy, env, policy_kwargs={"model": "tiny"}, **kwargs)
    before = _snapshot(agent.policy)
    agent.learn(320)
    assert agent.num_timesteps >= 320
    after = _snapshot(agent.policy)
    assert all(torch.isfinite(p).all() for p in after.values())
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) == len(before), set(before) - set(changed)  # every parameter moved


def test_save_and_load_round_trip(make_vec_env, tmp_path):
    agent = PPO(CausalLMPolicy, make_vec_env(n=2), policy_kwargs={"model": "tiny"}, **SMALL_PPO)
    agent.learn(32)
    agent.save(tmp_path / "agent.zip")
    loaded = PPO.load(tmp_path / "agent.zip", env=make_vec_env(n=2))
    obs = {
        "input_ids": torch.randint(0, 1024, (2, 18)).float(),
        "attention_mask": torch.ones(2, 18),
    }
    with torch.no_grad():
        expected = agent.policy.get_distribution(obs).distribution.logits
        torch.testing.assert_close(
            loaded.policy.get_distribution(obs).distribution.logits, expected
        )


def test_rollout_cache_is_used_only_without_grad_and_dropped_for_training():
    policy = _policy()
    obs = {"input_ids": torch.randint(0, 1024, (2, 8)).float(), "attention_mask": torch.ones(2, 8)}
    obs["attention_mask"][:, :3] = 0
    policy.set_training_mode(False)
    policy(obs)  # grad enabled: a full forward, nothing cached
    assert policy.rollout_lm.cache.input_ids is None
    with torch.no_grad():
        policy(obs)
    assert policy.rollout_lm.cache.input_ids is not None
    policy.set_training_mode(True)  # SB3 calls this before every update
    assert policy.rollout_lm.cache.input_ids is None
