"""Every bad input gets a clear error and leaves the env exactly as it was."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from rlhf_gym.envs import TextGenerationEnv, TextGenerationVectorEnv

NON_EOS = 300


def _snapshot(env: TextGenerationEnv) -> tuple:
    episode = env.episode
    window = episode.observation()
    return (
        window["input_ids"],
        window["attention_mask"],
        episode.completion_ids,
        episode.prompt,
        (episode.started, episode.done),
        copy.deepcopy(env.np_random.bit_generator.state),
    )


def _assert_same(before: tuple, after: tuple) -> None:
    for a, b in zip(before, after, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


def _fails_without_change(env, call, error, match):
    before = _snapshot(env)
    with pytest.raises(error, match=match):
        call()
    _assert_same(before, _snapshot(env))


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        (-1, ValueError, "action -1 is outside the vocabulary of size 1024"),
        (1024, ValueError, "action 1024 is outside the vocabulary of size 1024"),
        (10**9, ValueError, "outside the vocabulary"),
        (3.0, ValueError, "not a single integer token id"),
        (np.array([3, 4]), ValueError, "not a single integer token id"),
        (np.array([[3]]), ValueError, "not a single integer token id"),
        (True, ValueError, "not a single integer token id"),
        ("3", ValueError, "not a single integer token id"),
    ],
)
def test_bad_action_changes_nothing(make_env, action, error, match):
    env = make_env()
    env.reset(seed=0)
    env.step(NON_EOS)
    _fails_without_change(env, lambda: env.step(action), error, match)
    obs, *_ = env.step(NON_EOS)  # the env still works
    assert obs["input_ids"][-2:].tolist() == [NON_EOS, NON_EOS]


def test_step_before_reset(make_env):
    env = make_env()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(NON_EOS)
    env.reset(seed=0)
    assert env.step(NON_EOS)[1] == 0.0


def test_vector_step_before_reset(make_vec_env):
    vec = make_vec_env(2)
    with pytest.raises(RuntimeError, match="before reset"):
        vec.step(np.full(2, NON_EOS))
    vec.reset(seed=0)
    assert vec.step(np.full(2, NON_EOS))[1].tolist() == [0.0, 0.0]


def test_step_after_the_episode_ended(make_env):
    env = make_env()
    env.reset(seed=0)
    env.step(env.eos_token_id)
    _fails_without_change(env, lambda: env.step(NON_EOS), RuntimeError, "after the episode ended")
    env.reset()
    assert env.step(NON_EOS)[2] is False


@pytest.mark.parametrize(
    ("scores", "error", "match"),
    [
        (np.zeros(2, np.float32), ValueError, r"shape \(2,\) for 1 completions"),
        (np.zeros(0, np.float32), ValueError, r"shape \(0,\)"),
        (np.float32(0.5), ValueError, r"shape \(\)"),
        (np.array([np.nan], np.float32), ValueError, "non-finite"),
        (np.array([np.inf]), ValueError, "non-finite"),
        (["0.5"], TypeError, "expected numbers"),
        (["good"], TypeError, "expected numbers"),
        ([None], TypeError, "expected numbers"),
    ],
)
def test_bad_reward_predictor_output_changes_nothing(make_env, scores, error, match):
    env = make_env(max_new_tokens=2)
    env.reset(seed=0)
    env.step(NON_EOS)
    good = env.reward_predictor
    env.reward_predictor = lambda prompts, completions: scores
    _fails_without_change(env, lambda: env.step(NON_EOS), error, match)
    env.reward_predictor = good
    *_, terminated, truncated, info = env.step(NON_EOS)
    assert terminated and truncated and info["num_new_tokens"] == 2


def test_failing_predictor_leaves_the_vector_env_unchanged(make_vec_env, predictor):
    vec = make_vec_env(3, max_new_tokens=2)
    vec.reset(seed=0)
    vec.step(np.full(3, NON_EOS))
    before = [_snapshot(env) for env in vec.envs]
    vec.reward_predictor = lambda prompts, completions: np.zeros(1, np.float32)
    with pytest.raises(ValueError, match=r"shape \(1,\) for 3 completions"):
        vec.step(np.full(3, NON_EOS))
    for env, snapshot in zip(vec.envs, before, strict=True):
        _assert_same(snapshot, _snapshot(env))
    vec.reward_predictor = predictor
    _, rewards, terminated, truncated, _ = vec.step(np.full(3, NON_EOS))
    assert terminated.all() and truncated.all() and np.isfinite(rewards).all()


def test_one_bad_action_in_a_vector_step_changes_no_sub_env(make_vec_env):
    vec = make_vec_env(3)
    vec.reset(seed=0)
    before = [_snapshot(env) for env in vec.envs]
    with pytest.raises(ValueError, match="action 5000 is outside the vocabulary"):
        vec.step(np.array([NON_EOS, NON_EOS, 5000]))
    for env, snapshot in zip(vec.envs, before, strict=True):
        _assert_same(snapshot, _snapshot(env))


@pytest.mark.parametrize("actions", [np.zeros(2, int), np.zeros(4, int), np.zeros((3, 1), int), 5])
def test_vector_env_wrong_action_count(make_vec_env, actions):
    vec = make_vec_env(3)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="expected 3 actions"):
        vec.step(actions)


@pytest.mark.parametrize("prompt", ["", "   \n\t", 42, None, ["a prompt"]])
def test_bad_prompts_in_the_list(make_env, prompt):
    error = ValueError if isinstance(prompt, str) else TypeError
    with pytest.raises(error, match=r"prompts\[1\]"):
        make_env(prompts=["fine", prompt])


def test_empty_prompt_list_and_single_string(make_env):
    with pytest.raises(ValueError, match="prompt list is empty"):
        make_env(prompts=[])
    with pytest.raises(TypeError, match="not a single string"):
        make_env(prompts="one prompt")


@pytest.mark.parametrize(("prompt", "error"), [("", ValueError), (" ", ValueError), (3, TypeError)])
def test_bad_prompt_at_reset_changes_nothing(make_env, prompt, error):
    env = make_env()
    env.reset(seed=0)
    env.step(NON_EOS)
    _fails_without_change(
        env, lambda: env.reset(seed=5, options={"prompt": prompt}), error, "prompt"
    )
    assert env.step(NON_EOS)[0]["input_ids"][-2:].tolist() == [NON_EOS, NON_EOS]


def test_bad_prompt_in_a_vector_reset_resets_no_sub_env(make_vec_env):
    vec = make_vec_env(2)
    vec.reset(seed=0)
    before = [_snapshot(env) for env in vec.envs]
    with pytest.raises(ValueError, match="empty"):
        vec.reset(options={"prompts": ["fine", ""]})
    for env, snapshot in zip(vec.envs, before, strict=True):
        _assert_same(snapshot, _snapshot(env))
    with pytest.raises(ValueError, match="1 prompts given for 2 sub-envs"):
        vec.reset(options={"prompts": ["fine"]})


def test_long_prompt_is_cut_from_the_left_with_a_warning(make_env, tiny_tokenizer):
    words = " ".join(f"word{i}" for i in range(40)) + " and the ending"
    env = make_env(max_prompt_tokens=8)
    with pytest.warns(UserWarning, match="longer than max_prompt_tokens=8; keeping its last 8"):
        obs, info = env.reset(options={"prompt": words})
    assert obs["attention_mask"].sum() == 8
    assert words.endswith(info["prompt"]) and info["prompt"].endswith("and the ending")
    assert len(info["prompt"]) < len(words)
    full = tiny_tokenizer(words)["input_ids"]
    np.testing.assert_array_equal(obs["input_ids"][-8:], full[-8:])


def test_prompt_within_budget_gives_no_warning(make_env):
    env = make_env(max_prompt_tokens=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.reset(options={"prompt": "Short one"})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"task": "poetry"}, ValueError, "unknown task 'poetry'; available tasks: .*sentiment"),
        ({"reward_predictor": "oracle"}, ValueError, "unknown reward predictor 'oracle'"),
        ({"reward_predictor": 3}, TypeError, "must be a name, a RewardPredictor or a callable"),
        ({"max_new_tokens": 0}, ValueError, "max_new_tokens must be a positive integer, got 0"),
        ({"max_new_tokens": -2}, ValueError, "max_new_tokens must be a positive integer"),
        ({"max_new_tokens": 2.5}, ValueError, "got 2.5"),
        ({"max_new_tokens": "8"}, ValueError, "got '8'"),
        ({"max_new_tokens": True}, ValueError, "got True"),
        ({"max_prompt_tokens": 0}, ValueError, "max_prompt_tokens must be a positive integer"),
        ({"render_mode": "rgb_array"}, ValueError, "render_mode 'rgb_array' is not one of"),
    ],
)
def test_bad_constructor_arguments(make_env, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_env(**kwargs)


def test_no_task_and_no_prompts(tiny_tokenizer):
    with pytest.raises(ValueError, match="give either a task or a prompts list"):
        TextGenerationEnv(tokenizer=tiny_tokenizer, reward_predictor="vader")
    with pytest.raises(ValueError, match="give either a task or a reward_predictor"):
        TextGenerationEnv(tokenizer=tiny_tokenizer, prompts=["hi"])


@pytest.mark.parametrize("num_envs", [0, -1, 2.0, "2", True, None])
def test_bad_num_envs(tiny_tokenizer, num_envs):
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        TextGenerationVectorEnv(num_envs, tokenizer=tiny_tokenizer, task="sentiment")


def test_bad_reset_mask_and_seeds(make_vec_env):
    vec = make_vec_env(3)
    with pytest.raises(ValueError, match=r"reset_mask must have shape \(3,\)"):
        vec.reset(options={"reset_mask": np.ones(2, bool)})
    with pytest.raises(ValueError, match="2 seeds given for 3 sub-envs"):
        vec.reset(seed=[1, 2])


def test_long_listed_prompt_warns_at_every_reset(make_env):
    env = make_env(prompts=[" ".join(["word"] * 30) + " end"], max_prompt_tokens=8)
    for _ in range(2):
        with pytest.warns(UserWarning, match="keeping its last 8"):
            _, info = env.reset()
        assert info["prompt"].endswith("word end")


@pytest.mark.filterwarnings("ignore:.*render_mode='rgb_array'")
def test_sb3_make_vec_env_falls_back_from_rgb_array():
    from stable_baselines3.common.env_util import make_vec_env

    vec_env = make_vec_env("rlhf_gym/Sentiment-v0", n_envs=2, seed=0)
    assert vec_env.num_envs == 2
    assert vec_env.get_attr("render_mode") == [None, None]
