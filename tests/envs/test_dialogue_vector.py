"""DialogueVectorEnv: SyncVectorEnv's semantics over dialogue envs, with every ending
conversation (and every ending turn) scored in one predictor call per step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlhf_gym.envs import DialogueEnv, DialogueVectorEnv

from .conftest import ConversationLog, biased_actions, dialogue_defaults

NUM_ENVS = 4


def _sync_reference(tokenizer, mode: AutoresetMode, **kwargs) -> SyncVectorEnv:
    settings = {**dialogue_defaults(tokenizer, ConversationLog()), **kwargs}
    return SyncVectorEnv([lambda: DialogueEnv(**settings)] * NUM_ENVS, autoreset_mode=mode)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_the_vector_env_steps_exactly_as_sync_vector_env(
    make_dialogue_vec, tiny_tokenizer, assert_tree_equal, mode
):
    turn_log = ConversationLog()
    vec = make_dialogue_vec(NUM_ENVS, autoreset_mode=mode, turn_reward_predictor=turn_log)
    reference = _sync_reference(tiny_tokenizer, mode, turn_reward_predictor=ConversationLog())
    rng = np.random.default_rng(0)
    assert_tree_equal(vec.reset(seed=11), reference.reset(seed=11))
    ended_by_user = ended_by_turn_limit = 0
    for _ in range(120):
        actions = biased_actions(rng, vec.vocab_size, vec.eos_token_id, size=NUM_ENVS)
        ours, theirs = vec.step(actions), reference.step(actions)
        assert_tree_equal(ours, theirs)
        _, _, terminated, truncated, _ = ours
        ended_by_user += int((terminated & ~truncated).sum())
        ended_by_turn_limit += int((terminated & truncated).sum())
    assert ended_by_user >= 3 and ended_by_turn_limit >= 3


def test_one_call_scores_every_conversation_that_ends_on_a_step(
    make_dialogue_vec, conversation_log
):
    turn_log = ConversationLog()
    vec = make_dialogue_vec(
        NUM_ENVS, autoreset_mode="disabled", turn_reward_predictor=turn_log, max_turns=1
    )
    vec.reset(seed=0)
    *_, infos = vec.step(np.full(NUM_ENVS, vec.eos_token_id))  # every turn, so every one, ends
    assert len(conversation_log.batches) == 1 and len(conversation_log.batches[0]) == NUM_ENVS
    assert len(turn_log.batches) == 1 and len(turn_log.batches[0]) == NUM_ENVS
    assert (
        infos["_conversation"].all() and list(infos["conversation"]) == conversation_log.batches[0]
    )


def test_disabled_autoreset_keeps_finished_conversations_finished(make_dialogue_vec):
    vec = make_dialogue_vec(2, autoreset_mode="disabled", max_turns=1)
    vec.reset(seed=0)
    eos = vec.eos_token_id
    _, _, terminated, _, _ = vec.step(np.array([eos, 300]))
    assert terminated.tolist() == [True, False]
    _, rewards, terminated, _, infos = vec.step(np.array([300, eos]))  # the first is idle
    assert terminated.tolist() == [False, True] and rewards[0] == 0.0
    assert infos["_turn"].tolist() == [False, True]
    vec.reset(options={"reset_mask": np.array([True, False])})
    assert not vec.envs[0].episode.done and vec.envs[1].episode.done


def test_the_vector_env_publishes_the_dialogue_settings(make_dialogue_vec, tiny_tokenizer):
    vec = make_dialogue_vec(3, max_turns=2, max_user_tokens=20)
    assert (vec.max_turns, vec.max_user_tokens) == (2, 20)
    assert vec.sequence_length == 24 + 2 * (4 + 20)
    assert vec.single_observation_space["input_ids"].shape == (vec.sequence_length,)
    first = vec.envs[0]
    for env in vec.envs[1:]:  # one tokenizer, simulator, predictor and opening encoder
        assert env.tokenizer is tiny_tokenizer and env.user_simulator is first.user_simulator
        assert env.reward_predictor is first.reward_predictor
        assert env.prompt_encoder is first.prompt_encoder


def test_make_vec_builds_the_dialogue_vector_env_of_a_task(tiny_tokenizer):
    vec = gym.make_vec(
        "rlhf_gym/GuessNumber-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        tokenizer=tiny_tokenizer,
    )
    assert isinstance(vec, DialogueVectorEnv) and vec.max_turns == 6
    obs, infos = vec.reset(seed=0)
    assert obs["input_ids"].shape == (2, vec.sequence_length) and len(infos["prompt"]) == 2
