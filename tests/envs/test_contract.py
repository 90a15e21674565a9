"""The env <-> vector-env contract: what both publish, and what the vector env may touch."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

from rlhf_gym.envs import vector
from rlhf_gym.envs.episode import PromptEncoder
from rlhf_gym.models import load_tokenizer

NON_EOS = 300
SETTINGS = {"max_new_tokens": 3, "max_prompt_tokens": 10, "missing_eos_penalty": 0.5}
PUBLISHED = (
    "tokenizer", "vocab_size", "eos_token_id", "pad_token_id", "max_prompt_tokens",
    "max_new_tokens", "sequence_length", "missing_eos_penalty",
)  # fmt: skip


def test_the_vector_env_publishes_the_settings_of_its_sub_envs(make_vec_env, tiny_tokenizer):
    vec = make_vec_env(3, **SETTINGS)
    for name in PUBLISHED:
        assert all(getattr(env, name) == getattr(vec, name) for env in vec.envs), name
    # ... and they are the settings asked for, not defaults.
    assert (vec.max_new_tokens, vec.max_prompt_tokens, vec.missing_eos_penalty) == (3, 10, 0.5)
    assert vec.tokenizer is tiny_tokenizer and vec.sequence_length == 13
    assert vec.eos_token_id == tiny_tokenizer.eos_token_id and vec.vocab_size == 1024
    assert vec.single_observation_space["input_ids"].shape == (vec.sequence_length,)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_settings_are_read_only(make_env, make_vec_env, name):
    for env in (make_env(), make_vec_env(2)):
        with pytest.raises(AttributeError):
            setattr(env, name, getattr(env, name))


def test_the_episode_is_the_env_state(make_env):
    env = make_env(**SETTINGS)
    _, info = env.reset(seed=4)
    assert env.episode.started and not env.episode.done and env.episode.prompt == info["prompt"]
    env.step(NON_EOS)
    obs, *_, terminated, _, info = env.step(env.eos_token_id)
    assert terminated and env.episode.done
    assert env.episode.completion_ids == (NON_EOS, env.eos_token_id)
    assert env.episode.completion == info["completion"]
    for key, array in env.episode.observation().items():
        np.testing.assert_array_equal(array, obs[key])


def test_sub_envs_share_one_prompt_encoder(make_vec_env, counting_tokenizer, prompts):
    vec = make_vec_env(4, tokenizer=counting_tokenizer)
    assert all(env.prompt_encoder is vec.envs[0].prompt_encoder for env in vec.envs)
    for seed in range(5):  # 20 prompt draws over 4 sub-envs ...
        vec.reset(seed=seed)
    encoded = counting_tokenizer.encoded
    assert len(encoded) == len(set(encoded)) and set(encoded) <= set(prompts)  # ... once each


def test_a_prompt_encoder_for_another_budget_is_refused(make_env, tiny_tokenizer):
    env = make_env(max_prompt_tokens=16)
    with pytest.raises(ValueError, match="max_prompt_tokens=16, got 8"):
        env.prompt_encoder = PromptEncoder(tiny_tokenizer, max_prompt_tokens=8)
    with pytest.raises(ValueError, match="this env's tokenizer"):
        env.prompt_encoder = PromptEncoder(load_tokenizer("tiny"), max_prompt_tokens=16)


def test_rng_state_round_trips_through_get_attr_and_set_attr(make_vec_env):
    vec = make_vec_env(3)
    vec.reset(seed=7)
    saved = [rng.bit_generator.state for rng in vec.get_attr("np_random")]
    first = [vec.reset()[1]["prompt"].tolist() for _ in range(6)]
    restored = []
    for state in saved:
        generator = np.random.Generator(np.random.PCG64())
        generator.bit_generator.state = state
        restored.append(generator)
    vec.set_attr("np_random", restored)
    assert [vec.reset()[1]["prompt"].tolist() for _ in range(6)] == first
    with pytest.raises(ValueError, match="2 values given for 3 sub-envs"):
        vec.set_attr("np_random", restored[:2])


def test_human_rendering_matches_sync_vector_env(make_env, make_vec_env, capsys):
    vec = make_vec_env(2, max_new_tokens=2, render_mode="human")
    reference = SyncVectorEnv([lambda: make_env(max_new_tokens=2, render_mode="human")] * 2)
    printed = []
    for env in (vec, reference):
        env.reset(seed=1)
        for actions in ([NON_EOS, NON_EOS], [17, env.unwrapped.envs[0].eos_token_id]):
            env.step(np.array(actions))
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and printed[0].count("\n") >= 6


def test_the_vector_env_uses_no_private_member_of_another_object():
    """Sub-envs and episodes are driven through their public API only."""
    tree = ast.parse(inspect.getsource(vector))
    private = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
