"""DialogueEnv: turn boundaries, the user's replies in the observation, how a conversation ends,
rewards from the whole conversation and from each turn, and bad simulator output."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.dialogue import FinalReply, reward_texts
from rlhf_gym.envs import DialogueEnv

from .conftest import OPENINGS, ConversationLog, biased_actions, dialogue_defaults

NON_EOS = 300  # " I" in the tiny tokenizer


class Scripted:
    """A user who replies ``replies[k]`` to the assistant's turn ``k`` (from 0), and logs the
    histories it reads."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = replies
        self.histories: list[list[dict[str, str]]] = []

    def __call__(self, history):
        self.histories.append(history)
        return self.replies[len(history) // 2 - 1]


def real_ids(obs: dict[str, np.ndarray]) -> list[int]:
    return obs["input_ids"][obs["attention_mask"].astype(bool)].tolist()


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def say(env: DialogueEnv, text: str):
    """Step the tokens of ``text`` and then EOS; the result of the EOS step."""
    for token in ids(env.tokenizer, text):
        _, reward, terminated, _, info = env.step(token)
        assert (reward, terminated, info) == (0.0, False, {})
    return env.step(env.eos_token_id)


def opening(prompt: str) -> dict[str, str]:
    return {"role": "user", "content": prompt}


def test_reset_shows_the_opening_in_the_plain_text_format(make_dialogue, tiny_tokenizer):
    env = make_dialogue()
    obs, info = env.reset(seed=0)
    assert info["prompt"] in OPENINGS and env.observation_space.contains(obs)
    assert real_ids(obs) == tiny_tokenizer(f"User: {info['prompt']}\nAssistant:")["input_ids"]
    assert env.sequence_length == 24 + 3 * (4 + 32)  # the longest conversation fits
    assert env.episode.conversation == [opening(info["prompt"])]


def test_tokens_inside_a_turn_are_appended_one_by_one_without_reward(make_dialogue):
    env = make_dialogue(user_simulator=Scripted(["Higher."] * 3))
    start, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(NON_EOS)
    assert real_ids(obs) == [*real_ids(start), NON_EOS]
    assert (reward, terminated, truncated, info) == (0.0, False, False, {})
    assert env.episode.turn_ids == (NON_EOS,) and env.episode.num_turns == 0


def test_eos_ends_the_turn_and_the_users_reply_follows_it(make_dialogue, tiny_tokenizer):
    user = Scripted(["Higher.", "Lower.", "Lower."])
    env = make_dialogue(user_simulator=user)
    start, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = say(env, " 10")
    reply_ids = ids(tiny_tokenizer, "\nUser: Higher.\nAssistant:")
    eos = env.eos_token_id
    assert real_ids(obs) == [*real_ids(start), *ids(tiny_tokenizer, " 10"), eos, *reply_ids]
    assert info == {
        "turn": 1,
        "eos": True,
        "num_new_tokens": 4,
        "reply": "Higher.",
        "user_token_ids": tuple(reply_ids),
    }
    assert (reward, terminated, truncated) == (0.0, False, False)
    prompt = env.episode.prompt
    said = {"role": "assistant", "content": "10"}  # decoded without EOS, stripped
    assert user.histories == [[opening(prompt), said]]
    assert env.episode.conversation == [
        opening(prompt),
        said,
        {"role": "user", "content": "Higher."},
    ]


def test_the_token_budget_ends_a_turn_and_costs_the_penalty(make_dialogue, tiny_tokenizer):
    env = make_dialogue(user_simulator=Scripted(["Go on."] * 3), missing_eos_penalty=0.25)
    start, _ = env.reset(seed=0)
    for _ in range(3):
        assert env.step(NON_EOS)[1:4] == (0.0, False, False)
    obs, reward, terminated, _, info = env.step(NON_EOS)  # the 4th token: max_new_tokens
    assert info["eos"] is False and info["num_new_tokens"] == 4 and info["turn"] == 1
    assert (reward, terminated) == (-0.25, False)
    reply_ids = ids(tiny_tokenizer, "\nUser: Go on.\nAssistant:")
    assert real_ids(obs) == [*real_ids(start), *[NON_EOS] * 4, *reply_ids]  # no EOS written
    assert env.episode.conversation[1]["content"] == "I I I I"


def test_the_user_ends_the_conversation_with_none(make_dialogue, conversation_log):
    env = make_dialogue(user_simulator=Scripted(["Higher.", None]))
    _, reset_info = env.reset(seed=0)
    say(env, " 10")
    obs, reward, terminated, truncated, info = say(env, " 15")
    conversation = [
        opening(reset_info["prompt"]),
        {"role": "assistant", "content": "10"},
        {"role": "user", "content": "Higher."},
        {"role": "assistant", "content": "15"},
    ]
    assert (terminated, truncated) == (True, False)
    assert info["conversation"] == conversation and info["num_turns"] == 2
    assert info["prompt"] == reset_info["prompt"]
    assert info["reply"] is None and info["user_token_ids"] == ()
    assert reward == info["score"] == ConversationLog.score(conversation)
    assert conversation_log.batches == [[conversation]]  # scored once, at the end
    assert real_ids(obs)[-1] == env.eos_token_id  # nothing appended after the last turn
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(NON_EOS)


def test_a_final_reply_is_the_users_last_word(make_dialogue, tiny_tokenizer):
    env = make_dialogue(user_simulator=Scripted([FinalReply("Correct!")]))
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = say(env, " 7")
    assert (terminated, truncated) == (True, False) and info["reply"] == "Correct!"
    last_word = ids(tiny_tokenizer, "\nUser: Correct!")  # no cue for a turn that never comes
    assert (
        info["user_token_ids"] == tuple(last_word) and real_ids(obs)[-len(last_word) :] == last_word
    )
    assert info["conversation"][-1] == {"role": "user", "content": "Correct!"}
    assert reward == info["score"] == ConversationLog.score(info["conversation"])


def test_the_last_allowed_turn_ends_it_truncated_and_scored(make_dialogue, tiny_tokenizer):
    env = make_dialogue(user_simulator=Scripted(["Lower."] * 3), max_turns=2)
    env.reset(seed=0)
    _, _, terminated, _, _ = say(env, " 10")
    assert not terminated
    _, reward, terminated, truncated, info = say(env, " 5")
    assert (terminated, truncated) == (True, True)  # cut by the turn limit, yet scored
    assert info["num_turns"] == 2 and info["conversation"][-1]["content"] == "Lower."
    assert info["user_token_ids"] == tuple(ids(tiny_tokenizer, "\nUser: Lower."))
    assert reward == info["score"] == ConversationLog.score(info["conversation"])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_window_holds_every_token_of_the_conversation(tiny_tokenizer, seed):
    """Each step appends ``[action, *user_token_ids]``; nothing ever leaves the window."""
    env = DialogueEnv(**dialogue_defaults(tiny_tokenizer, ConversationLog()))
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    window = real_ids(obs)
    terminated = False
    while not terminated:
        action = int(biased_actions(rng, env.vocab_size, env.eos_token_id))
        obs, _, terminated, _, info = env.step(action)
        window += [action, *info.get("user_token_ids", ())]
        assert real_ids(obs) == window
        mask = obs["attention_mask"]
        assert mask[-len(window) :].all() and not mask[: -len(window)].any()  # left-padded
    assert info["num_turns"] <= env.max_turns


def test_turn_rewards_score_each_turn_with_the_users_reply(make_dialogue, conversation_log):
    turn_log = ConversationLog()
    env = make_dialogue(user_simulator=Scripted(["Higher.", None]), turn_reward_predictor=turn_log)
    env.reset(seed=0)
    _, reward, _, _, info = say(env, " 10")
    first_turn = env.episode.conversation  # the opening, the turn and the reply
    assert len(first_turn) == 3 and turn_log.batches == [[first_turn]]
    assert reward == info["turn_score"] == ConversationLog.score(first_turn)
    _, reward, terminated, _, info = say(env, " 15")
    assert terminated and turn_log.batches[1] == [info["conversation"]]
    assert reward == pytest.approx(info["turn_score"] + info["score"])


def test_a_text_predictor_reads_the_conversations_transcript(make_dialogue, predictor):
    env = make_dialogue(user_simulator=Scripted([None]), reward_predictor=predictor)
    env.reset(seed=0)
    _, reward, _, _, info = say(env, " hello")
    assert predictor.batches == [[reward_texts(info["conversation"])]]
    assert reward == predictor.score(*reward_texts(info["conversation"]))


def _snapshot(env: DialogueEnv) -> tuple:
    window = env.episode.observation()
    return (
        window["input_ids"].tolist(),
        window["attention_mask"].tolist(),
        env.episode.conversation,
        env.episode.turn_ids,
        env.episode.done,
        copy.deepcopy(env.np_random.bit_generator.state),
    )


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (3, TypeError, r"returned int \(3\); expected a str, a FinalReply or None"),
        (["Higher."], TypeError, "returned list"),
        (b"Higher.", TypeError, "returned bytes"),
        ("", ValueError, "returned an empty reply"),
        ("Higher! " * 20, ValueError, "replied with .* tokens .* more than max_user_tokens=32"),
        (FinalReply("Correct! " * 20), ValueError, "more than max_user_tokens=32"),
    ],
)
def test_bad_simulator_output_raises_and_changes_nothing(make_dialogue, reply, error, match):
    user = Scripted([reply, None])
    env = make_dialogue(user_simulator=user)
    env.reset(seed=0)
    env.step(NON_EOS)
    before = _snapshot(env)
    with pytest.raises(error, match=match):
        env.step(env.eos_token_id)
    assert _snapshot(env) == before
    user.replies[0] = "Fine."  # the same step, retried, now goes through
    _, _, terminated, _, info = env.step(env.eos_token_id)
    assert info["reply"] == "Fine." and not terminated


def test_a_bad_score_changes_nothing(make_dialogue):
    env = make_dialogue(
        user_simulator=Scripted([None]),
        reward_predictor=lambda prompts, completions: [np.nan] * len(prompts),
    )
    env.reset(seed=0)
    before = _snapshot(env)
    with pytest.raises(ValueError, match="non-finite scores"):
        env.step(env.eos_token_id)
    assert _snapshot(env) == before


def test_a_seeded_reset_repeats_the_opening_and_the_users_secret(make_dialogue):
    env = make_dialogue()
    draws = []
    for seed in (3, 3, 4, 5, 6):
        _, info = env.reset(seed=seed)
        draws.append((info["prompt"], env.episode.user.mood))
    assert draws[0] == draws[1] and len(set(draws)) >= 3


def test_the_split_reaches_the_starter(make_dialogue):
    splits = []

    class Recording:
        def start(self, rng, split):
            splits.append(split)
            return Scripted([None])

    for split in ("train", "test", "all"):
        make_dialogue(user_simulator=Recording(), split=split).reset(seed=0)
    assert splits == ["train", "test", "all"]
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        make_dialogue(split="dev")


def test_an_opening_over_the_budget_is_refused(make_dialogue):
    with pytest.raises(ValueError, match="more than max_prompt_tokens=24"):
        make_dialogue(prompts=["word " * 30])
    env = make_dialogue()
    env.reset(seed=0)
    before = _snapshot(env)
    with pytest.raises(ValueError, match="more than max_prompt_tokens=24"):
        env.reset(seed=1, options={"prompt": "word " * 30})
    assert _snapshot(env) == before
    _, info = env.reset(options={"prompt": "Hi."})
    assert info["prompt"] == "Hi." and env.episode.prompt == "Hi."


def test_a_user_simulator_is_required(tiny_tokenizer):
    with pytest.raises(ValueError, match="give a user_simulator"):
        DialogueEnv(tokenizer=tiny_tokenizer, prompts=OPENINGS, reward_predictor="vader")


def test_the_single_turn_env_refuses_a_conversation_only_predictor(make_env):
    with pytest.raises(TypeError, match="scores whole conversations only"):
        make_env(reward_predictor=ConversationLog())


def test_render_shows_the_transcript_with_the_turn_in_progress(make_dialogue):
    env = make_dialogue(user_simulator=Scripted(["Higher."] * 3), render_mode="ansi")
    _, info = env.reset(seed=0)
    say(env, " 10")
    env.step(NON_EOS)
    assert env.render() == f"User: {info['prompt']}\nAssistant: 10\nUser: Higher.\nAssistant: I"


def test_extending_a_kv_cache_with_the_step_info_gives_the_full_forwards_logits(
    make_dialogue, tiny_model
):
    """The hook for agents that keep a KV cache: feed ``[action, *info["user_token_ids"]]``
    after each step instead of re-reading the window."""
    env = make_dialogue(user_simulator=Scripted(["Higher.", "Lower.", FinalReply("Yes!")]))
    trunk, head = tiny_model.model, tiny_model.lm_head
    obs, _ = env.reset(seed=0)
    out = trunk(input_ids=torch.as_tensor(real_ids(obs))[None], use_cache=True)  # (1, T)
    cache, seen = out.cache, int(obs["attention_mask"].sum())
    rng = np.random.default_rng(0)
    terminated = False
    while not terminated:
        action = int(biased_actions(rng, env.vocab_size, env.eos_token_id))
        obs, _, terminated, _, info = env.step(action)
        new = torch.as_tensor([[action, *info.get("user_token_ids", ())]])  # (1, k)
        positions = torch.arange(seen, seen + new.shape[1])[None]
        out = trunk(input_ids=new, cache=cache, position_ids=positions, use_cache=True)
        cache, seen = out.cache, seen + new.shape[1]
        full = trunk(input_ids=torch.as_tensor(real_ids(obs))[None]).last_hidden_state
        torch.testing.assert_close(
            head(out.last_hidden_state[0, -1]), head(full[0, -1]), atol=1e-5, rtol=1e-5
        )
    assert seen == int(obs["attention_mask"].sum()) and info["reply"] == "Yes!"
