"""How turns become tokens: a tokenizer's chat template, or the plain-text fallback."""

from __future__ import annotations

import copy

import pytest

from rlhf_gym.dialogue import FinalReply
from rlhf_gym.dialogue.guess_number import GuessNumberUser
from rlhf_gym.envs import DialogueEnv
from rlhf_gym.envs.chat import OpeningEncoder, PlainTextChat, TemplateChat, chat_format

# A ChatML-like template that closes every message with the EOS token, as SmolLM2's does.
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture
def templated(tiny_tokenizer):
    """A copy of the tiny tokenizer with a chat template (the session's own stays as it is)."""
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_without_a_template_turns_are_plain_text(tiny_tokenizer):
    chat = chat_format(tiny_tokenizer)
    assert isinstance(chat, PlainTextChat)
    assert chat.opening_ids("Hi.") == tiny_tokenizer("User: Hi.\nAssistant:")["input_ids"]
    assert chat.user_turn_ids("Lower.", after_eos=True, cue=True) == _ids(
        tiny_tokenizer, "\nUser: Lower.\nAssistant:"
    )
    assert chat.user_turn_ids("Bye.", after_eos=False, cue=False) == _ids(
        tiny_tokenizer, "\nUser: Bye."
    )


def test_with_a_template_turns_are_what_the_template_writes(templated):
    chat = chat_format(templated)
    assert isinstance(chat, TemplateChat)
    eos = templated.eos_token
    assert chat.opening_ids("Hi.") == _ids(templated, f"<|user|>Hi.{eos}<|assistant|>")
    # After a turn cut at the budget the template's end of turn is written ...
    assert chat.user_turn_ids("Lower.", after_eos=False, cue=True) == _ids(
        templated, f"{eos}<|user|>Lower.{eos}<|assistant|>"
    )
    # ... after the agent's own EOS it is not written twice; a last word has no cue.
    assert chat.user_turn_ids("Bye.", after_eos=True, cue=False) == _ids(
        templated, f"<|user|>Bye.{eos}"
    )


def test_a_conversation_reads_as_the_templates_rendering_of_it(templated):
    """Assistant turns of tokenized text ending in EOS: the window is exactly
    ``apply_chat_template`` of the conversation, so a chat model sees what it was trained on."""
    env = DialogueEnv(
        tokenizer=templated,
        prompts=["Guess my number from 1 to 20."],
        user_simulator=lambda history: (
            FinalReply("Yes!") if "4" in history[-1]["content"] else "No."
        ),
        reward_predictor=lambda prompts, completions: [0.0] * len(prompts),
        max_prompt_tokens=40,
        max_user_tokens=24,
        max_new_tokens=8,
    )
    obs, _ = env.reset(seed=0)
    for guess in ("1", "2", "4"):
        for token in [*_ids(templated, f"I guess {guess}"), templated.eos_token_id]:
            obs, _, terminated, _, info = env.step(token)
    assert terminated and info["reply"] == "Yes!"
    window = obs["input_ids"][obs["attention_mask"].astype(bool)]
    expected = templated.apply_chat_template(info["conversation"], tokenize=False)
    assert templated.decode(window) == expected


def test_a_template_that_rewrites_content_is_refused(tiny_tokenizer):
    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"
    with pytest.raises(ValueError, match="does not write an assistant message's content as it is"):
        chat_format(tokenizer)


def test_the_opening_encoder_refuses_openings_over_the_budget_and_caches_listed_ones(
    counting_tokenizer,
):
    encoder = OpeningEncoder(PlainTextChat(counting_tokenizer), max_prompt_tokens=16)
    first = encoder.encode_listed("Hi.")
    assert encoder.encode_listed("Hi.") == first and len(counting_tokenizer.encoded) == 1
    with pytest.raises(ValueError, match="more than max_prompt_tokens=16"):
        encoder.encode("word " * 20)


@pytest.mark.slow
def test_smollm2s_chat_template_renders_a_game_as_the_model_was_trained():
    from rlhf_gym.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    env = DialogueEnv(
        task="guess_number", tokenizer=tokenizer, user_simulator=GuessNumberUser(), max_turns=6
    )
    obs, _ = env.reset(seed=0)
    secret, low, high = env.episode.user.secret, 1, 20
    terminated = False
    while not terminated:  # binary search, each guess tokenized and ended with EOS
        guess = (low + high) // 2
        for token in [*_ids(tokenizer, str(guess)), tokenizer.eos_token_id]:
            obs, reward, terminated, _, info = env.step(token)
        low, high = (guess + 1, high) if guess < secret else (low, guess - 1)
    assert info["conversation"][-1]["content"] == f"Correct! The number was {secret}."
    window = obs["input_ids"][obs["attention_mask"].astype(bool)]
    expected = tokenizer.apply_chat_template(info["conversation"], tokenize=False)
    assert tokenizer.decode(window) == expected and reward > 0
