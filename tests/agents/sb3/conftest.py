"""Small SB3 vector envs over the text env, for fast agent tests."""

from __future__ import annotations

import gymnasium as gym
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv


@pytest.fixture
def make_vec_env(tiny_tokenizer):
    """Factory: ``n`` envs (Sentiment by default) with short completions, sharing the session
    tokenizer."""

    def make(
        n: int = 2,
        max_new_tokens: int = 6,
        wrapper=None,
        env_id: str = "rlhf_gym/Sentiment-v0",
        **env_kwargs,
    ) -> DummyVecEnv:
        def one() -> gym.Env:
            env = gym.make(
                env_id,
                tokenizer=tiny_tokenizer,
                max_new_tokens=max_new_tokens,
                **{"max_prompt_tokens": 24, **env_kwargs},
            )
            return wrapper(env) if wrapper is not None else env

        vec_env = DummyVecEnv([one] * n)
        vec_env.seed(0)
        return vec_env

    return make
