"""Twenty questions: a multi-turn dialogue in which the user thinks of one of twenty listed
things and answers yes/no questions until the assistant names it.

The env is the dialogue env (``rlhf_gym/TwentyQuestions-v0``,
:class:`rlhf_gym.envs.DialogueEnv`): the user opens with one of five phrasings that list the
twenty things and the topics it can answer (``twenty_questions_prompts.txt``; the fifth is the
held-out ``test`` opening). The simulator ``"twenty-questions"``
(:mod:`rlhf_gym.dialogue.twenty_questions`) draws the secret from the split's things with the
env's ``np_random`` (test: salmon, banana, spoon, airplane; train: the other sixteen), answers
questions by keywords of its twelve attributes (animal, flies, water, food, fruit, round,
metal, electric, wheels, kitchen, big, legs; a question about several is a conjunction), and
takes a turn that names one thing as a guess. The right guess ends the conversation with the
user's last word ``"Yes! It is a dog. You found it."``; ten turns end it otherwise
(``truncated=True``).

Gold score (``"twenty-questions"``): ``1 - (turns - 1) / 10`` when found on the assistant's turn
``turns``, else 0: found in at most ten questions, fewer is better (four well-chosen questions
and a guess always suffice, as no two things share all their attributes).

Budgets: 16 tokens a turn, openings of at most 224 tokens, user turns of at most 48 (enough for
the tiny preset's 1024-token BPE and for SmolLM2's chat template), so observations hold
``224 + 10 * (16 + 48) = 864`` tokens. No SFT demonstrations are shipped.
"""

from __future__ import annotations

from rlhf_gym.tasks.base import Task

TASK = Task(
    name="twenty_questions",
    env_name="TwentyQuestions",
    version=0,
    description="Find which of twenty listed things the user thinks of by yes/no questions.",
    prompts_resource="twenty_questions_prompts.txt",
    gold_reward="twenty-questions",
    default_reward="twenty-questions",
    max_new_tokens=16,
    max_prompt_tokens=224,
    user_simulator="twenty-questions",
    max_turns=10,
    max_user_tokens=48,
)
