"""The guess-number task: its env, its openings and budgets, and games played through it."""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlhf_gym.dialogue import guess_number as game
from rlhf_gym.dialogue.games import TurnsToSolve
from rlhf_gym.envs import DialogueEnv
from rlhf_gym.envs.chat import chat_format
from rlhf_gym.tasks import get_task
from rlhf_gym.tasks.guess_number import TASK


def test_task_fields_and_env():
    assert get_task("guess_number") is TASK and TASK.env_id == "rlhf_gym/GuessNumber-v0"
    assert TASK.is_dialogue and TASK.user_simulator == "guess-number"
    assert TASK.gold_reward == TASK.default_reward == "guess-number"
    assert TASK.max_turns == game.MAX_TURNS == 6
    assert len(TASK.prompts("train")) == 4 and len(TASK.prompts("test")) == 1


def test_the_env_takes_its_settings_from_the_task(tiny_tokenizer):
    env = gym.make("rlhf_gym/GuessNumber-v0", tokenizer=tiny_tokenizer).unwrapped
    assert isinstance(env, DialogueEnv) and isinstance(env.reward_predictor, TurnsToSolve)
    assert (env.max_turns, env.max_new_tokens, env.max_user_tokens) == (6, 8, 32)
    assert env.sequence_length == 80 + 6 * (8 + 32)


def _replies() -> list[str]:
    return [game.HIGHER, game.LOWER, game.ASK_FOR_NUMBER, game.CORRECT.format(secret=19)]


@pytest.mark.parametrize("model", ["tiny", pytest.param("smollm2-135m", marks=pytest.mark.slow)])
def test_openings_and_replies_fit_the_budgets(model):
    from rlhf_gym.models import load_tokenizer

    chat = chat_format(load_tokenizer(model))
    assert max(len(chat.opening_ids(p)) for p in TASK.prompts("all")) <= TASK.max_prompt_tokens
    longest = max(len(chat.user_turn_ids(r, after_eos=False, cue=True)) for r in _replies())
    assert longest <= TASK.max_user_tokens


def play_binary_search(env) -> tuple[int, float, dict]:
    """Guess the middle of what is left until the user says correct; the secret, the last
    reward and info."""
    env.reset()
    secret, low, high = env.episode.user.secret, game.LOW, game.HIGH
    terminated = False
    while not terminated:
        guess = (low + high) // 2
        for token in env.tokenizer(f" {guess}", add_special_tokens=False)["input_ids"]:
            env.step(token)
        _, reward, terminated, truncated, info = env.step(env.eos_token_id)
        low, high = (guess + 1, high) if guess < secret else (low, guess - 1)
    assert not truncated
    return secret, reward, info


def test_binary_search_finds_every_secret_and_earns_its_gold(tiny_tokenizer):
    env = DialogueEnv(task="guess_number", tokenizer=tiny_tokenizer, split="all")
    env.reset(seed=0)
    found = {}
    for _ in range(120):
        secret, reward, info = play_binary_search(env)
        turns = info["num_turns"]
        assert turns <= 5 and reward == pytest.approx(1 - (turns - 1) / 6)
        assert info["conversation"][-1]["content"] == f"Correct! The number was {secret}."
        found[secret] = turns
    assert set(found) == set(range(1, 21)) and found[10] == 1


def test_the_held_out_env_plays_the_held_out_secrets(tiny_tokenizer):
    env = gym.make("rlhf_gym/GuessNumber-v0", tokenizer=tiny_tokenizer, split="test").unwrapped
    env.reset(seed=0)
    secrets = {play_binary_search(env)[0] for _ in range(40)}
    assert secrets == set(game.HELDOUT)
    assert env.prompts == TASK.prompts("test")
