"""NLPO-style top-p masks from a reference LM, and MaskablePPO with the LM policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.callbacks import BaseCallback

from agents.sb3.lm_cache import full_forward
from agents.sb3.maskable import MaskableCausalLMPolicy, TopPMaskWrapper, top_p_mask


@settings(max_examples=50, deadline=None)
@given(
    logits=st.lists(st.floats(-5, 5), min_size=2, max_size=12),
    top_p=st.floats(0.05, 1.0),
)
def test_top_p_mask_is_the_smallest_nucleus(logits, top_p):
    logits = torch.tensor(logits)
    keep = top_p_mask(logits, top_p)
    probs = torch.softmax(logits, -1)
    assert keep[probs.argmax()]
    kept = probs[keep]
    # Without its least likely token the nucleus would fall short of top_p (minimal)...
    assert kept.sum() - kept.min() < top_p + 1e-6
    # ...and every dropped token is no more likely than every kept one.
    if (~keep).any():
        assert probs[~keep].max() <= kept.min() + 1e-7
        assert kept.sum() >= top_p - 1e-6


def test_wrapper_masks_follow_the_reference_nucleus(make_vec_env, tiny_model):
    wrapper = lambda env: TopPMaskWrapper(env, model=tiny_model, top_p=0.5)  # noqa: E731
    env = make_vec_env(n=2, wrapper=wrapper)
    obs = env.reset()
    for _ in range(8):  # across steps and an episode end (cache extension and reset)
        masks = get_action_masks(env)
        ids = torch.as_tensor(obs["input_ids"])
        out, _ = full_forward(tiny_model, ids, torch.as_tensor(obs["attention_mask"]), False)
        assert np.array_equal(masks, top_p_mask(out.logits, 0.5).numpy())
        actions = np.array([np.flatnonzero(row)[0] for row in masks])
        obs, _, _, _ = env.step(actions)


def test_wrapper_refuses_a_model_with_another_vocabulary(make_vec_env):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64,
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
    )
    with pytest.raises(ValueError, match="64 tokens but the env's action space has 1024"):
        make_vec_env(n=1, wrapper=lambda env: TopPMaskWrapper(env, model=LlamaForCausalLM(config)))


class _MaskedRollout(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.outside_mask = 0
        self.max_error: float | None = None

    def _on_step(self) -> bool:
        masks, actions = self.locals["action_masks"], self.locals["actions"]
        self.outside_mask += int((~masks[np.arange(len(actions)), actions]).sum())
        return True

    def _on_rollout_end(self) -> None:
        if self.max_error is None:
            batch = next(self.model.rollout_buffer.get(16))
            with torch.no_grad():
                _, logp, _ = self.model.policy.evaluate_actions(
                    batch.observations, batch.actions.long().flatten(), batch.action_masks
                )
            self.max_error = (logp - batch.old_log_prob).abs().max().item()


def test_maskable_ppo_samples_inside_the_mask_and_trains(make_vec_env, tiny_model):
    env = make_vec_env(n=3, wrapper=lambda env: TopPMaskWrapper(env, model=tiny_model, top_p=0.3))
    kwargs = {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "learning_rate": 1e-3, "seed": 0}
    agent = MaskablePPO(MaskableCausalLMPolicy, env, policy_kwargs={"model": "tiny"}, **kwargs)
    before = agent.policy.lm.lm_head.weight.detach().clone()
    check = _MaskedRollout()
    agent.learn(192, callback=check)
    assert check.outside_mask == 0
    assert check.max_error < 1e-5  # stored masked log-prob == evaluate_actions with the masks
    assert not torch.equal(agent.policy.lm.lm_head.weight, before)
