"""Registration: every `rlhf_gym/*` id (single-turn and dialogue) passes Gymnasium's and
stable-baselines3's env checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import registry
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import rlhf_gym
from rlhf_gym.registration import DIALOGUE_ENV, TEXT_ENV, register_envs
from rlhf_gym.rewards.learned import LearnedRewardModel
from rlhf_gym.tasks import registered_tasks

# Ids whose registration carries no task need everything by keyword.
EXTRA_KWARGS = {
    "rlhf_gym/TextGeneration-v0": {
        "prompts": ["The museum", "Our new kettle"],
        "reward_predictor": "vader",
    },
    "rlhf_gym/Dialogue-v0": {
        "prompts": ["Guess my number from 1 to 20."],
        "user_simulator": "guess-number",
        "reward_predictor": "vader",  # a text predictor reads the transcript
    },
}
REGISTERED = sorted(env_id for env_id in registry if env_id.startswith("rlhf_gym/"))
DIALOGUES = sorted(
    ["rlhf_gym/Dialogue-v0", *(t.env_id for t in registered_tasks().values() if t.is_dialogue)]
)
SINGLE_TURN = sorted(set(REGISTERED) - set(DIALOGUES))


def _make(env_id: str, tokenizer, **kwargs):
    return gym.make(env_id, tokenizer=tokenizer, **EXTRA_KWARGS.get(env_id, {}), **kwargs)


def test_ids_are_namespaced_versioned_and_cover_every_task():
    assert set(REGISTERED) == set(rlhf_gym.ENV_IDS)
    assert "rlhf_gym/TextGeneration-v0" in REGISTERED
    for task in registered_tasks().values():
        assert task.env_id in REGISTERED
    assert {"rlhf_gym/GuessNumber-v0", "rlhf_gym/TwentyQuestions-v0"} < set(DIALOGUES)
    for env_id in REGISTERED:
        spec = registry[env_id]
        assert spec.namespace == "rlhf_gym" and spec.version is not None
        expected = DIALOGUE_ENV if env_id in DIALOGUES else TEXT_ENV
        assert (spec.entry_point, spec.vector_entry_point) == expected


def test_register_envs_is_idempotent():
    before = dict(registry)
    assert register_envs() == rlhf_gym.ENV_IDS
    assert dict(registry) == before


@pytest.mark.parametrize("env_id", REGISTERED)
def test_gymnasium_check_env(env_id, tiny_tokenizer):
    env = _make(env_id, tiny_tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings count as failures
        gym_check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", REGISTERED)
def test_sb3_check_env(env_id, tiny_tokenizer):
    env = _make(env_id, tiny_tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env.unwrapped, warn=True)


@pytest.mark.parametrize("env_id", SINGLE_TURN)
def test_make_and_step(env_id, tiny_tokenizer):
    env = _make(env_id, tiny_tokenizer, max_new_tokens=3)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and isinstance(info["prompt"], str)
    env.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert terminated and truncated == (not info["eos"])
    assert np.isfinite(reward) and np.isfinite(info["score"])


@pytest.mark.parametrize("env_id", DIALOGUES)
def test_make_and_talk(env_id, tiny_tokenizer):
    """A dialogue of one turn ends, and is scored, when that turn ends."""
    env = _make(env_id, tiny_tokenizer, max_new_tokens=3, max_turns=1)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and isinstance(info["prompt"], str)
    env.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
    assert terminated and info["num_turns"] == 1 and env.observation_space.contains(obs)
    assert np.isfinite(reward) and np.isfinite(info["score"])


def test_sentiment_defaults_come_from_the_task(tiny_tokenizer):
    env = gym.make("rlhf_gym/Sentiment-v0", tokenizer=tiny_tokenizer).unwrapped
    task = registered_tasks()["sentiment"]
    assert env.max_new_tokens == task.max_new_tokens
    assert env.max_prompt_tokens == task.max_prompt_tokens
    assert env.prompts == task.prompts("train")
    assert isinstance(env.reward_predictor, LearnedRewardModel)  # the task's learned default
    test_env = gym.make("rlhf_gym/Sentiment-v0", tokenizer=tiny_tokenizer, split="test")
    assert test_env.unwrapped.prompts == task.prompts("test")


def test_model_name_selects_the_tokenizer(tiny_tokenizer):
    """The env built from a model name encodes with that model's tokenizer and ends on its EOS."""
    env = gym.make("rlhf_gym/Sentiment-v0", model="tiny").unwrapped
    obs, info = env.reset(seed=0)
    ids = obs["input_ids"][obs["attention_mask"].astype(bool)]
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == info["prompt"]
    _, _, terminated, _, step_info = env.step(tiny_tokenizer.eos_token_id)
    assert terminated and step_info["eos"]


def test_module_prefix_imports_the_package(tiny_tokenizer):
    env = gym.make("rlhf_gym:rlhf_gym/Sentiment-v0", tokenizer=tiny_tokenizer)
    assert env.unwrapped.task.name == "sentiment"
