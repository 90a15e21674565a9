"""TextGenerationEnv: observation layout, episode ends, rewards, info, reset, render, seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

NON_EOS = 300  # an ordinary token of the tiny vocabulary (not EOS, not pad)


def _run_to_end(env, token: int = NON_EOS):
    while True:
        obs, reward, terminated, truncated, info = env.step(token)
        if terminated or truncated:
            return obs, reward, terminated, truncated, info
        assert reward == 0.0 and info == {}


def test_spaces_come_from_the_tokenizer(make_env, tiny_tokenizer):
    env = make_env(max_new_tokens=5, max_prompt_tokens=11)
    assert env.action_space.n == len(tiny_tokenizer) == 1024
    for key in ("input_ids", "attention_mask"):
        box = env.observation_space[key]
        assert box.shape == (16,) and box.dtype == np.int64
    assert env.observation_space["input_ids"].high.max() == len(tiny_tokenizer) - 1
    assert env.observation_space["attention_mask"].high.max() == 1


def test_observation_is_left_padded_with_the_newest_token_last(make_env, tiny_tokenizer):
    env = make_env(max_new_tokens=6)
    obs, info = env.reset(seed=3)
    prompt_ids = tiny_tokenizer(info["prompt"])["input_ids"]
    n = len(prompt_ids)
    np.testing.assert_array_equal(obs["input_ids"][-n:], prompt_ids)
    assert obs["attention_mask"].sum() == n
    np.testing.assert_array_equal(obs["attention_mask"][-n:], 1)  # padding only on the left
    assert (obs["input_ids"][:-n] == env.pad_token_id).all()
    for generated, token in enumerate([17, 450, 99], start=1):
        obs, *_ = env.step(token)
        assert obs["input_ids"][-1] == token
        assert obs["attention_mask"].sum() == n + generated
        np.testing.assert_array_equal(obs["input_ids"][-n - generated : -generated], prompt_ids)
        assert env.observation_space.contains(obs)


def test_eos_terminates_and_scores_the_completion_without_eos(make_env, predictor):
    env = make_env(max_new_tokens=5, missing_eos_penalty=2.0)
    _, reset_info = env.reset(seed=0)
    env.step(NON_EOS)
    obs, reward, terminated, truncated, info = env.step(env.eos_token_id)
    assert (terminated, truncated) == (True, False)
    completion = env.tokenizer.decode([NON_EOS])
    assert info == {
        "prompt": reset_info["prompt"],
        "completion": completion,
        "score": pytest.approx(predictor.score(reset_info["prompt"], completion)),
        "eos": True,
        "num_new_tokens": 2,
    }
    assert reward == info["score"]  # no penalty with EOS
    assert predictor.batches == [[(reset_info["prompt"], completion)]]
    assert obs["input_ids"][-1] == env.eos_token_id


def test_length_budget_sets_both_flags_and_applies_the_penalty(make_env, predictor):
    env = make_env(max_new_tokens=3, missing_eos_penalty=0.25)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = _run_to_end(env)
    assert (terminated, truncated) == (True, True)
    assert info["eos"] is False and info["num_new_tokens"] == 3
    assert info["completion"] == env.tokenizer.decode([NON_EOS] * 3)
    assert reward == pytest.approx(info["score"] - 0.25)
    assert obs["attention_mask"].sum() == len(env.tokenizer(info["prompt"])["input_ids"]) + 3
    assert len(predictor.batches) == 1


def test_eos_on_the_last_budget_step_counts_as_eos(make_env):
    env = make_env(max_new_tokens=2, missing_eos_penalty=1.0)
    env.reset(seed=0)
    env.step(NON_EOS)
    _, reward, terminated, truncated, info = env.step(env.eos_token_id)
    assert (terminated, truncated, info["eos"]) == (True, False, True)
    assert reward == info["score"]


def test_reset_takes_a_given_prompt(make_env, tiny_tokenizer):
    env = make_env()
    obs, info = env.reset(seed=0, options={"prompt": "A prompt from outside"})
    assert info == {"prompt": "A prompt from outside"}
    ids = tiny_tokenizer("A prompt from outside")["input_ids"]
    np.testing.assert_array_equal(obs["input_ids"][-len(ids) :], ids)
    *_, info = _run_to_end(env)
    assert info["prompt"] == "A prompt from outside"


def test_reset_draws_prompts_from_the_list(make_env, prompts):
    env = make_env()
    drawn = {env.reset(seed=seed)[1]["prompt"] for seed in range(40)}
    assert drawn == set(prompts)


def test_render_ansi_and_human(make_env, capsys):
    env = make_env(render_mode="ansi")
    env.reset(options={"prompt": "The soup"})
    env.step(NON_EOS)
    assert env.render() == "The soup\u2502" + env.tokenizer.decode([NON_EOS])
    human = make_env(render_mode="human")
    human.reset(options={"prompt": "The soup"})
    human.step(NON_EOS)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["The soup\u2502", "The soup\u2502" + env.tokenizer.decode([NON_EOS])]
    assert human.render() is None


def test_sb3_does_not_bootstrap_past_a_scored_completion(make_env):
    """SB3 bootstraps when `TimeLimit.truncated` is set; a budget-cut completion is terminal."""
    vec = DummyVecEnv([lambda: make_env(max_new_tokens=3)])
    vec.seed(0)
    vec.reset()
    for _ in range(2):
        _, rewards, dones, infos = vec.step(np.array([NON_EOS]))
        assert not dones[0] and rewards[0] == 0.0
    _, rewards, dones, infos = vec.step(np.array([NON_EOS]))
    assert dones[0] and infos[0]["eos"] is False
    assert infos[0]["TimeLimit.truncated"] is False
    assert infos[0]["terminal_observation"]["attention_mask"][-3:].tolist() == [1, 1, 1]
    assert rewards[0] == pytest.approx(infos[0]["score"])


def _rollout(env, seed: int, episodes: int, biased_actions) -> list:
    rng = np.random.default_rng(seed)
    trace = []
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        trace.append((obs["input_ids"].tolist(), info["prompt"]))
        done = False
        while not done:
            action = biased_actions(rng, env.vocab_size, env.eos_token_id)
            obs, reward, terminated, truncated, info = env.step(action)
            trace.append((obs["input_ids"].tolist(), reward, terminated, truncated, info))
            done = terminated or truncated
        obs, info = env.reset()
    return trace


def test_same_seed_same_episodes_different_seed_differs(make_env, biased_actions):
    first = _rollout(make_env(), 7, 6, biased_actions)
    # Disturbing the global RNGs must not matter: all randomness comes from env.np_random.
    np.random.seed(123)
    random.seed(123)
    second = _rollout(make_env(), 7, 6, biased_actions)
    assert first == second
    prompts = [step[1] for step in first if len(step) == 2]
    others = [
        [s[1] for s in _rollout(make_env(), seed, 6, biased_actions) if len(s) == 2]
        for seed in (8, 9)
    ]
    assert prompts != others[0] or prompts != others[1]


def test_env_leaves_global_rngs_alone(make_env):
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    env = make_env()
    env.reset()
    _run_to_end(env)
    env.reset(seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


def test_observations_are_copies(make_env):
    env = make_env()
    obs, _ = env.reset(seed=0)
    obs["input_ids"][:] = 7
    obs["attention_mask"][:] = 0
    after, *_ = env.step(NON_EOS)
    assert after["attention_mask"].sum() > 1 and after["input_ids"][-2] != 7


def test_a_new_prompt_list_takes_effect(make_env, tiny_tokenizer):
    env = make_env()
    env.reset(seed=0)
    env.prompts = ["A replacement prompt"]
    obs, info = env.reset(seed=0)
    ids = tiny_tokenizer("A replacement prompt")["input_ids"]
    assert info["prompt"] == "A replacement prompt"
    assert obs["input_ids"][-len(ids) :].tolist() == ids and obs["attention_mask"].sum() == len(ids)
