"""Gold scorers of instruction-following tasks: each reads its instruction from the prompt.

* :class:`ArithmeticAnswer` (``"arithmetic"``): 1 when the completion answers the prompt's
  ``a op b = ?`` question with exactly the right integer, else 0.
* :class:`InstructedLength` (``"instructed-length"``): how close the completion's word count
  is to the count the prompt asks for.

A prompt that holds no instruction the scorer can read raises ``ValueError`` naming it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rlhf_gym.rewards.gold import _check_lengths, length_closeness

OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "−": operator.sub,
    "*": operator.mul,
    "×": operator.mul,
}
"""The operator symbols a question may use (ASCII and typographic)."""

_OPERATOR = "[" + re.escape("".join(OPERATIONS)) + "]"
_QUESTION = re.compile(rf"(\d+)\s*({_OPERATOR})\s*(\d+)\s*=\s*\?")
# A minus sign counts only touching the digits and not right after a digit ("5-3" is 5 and 3);
# thousands commas group exactly three digits ("1,024"); a decimal part keeps "85.5" one number.
_NUMBER = re.compile(r"(?:(?<!\d)[-−])?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


@dataclass(frozen=True)
class ArithmeticQuestion:
    """One ``left op right = ?`` question, as read from a prompt."""

    left: int
    symbol: str
    right: int

    @property
    def answer(self) -> int:
        return OPERATIONS[self.symbol](self.left, self.right)

    def restatement(self) -> re.Pattern[str]:
        """``left op right =`` with any symbol of the same operation and any spacing."""
        same = "".join(s for s, f in OPERATIONS.items() if f is OPERATIONS[self.symbol])
        return re.compile(rf"(?<!\d){self.left}\s*[{re.escape(same)}]\s*{self.right}\s*=")


def parse_question(prompt: str) -> ArithmeticQuestion:
    """The last ``a op b = ?`` in the prompt (so a few-shot prompt asks its open question)."""
    matches = _QUESTION.findall(prompt)
    if not matches:
        raise ValueError(
            f"prompt {prompt!r} holds no arithmetic question; expected e.g. 'Q: 37 + 48 = ? A:'"
        )
    left, symbol, right = matches[-1]
    return ArithmeticQuestion(int(left), symbol, int(right))


def answer_values(completion: str, question: ArithmeticQuestion) -> set[Fraction]:
    """The distinct numbers the completion's answer line gives, once restatements of the
    question (``37 + 48 =``) are taken out."""
    lines = [line for line in completion.splitlines() if line.strip()]
    answer_line = question.restatement().sub(" ", lines[0]) if lines else ""
    numbers = _NUMBER.findall(answer_line)
    return {Fraction(number.replace(",", "").replace("−", "-")) for number in numbers}


def arithmetic_score(prompt: str, completion: str) -> float:
    """1.0 when the completion's answer line holds one number, the right one; else 0.0."""
    question = parse_question(prompt)
    return float(answer_values(completion, question) == {question.answer})


class ArithmeticAnswer:
    """Exact-answer score of an arithmetic question: 1.0 for the right integer, else 0.0.

    The question is the last ``a op b = ?`` of the prompt (non-negative integer operands; ``+``,
    ``-``/``−``, ``*``/``×``). The answer is read from the completion's first non-blank line,
    after every restatement of the question's own equation (``37 + 48 =``) is taken out. The
    numbers left on that line are read with an optional minus sign touching the digits
    (``-12``), optional thousands commas (``1,024``) and an optional decimal part (``85.0``
    equals 85, ``85.5`` does not). The score is 1 only when there is at least one number and all
    of them equal the right result: ``" 85"``, ``" 85."``, ``"The answer is 85."``, ``"= 85"``
    and ``"37 + 48 = 85"`` score 1; hedging (``"85 or 86"``), listing numbers (``"37 48 85"``)
    and words (``"eighty-five"``) score 0. Lines after the answer line are not read.
    """

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        _check_lengths(prompts, completions)
        scores = [arithmetic_score(p, c) for p, c in zip(prompts, completions, strict=True)]
        return np.asarray(scores, dtype=np.float32)

    def __repr__(self) -> str:
        return "ArithmeticAnswer()"


_SPELLED = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip
NUMBER_WORDS: dict[str, int] = {word: value for value, word in enumerate(_SPELLED, start=1)}
"""Word counts a prompt may spell out instead of writing digits."""

_TARGET = re.compile(rf"\b(\d+|{'|'.join(NUMBER_WORDS)})\s+words?\b", re.IGNORECASE)


def parse_target_words(prompt: str) -> int:
    """The word count the prompt asks for: the first number (digits or ``one`` .. ``twenty``)
    followed by ``word``/``words`` (``"In exactly 12 words"``, ``"in twelve words"``)."""
    match = _TARGET.search(prompt)
    if match is None:
        raise ValueError(
            f"prompt {prompt!r} asks for no number of words; expected e.g. 'in exactly 12 words'"
        )
    number = match.group(1).lower()
    target = int(number) if number.isdigit() else NUMBER_WORDS[number]
    if target < 1:
        raise ValueError(f"prompt {prompt!r} asks for {target} words; expected at least 1")
    return target


def count_words(text: str) -> int:
    """Whitespace-separated tokens that hold at least one letter or digit: ``"rainy,"``,
    ``"don't"`` and ``"12"`` count, punctuation such as ``"-"`` or ``"..."`` does not."""
    return sum(any(char.isalnum() for char in token) for token in text.split())


class InstructedLength:
    """How close the completion's length is to the prompt's instruction:
    ``max(0, 1 - |words - target| / target)``.

    ``target`` is read from the prompt by :func:`parse_target_words` and ``words`` counted by
    :func:`count_words`, so padding with punctuation does not count, an empty completion scores
    0 and so does one of twice the target or more.
    """

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        _check_lengths(prompts, completions)
        targets = np.array([parse_target_words(p) for p in prompts], dtype=np.float32)
        counts = np.array([count_words(c) for c in completions], dtype=np.float32)
        return length_closeness(counts, targets)

    def __repr__(self) -> str:
        return "InstructedLength()"
