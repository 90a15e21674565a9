"""TextGenerationVectorEnv: same semantics as N single envs, one predictor call per step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_gym.envs import TextGenerationEnv

NON_EOS = 300


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31 - 1),
    num_envs=st.integers(1, 4),
    max_new_tokens=st.integers(1, 5),
    mode=st.sampled_from([AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]),
)
def test_vector_env_equals_sync_vector_env_of_single_envs(
    make_env, make_vec_env, biased_actions, assert_tree_equal, seed, num_envs, max_new_tokens, mode
):
    kwargs = {"max_new_tokens": max_new_tokens, "missing_eos_penalty": 0.5}
    batched = make_vec_env(num_envs, autoreset_mode=mode, **kwargs)
    reference = SyncVectorEnv(
        [lambda: make_env(**kwargs)] * num_envs, autoreset_mode=mode, copy=True
    )
    assert batched.observation_space == reference.observation_space
    assert batched.action_space == reference.action_space
    assert_tree_equal(batched.reset(seed=seed), reference.reset(seed=seed))
    rng = np.random.default_rng(seed)
    episode_ends = 0
    for _ in range(4 * max_new_tokens + 3):
        actions = biased_actions(rng, 1024, batched.eos_token_id, size=num_envs)
        got, expected = batched.step(actions), reference.step(actions)
        assert_tree_equal(got, expected)
        episode_ends += int(got[2].sum())
    assert episode_ends >= 2 * num_envs  # several episode ends were compared, not just steps


def test_one_predictor_call_per_step_with_every_ending_episode(make_vec_env, predictor):
    vec = make_vec_env(4, max_new_tokens=3)
    vec.reset(seed=0)
    eos = vec.eos_token_id
    schedule = [
        [NON_EOS, eos, NON_EOS, NON_EOS],  # env 1 ends
        [NON_EOS, 0, NON_EOS, eos],  # env 3 ends (env 1 resets)
        [NON_EOS, NON_EOS, NON_EOS, 0],  # envs 0 and 2 hit the budget
        [0, NON_EOS, 0, NON_EOS],  # nothing ends
    ]
    calls_per_step = []
    for actions in schedule:
        calls_before = len(predictor.batches)
        _, rewards, terminated, _, infos = vec.step(np.array(actions))
        calls_per_step.append(len(predictor.batches) - calls_before)
        ended = np.flatnonzero(terminated)
        if len(ended):
            pairs = predictor.batches[-1]
            assert pairs == [(infos["prompt"][i], infos["completion"][i]) for i in ended]
            np.testing.assert_allclose(rewards[ended], infos["score"][ended])
    assert calls_per_step == [1, 1, 1, 0]
    assert [len(batch) for batch in predictor.batches] == [1, 1, 2]


def test_same_step_mode_reports_final_obs_and_info(make_vec_env, tiny_tokenizer):
    vec = make_vec_env(2, max_new_tokens=2, autoreset_mode=AutoresetMode.SAME_STEP)
    obs, _ = vec.reset(seed=0, options={"prompts": ["First prompt", "Second prompt"]})
    vec.step(np.array([NON_EOS, NON_EOS]))
    obs, rewards, terminated, truncated, infos = vec.step(np.array([NON_EOS, 17]))
    assert terminated.all() and truncated.all()
    assert infos["_final_obs"].all() and infos["_final_info"].all()
    final = infos["final_obs"][1]
    assert final["input_ids"][-2:].tolist() == [NON_EOS, 17]
    assert infos["final_info"]["prompt"].tolist() == ["First prompt", "Second prompt"]
    np.testing.assert_allclose(rewards, infos["final_info"]["score"])
    # The returned observation is already the next episode's first one: a bare prompt.
    for i in range(2):
        prompt_ids = tiny_tokenizer(infos["prompt"][i])["input_ids"]
        assert obs["attention_mask"][i].sum() == len(prompt_ids)
        assert obs["input_ids"][i, -len(prompt_ids) :].tolist() == prompt_ids


def test_disabled_mode_freezes_finished_episodes_until_reset(make_vec_env, predictor):
    vec = make_vec_env(3, max_new_tokens=3, autoreset_mode=AutoresetMode.DISABLED)
    vec.reset(seed=0)
    eos = vec.eos_token_id
    obs, *_ = vec.step(np.array([eos, NON_EOS, NON_EOS]))
    frozen = obs["input_ids"][0]
    # Env 0 is finished: its action is ignored (even an invalid one), reward 0, no new end.
    obs, rewards, terminated, truncated, infos = vec.step(np.array([10**6, NON_EOS, eos]))
    np.testing.assert_array_equal(obs["input_ids"][0], frozen)
    assert rewards[0] == 0.0 and not terminated[0] and not infos["_prompt"][0]
    assert terminated.tolist() == [False, False, True]
    obs, rewards, terminated, truncated, _ = vec.step(np.array([NON_EOS, NON_EOS, NON_EOS]))
    assert terminated.tolist() == [False, True, False] and truncated.tolist() == [
        False,
        True,
        False,
    ]
    assert rewards[0] == rewards[2] == 0.0
    assert [len(batch) for batch in predictor.batches] == [1, 1, 1]
    # Reset only env 1: envs 0 and 2 stay finished.
    before = obs["input_ids"]
    obs, infos = vec.reset(options={"reset_mask": np.array([False, True, False])})
    assert infos["_prompt"].tolist() == [False, True, False]
    assert [env.episode.done for env in vec.envs] == [True, False, True]
    np.testing.assert_array_equal(obs["input_ids"][0], before[0])
    np.testing.assert_array_equal(obs["input_ids"][2], before[2])
    _, rewards, terminated, _, _ = vec.step(np.array([NON_EOS, eos, NON_EOS]))
    assert terminated.tolist() == [False, True, False]


def test_reset_mask_with_prompts_gives_one_prompt_per_selected_env(make_vec_env):
    vec = make_vec_env(3)
    vec.reset(seed=0)
    _, infos = vec.reset(
        options={"reset_mask": np.array([True, False, True]), "prompts": ["Alpha", "Gamma"]}
    )
    assert infos["prompt"][[0, 2]].tolist() == ["Alpha", "Gamma"]
    assert infos["_prompt"].tolist() == [True, False, True]


def test_an_unencodable_prompt_fails_before_any_sub_env_resets(make_vec_env):
    vec = make_vec_env(2, render_mode="ansi")
    vec.reset(options={"prompts": ["Alpha", "Beta"]})
    before = [env.render() for env in vec.envs]
    with pytest.raises(ValueError, match="not valid Unicode text"):
        vec.reset(options={"prompts": ["Gamma", "lone \ud800 surrogate"]})
    assert [env.render() for env in vec.envs] == before  # sub-env 0 was not reset either


def test_sub_envs_share_tokenizer_and_predictor(make_vec_env, tiny_tokenizer, predictor):
    vec = make_vec_env(3)
    assert all(env.tokenizer is tiny_tokenizer for env in vec.envs)
    assert all(env.reward_predictor is predictor for env in vec.envs)


def test_make_vec_uses_the_vector_entry_point(tiny_tokenizer, predictor, prompts):
    vec = gym.make_vec(
        "rlhf_gym/TextGeneration-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        tokenizer=tiny_tokenizer,
        prompts=prompts,
        reward_predictor=predictor,
        max_new_tokens=2,
    )
    assert type(vec.unwrapped).__name__ == "TextGenerationVectorEnv"
    obs, infos = vec.reset(seed=0)
    assert obs["input_ids"].shape == (3, 2 + 32) and set(infos["prompt"]) <= set(prompts)
    vec.step(np.full(3, NON_EOS))
    _, _, terminated, truncated, _ = vec.step(np.full(3, NON_EOS))
    assert terminated.all() and truncated.all() and len(predictor.batches) == 1


def test_make_vec_of_a_task_env(tiny_tokenizer):
    vec = gym.make_vec(
        "rlhf_gym/Sentiment-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        tokenizer=tiny_tokenizer,
    )
    obs, infos = vec.reset(seed=1)
    assert obs["input_ids"].shape == (2, 24 + 32) and infos["_prompt"].all()
    assert isinstance(vec.unwrapped.envs[0], TextGenerationEnv)
    assert vec.unwrapped.envs[0].task.name == "sentiment"


def test_render_returns_one_text_per_sub_env(make_vec_env):
    vec = make_vec_env(2, render_mode="ansi")
    vec.reset(options={"prompts": ["One", "Two"]})
    assert vec.render() == ("One\u2502", "Two\u2502")
    assert make_vec_env(2).render() is None


def test_vector_env_with_a_single_prompt_per_reset(make_vec_env):
    vec = make_vec_env(2)
    _, infos = vec.reset(options={"prompt": "Shared"})
    assert infos["prompt"].tolist() == ["Shared", "Shared"]


@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_metadata_names_the_autoreset_mode(make_vec_env, mode):
    assert make_vec_env(1, autoreset_mode=mode).metadata["autoreset_mode"] == AutoresetMode(mode)


def test_vector_observations_are_copies_of_the_sub_env_rows(make_vec_env):
    vec = make_vec_env(3)
    obs, _ = vec.reset(seed=0)
    obs["input_ids"][:] = 7
    after, *_ = vec.step(np.full(3, NON_EOS))
    for row, env in enumerate(vec.envs):
        np.testing.assert_array_equal(
            after["input_ids"][row], env.episode.observation()["input_ids"]
        )
        assert after["input_ids"][row, -2] != 7


@pytest.mark.parametrize(
    ("spelling", "mode"),
    [
        ("disabled", AutoresetMode.DISABLED),
        ("same_step", AutoresetMode.SAME_STEP),
        ("NEXT-STEP", AutoresetMode.NEXT_STEP),
    ],
)
def test_autoreset_mode_accepts_any_spelling(make_vec_env, spelling, mode):
    assert make_vec_env(1, autoreset_mode=spelling).autoreset_mode == mode


def test_unknown_autoreset_mode_is_refused(make_vec_env):
    with pytest.raises(ValueError, match="unknown autoreset_mode 'sometimes'"):
        make_vec_env(1, autoreset_mode="sometimes")
