"""Arithmetic: answer a small integer sum, difference or product; a verifiable, sparse reward.

Each prompt asks one question, ``"Q: 37 + 48 = ? A:"``, with non-negative integer operands and
``+``, ``-`` or ``*``. The questions come in six levels of difficulty:

| level | question                                          | example         |
|-------|---------------------------------------------------|-----------------|
| 1     | one-digit ``+``, ``-``, ``*`` one-digit (0 .. 9)  | ``7 * 8``       |
| 2     | two-digit ``+``/``-`` two-digit                   | ``37 - 48``     |
| 3     | two-digit ``*`` one-digit (2 .. 9)                | ``46 * 7``      |
| 4     | three-digit ``+``/``-`` three-digit               | ``512 + 389``   |
| 5     | three-digit ``*`` one-digit (2 .. 9)              | ``128 * 8``     |
| 6     | two-digit ``*`` two-digit                         | ``32 * 32``     |

Differences may be negative. Prompt ``i`` (from 0) is of level ``i % 6 + 1``: six levels and a
held-out split of every fifth prompt share no factor, so both splits hold every level.

Gold score (``"arithmetic"``, :class:`rlhf_gym.rewards.ArithmeticAnswer`): 1.0 when the
completion's answer is exactly the right integer, else 0.0. The answer is read from the first
non-blank line of the completion, after taking out any restatement of the question's equation
(``37 + 48 =``). Numbers may carry a minus sign touching the digits (``-11``), thousands commas
(``1,024``) and a decimal part (``85.0`` is 85). To resist hedging, the line must hold at least
one number and every number on it must be the right answer: ``" 85"``, ``" 85."``,
``" The answer is 85."`` and ``" 37 + 48 = 85"`` score 1; ``" 85 or 86"`` and ``" 37 48 85"``
score 0.

Demonstrations answer each training prompt twice, in two of four phrasings (``" 85"``,
``" 85."``, ``" The answer is 85."``, ``" 37 + 48 = 85."``). The shipped files are written
from the generators by ``python -c "from rlhf_gym.tasks import arithmetic as a; a.write_data()"``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_gym.tasks.base import Task, write_task_data

PROMPTS_SEED = 3748
DEMONSTRATIONS_SEED = 85
QUESTIONS_PER_LEVEL = 42
DEMONSTRATIONS_PER_PROMPT = 2

OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


@dataclass(frozen=True)
class Level:
    """Operand ranges (inclusive) and operators of one difficulty level."""

    left: tuple[int, int]
    right: tuple[int, int]
    operators: str


LEVELS: tuple[Level, ...] = (
    Level((0, 9), (0, 9), "+-*"),
    Level((10, 99), (10, 99), "+-"),
    Level((10, 99), (2, 9), "*"),
    Level((100, 999), (100, 999), "+-"),
    Level((100, 999), (2, 9), "*"),
    Level((10, 99), (10, 99), "*"),
)
"""Level ``k`` is ``LEVELS[k - 1]``."""

PHRASINGS = (" {answer}", " {answer}.", " The answer is {answer:,}.", " {equation} = {answer}.")
"""Ways a demonstration writes the answer."""


@dataclass(frozen=True)
class Question:
    """One generated question and the level it was drawn at."""

    left: int
    symbol: str
    right: int
    level: int

    @property
    def equation(self) -> str:
        return f"{self.left} {self.symbol} {self.right}"

    @property
    def prompt(self) -> str:
        return f"Q: {self.equation} = ? A:"

    @property
    def answer(self) -> int:
        return OPERATIONS[self.symbol](self.left, self.right)

    def answered(self, phrasing: str) -> str:
        """The answer written in one of ``PHRASINGS``."""
        return phrasing.format(answer=self.answer, equation=self.equation)


def _draw(rng: np.random.Generator, level: int) -> Question:
    spec = LEVELS[level - 1]
    left = int(rng.integers(spec.left[0], spec.left[1] + 1))
    symbol = spec.operators[int(rng.integers(len(spec.operators)))]
    right = int(rng.integers(spec.right[0], spec.right[1] + 1))
    return Question(left, symbol, right, level)


def generate_questions() -> list[Question]:
    """The task's distinct questions, levels taking turns (prompt ``i`` is of level
    ``i % 6 + 1``)."""
    rng = np.random.default_rng(PROMPTS_SEED)
    questions: list[Question] = []
    seen: set[str] = set()
    while len(questions) < QUESTIONS_PER_LEVEL * len(LEVELS):
        question = _draw(rng, level=len(questions) % len(LEVELS) + 1)
        if question.prompt not in seen:
            seen.add(question.prompt)
            questions.append(question)
    return questions


def generate_prompts() -> list[str]:
    """The prompts of :func:`generate_questions`, in order."""
    return [question.prompt for question in generate_questions()]


def generate_demonstrations() -> list[dict[str, str]]:
    """Right answers to the training prompts, each in two phrasings drawn from ``PHRASINGS``."""
    rng = np.random.default_rng(DEMONSTRATIONS_SEED)
    records = []
    for index, question in enumerate(generate_questions()):
        if TASK.split_of(index) != "train":
            continue
        for choice in rng.choice(len(PHRASINGS), DEMONSTRATIONS_PER_PROMPT, replace=False):
            records.append(
                {"prompt": question.prompt, "completion": question.answered(PHRASINGS[choice])}
            )
    return records


TASK = Task(
    name="arithmetic",
    env_name="Arithmetic",
    version=0,
    description="Answer a small integer sum, difference or product exactly.",
    prompts_resource="arithmetic_prompts.txt",
    gold_reward="arithmetic",
    default_reward="arithmetic",
    max_new_tokens=20,
    max_prompt_tokens=24,
)


def write_data() -> None:
    """Write the shipped prompts and demonstrations from the generators."""
    write_task_data(TASK, generate_prompts(), generate_demonstrations())
