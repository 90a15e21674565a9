"""Guess the number: a multi-turn dialogue in which the user thinks of a whole number from 1 to
20 and answers each guess with "Higher." or "Lower." until the assistant finds it.

The env is the dialogue env (``rlhf_gym/GuessNumber-v0``, :class:`rlhf_gym.envs.DialogueEnv`):
the user opens with one of five phrasings of the rules (``guess_number_prompts.txt``; the fifth
is the held-out ``test`` opening), the simulator ``"guess-number"``
(:mod:`rlhf_gym.dialogue.guess_number`) draws the secret from the split's numbers with the env's
``np_random`` (train: 1 .. 20 but 3, 8, 14, 19; test: 3, 8, 14, 19) and reads the first whole
number of each turn as the guess. A right guess ends the conversation with the user's last
word ``"Correct! The number was 7."``; six guesses end it otherwise (``truncated=True``).

Gold score (``"guess-number"``): ``1 - (turns - 1) / 6`` when the number is found on the
assistant's turn ``turns`` (1.0 at the first guess, 1/6 at the sixth), else 0. The range is
small so that a 135M model has a chance: binary search finds any number in at most five guesses.

Budgets: 8 tokens a turn (a number, or a short sentence with one), openings of at most 80
tokens and user turns of at most 32 (enough for the tiny preset's 1024-token BPE and for
SmolLM2's chat template), so observations hold ``80 + 6 * (8 + 32) = 320`` tokens. No SFT
demonstrations are shipped.
"""

from __future__ import annotations

from rlhf_gym.tasks.base import Task

TASK = Task(
    name="guess_number",
    env_name="GuessNumber",
    version=0,
    description="Find the user's secret number from 1 to 20 from higher/lower answers.",
    prompts_resource="guess_number_prompts.txt",
    gold_reward="guess-number",
    default_reward="guess-number",
    max_new_tokens=8,
    max_prompt_tokens=80,
    user_simulator="guess-number",
    max_turns=6,
    max_user_tokens=32,
)
