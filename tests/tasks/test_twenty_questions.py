"""The twenty-questions task: its env, openings and budgets, and games played through it."""

from __future__ import annotations

import gymnasium as gym
import pytest

from rlhf_gym.dialogue import twenty_questions as game
from rlhf_gym.dialogue.games import TurnsToSolve
from rlhf_gym.envs import DialogueEnv
from rlhf_gym.envs.chat import chat_format
from rlhf_gym.tasks import get_task
from rlhf_gym.tasks.twenty_questions import TASK


def test_task_fields_and_env(tiny_tokenizer):
    assert get_task("twenty_questions") is TASK and TASK.env_id == "rlhf_gym/TwentyQuestions-v0"
    assert TASK.is_dialogue and TASK.user_simulator == "twenty-questions"
    assert TASK.gold_reward == TASK.default_reward == "twenty-questions"
    assert TASK.max_turns == game.MAX_TURNS == 10
    env = gym.make(TASK.env_id, tokenizer=tiny_tokenizer).unwrapped
    assert isinstance(env, DialogueEnv) and isinstance(env.reward_predictor, TurnsToSolve)
    assert env.sequence_length == 224 + 10 * (16 + 48)


def test_every_opening_lists_the_twenty_things():
    for opening in TASK.prompts("all"):
        assert ", ".join(game.THINGS) in opening


def _replies() -> list[str]:
    things = [game.with_article(t) for t in game.THINGS]
    return [
        game.YES, game.NO, game.ONE_AT_A_TIME, game.ASK_A_QUESTION,
        *(game.FOUND.format(thing=t) for t in things),
        *(game.NOT_IT.format(thing=t) for t in things),
    ]  # fmt: skip


@pytest.mark.parametrize("model", ["tiny", pytest.param("smollm2-135m", marks=pytest.mark.slow)])
def test_openings_and_replies_fit_the_budgets(model):
    from rlhf_gym.models import load_tokenizer

    chat = chat_format(load_tokenizer(model))
    assert max(len(chat.opening_ids(p)) for p in TASK.prompts("all")) <= TASK.max_prompt_tokens
    longest = max(len(chat.user_turn_ids(r, after_eos=False, cue=True)) for r in _replies())
    assert longest <= TASK.max_user_tokens


def _say(env, text: str):
    """Step the tokens of ``text`` (within one turn's budget) and then EOS."""
    tokens = env.tokenizer(f" {text}", add_special_tokens=False)["input_ids"]
    assert len(tokens) < env.max_new_tokens, text
    for token in tokens:
        env.step(token)
    return env.step(env.eos_token_id)


def play_by_halving(env) -> tuple[str, float, dict]:
    """Ask about the attribute that best halves the things still possible, then guess."""
    env.reset()
    secret, possible = env.episode.user.secret, dict(game.THINGS)
    while len(possible) > 1:
        attribute = min(
            game.ATTRIBUTES,
            key=lambda a: abs(sum(a in attrs for attrs in possible.values()) - len(possible) / 2),
        )
        *_, info = _say(env, f"Is it {game.ATTRIBUTES[attribute][0]}?")
        keep = info["reply"] == game.YES
        possible = {t: attrs for t, attrs in possible.items() if (attribute in attrs) == keep}
    (guess,) = possible
    _, reward, terminated, truncated, info = _say(env, f"Is it {game.with_article(guess)}?")
    assert guess == secret and terminated and not truncated
    return secret, reward, info


def test_halving_questions_find_every_thing_and_earn_its_gold(tiny_tokenizer):
    env = DialogueEnv(task="twenty_questions", tokenizer=tiny_tokenizer, split="all")
    env.reset(seed=0)
    found = set()
    for _ in range(100):
        secret, reward, info = play_by_halving(env)
        turns = info["num_turns"]
        assert turns <= 7 and reward == pytest.approx(1 - (turns - 1) / 10)
        assert info["conversation"][-1]["content"].startswith("Yes! It is")
        found.add(secret)
    assert found == set(game.THINGS)


def test_the_held_out_env_plays_the_held_out_things(tiny_tokenizer):
    env = gym.make(TASK.env_id, tokenizer=tiny_tokenizer, split="test").unwrapped
    env.reset(seed=0)
    assert {play_by_halving(env)[0] for _ in range(30)} == set(game.HELDOUT)
