"""Gold scorers that read their instruction from the prompt: ArithmeticAnswer, InstructedLength."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.rewards import ArithmeticAnswer, InstructedLength, make_reward_predictor
from rlhf_gym.rewards.instructions import count_words, parse_question, parse_target_words

SUM = "Q: 37 + 48 = ? A:"


def arithmetic(prompt: str, completion: str) -> float:
    return float(ArithmeticAnswer()([prompt], [completion])[0])


@pytest.mark.parametrize(
    "completion",
    [
        "85",
        " 85",
        "   85",
        " 85.",
        "The answer is 85.",
        " = 85",
        " 37 + 48 = 85",
        "37+48=85",
        " 85.0",
        " 85, I am sure: 85.",
        " 85\n86\n87",  # only the first non-blank line is the answer
        "\n\n 85",
    ],
)
def test_right_answers_score_one(completion):
    assert arithmetic(SUM, completion) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "",
        " ",
        " 86",
        " 85 or 86",  # hedging
        " 84 85 86",  # listing numbers
        " 37 48 85",  # the operands without the equation
        " 37 + 48 is 85",  # only "37 + 48 =" is taken out
        " 137 + 48 = 85",  # a different equation
        " eighty-five",
        " 85.5",
        " 8 5",
        " -85",
        " The answer is\n85",
    ],
)
def test_wrong_or_hedged_answers_score_zero(completion):
    assert arithmetic(SUM, completion) == 0.0


@pytest.mark.parametrize(
    ("prompt", "completion", "expected"),
    [
        ("Q: 12 - 37 = ? A:", " -25", 1.0),
        ("Q: 12 - 37 = ? A:", " 12 - 37 = -25.", 1.0),
        ("Q: 12 - 37 = ? A:", " −25", 1.0),  # typographic minus
        ("Q: 12 - 37 = ? A:", " 25", 0.0),
        ("Q: 12 - 37 = ? A:", " - 25", 0.0),  # a sign must touch the digits
        ("Q: 32 * 32 = ? A:", " 1,024", 1.0),
        ("Q: 32 * 32 = ? A:", " The answer is 1,024.", 1.0),
        ("Q: 32 * 32 = ? A:", " 1024", 1.0),
        ("Q: 32 * 32 = ? A:", " 1,02", 0.0),
        ("Q: 32 * 32 = ? A:", " 32 × 32 = 1024", 1.0),  # same operation, other symbol
        ("Q: 32 * 32 = ? A:", " 32 + 32 = 1024", 0.0),  # not the question's equation
        ("Q: 32 × 32 = ? A:", " 1024", 1.0),
        ("Q: 7 * 0 = ? A:", " 0", 1.0),
        ("Q: 2 + 2 = ? A: 4\nQ: 3 + 4 = ? A:", " 7", 1.0),  # few-shot: the open question
    ],
)
def test_hand_checked_questions(prompt, completion, expected):
    assert arithmetic(prompt, completion) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 999),
    st.sampled_from(["+", "-", "*", "−", "×"]),
    st.integers(0, 999),
    st.integers(-50, 50).filter(lambda offset: offset != 0),
)
def test_the_right_integer_and_only_it_scores_one(left, symbol, right, offset):
    result = {"+": left + right, "-": left - right, "−": left - right}.get(symbol, left * right)
    prompt = f"Q: {left} {symbol} {right} = ? A:"
    scores = ArithmeticAnswer()(
        [prompt] * 4,
        [f" {result}", f" {result:,}.", f" {result + offset}", f" {result} or {result + offset}"],
    )
    assert scores.tolist() == [1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("prompt", ["Tell me a joke.", "Q: 37 + 48 A:", "Q: 37 / 48 = ? A:", ""])
def test_a_prompt_without_a_question_is_named(prompt):
    with pytest.raises(
        ValueError, match=re.escape(f"prompt {prompt!r} holds no arithmetic question")
    ):
        ArithmeticAnswer()([prompt], [" 1"])


def test_parse_question():
    question = parse_question("Q: 512 - 389 = ? A:")
    assert (question.left, question.symbol, question.right, question.answer) == (512, "-", 389, 123)


@pytest.mark.parametrize(
    ("prompt", "target"),
    [
        ("In exactly 12 words, describe a rainy morning.", 12),
        ("Describe a rainy morning in exactly twelve words.", 12),
        ("Write Seventeen words about a forest.", 17),
        ("Sum up the film in one word.", 1),
        ("Write exactly 30 words on 3 topics.", 30),
        ("Use 7 words, then 9 words.", 7),  # the first count
    ],
)
def test_parse_target_words(prompt, target):
    assert parse_target_words(prompt) == target


@pytest.mark.parametrize("prompt", ["Describe a rainy morning.", "Write 12 sentences.", ""])
def test_a_prompt_without_a_word_count_is_named(prompt):
    with pytest.raises(
        ValueError, match=re.escape(f"prompt {prompt!r} asks for no number of words")
    ):
        InstructedLength()([prompt], ["x"])


def test_a_zero_word_count_is_refused():
    with pytest.raises(ValueError, match="asks for 0 words; expected at least 1"):
        parse_target_words("Write 0 words.")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", 0),
        ("   \n ", 0),
        ("Rain falls.", 2),
        ("rainy, don't 12", 3),
        ("well-known - ... !! — ?", 1),
        ("a\tb\nc", 3),
        ("(a) [b]", 2),
    ],
)
def test_count_words(text, words):
    assert count_words(text) == words


def test_instructed_length_peaks_on_target_and_falls_linearly():
    prompt = "In exactly 4 words, describe a cat."
    texts = ["", "one two", "one two three four", "a b c d e f", "a " * 8, "a " * 20]
    scores = InstructedLength()([prompt] * 6, texts)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, [0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


def test_each_prompt_brings_its_own_target():
    prompts = ["Describe it in 2 words.", "Describe it in ten words."]
    np.testing.assert_allclose(InstructedLength()(prompts, ["a b", "a b"]), [1.0, 0.2])


def test_punctuation_padding_earns_nothing():
    prompt = "In exactly 6 words, describe a cat."
    padded = "A cat sleeps . . . - - ! ... ?"
    assert InstructedLength()([prompt, prompt], [padded, "A cat sleeps"]).tolist() == [0.5, 0.5]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40),
    st.lists(st.from_regex(r"[A-Za-z0-9]{1,8}[,.;!?]?", fullmatch=True), max_size=80),
    st.lists(st.sampled_from(["-", "...", "!", "—", "?!"]), max_size=10),
)
def test_instructed_length_counts_words_not_punctuation(target, words, padding):
    prompt = f"Write exactly {target} words."
    plain, padded = " ".join(words), " ".join([*words, *padding])
    scores = InstructedLength()([prompt, prompt], [plain, padded])
    expected = max(0.0, 1.0 - abs(len(words) - target) / target)
    np.testing.assert_allclose(scores, [expected, expected], rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "cls"), [("arithmetic", ArithmeticAnswer), ("instructed-length", InstructedLength)]
)
def test_found_by_name_with_a_repr_batches_and_length_checks(name, cls):
    predictor = make_reward_predictor(name)
    assert isinstance(predictor, cls) and repr(predictor) == f"{cls.__name__}()"
    empty = predictor([], [])
    assert empty.shape == (0,) and empty.dtype == np.float32
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        predictor(["a", "b"], ["c"])
