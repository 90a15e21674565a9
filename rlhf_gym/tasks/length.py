"""Length: describe a scene in exactly the number of words the prompt asks for.

Each prompt names a target between 5 and 20 words and one of twelve everyday subjects, in one of
four phrasings: ``"In exactly 12 words, describe a rainy morning."``, ``"Describe a quiet
library in exactly 7 words."``, ``"Write exactly 15 words about a busy train station."``,
``"Using exactly 9 words, tell me about an old lighthouse."``. Prompt ``i`` (from 0) targets
``5 + i % 16`` words: sixteen targets and a held-out split of every fifth prompt share no
factor, so both splits hold every target. Subjects and phrasings are drawn at random.

Gold score (``"instructed-length"``, :class:`rlhf_gym.rewards.InstructedLength`):
``max(0, 1 - |words - target| / target)``: 1 exactly on target, falling linearly to 0 at an
empty completion or at twice the target. ``target`` is the first number followed by ``word``
or ``words`` in the prompt (digits, or ``one`` .. ``twenty`` spelled out). ``words`` are the
completion's whitespace-separated tokens holding at least one letter or digit, so ``"rainy,"``
and ``"don't"`` count once and padding with punctuation (``"-"``, ``"..."``) counts nothing.

Demonstrations describe the subject of each training prompt in exactly the target number of
words, twice, as two different selections (kept in story order) of the subject's six short
sentences of 2 to 7 words. The shipped files are written from the generators by
``python -c "from rlhf_gym.tasks import length; length.write_data()"``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from rlhf_gym.tasks.base import Task, write_task_data

PROMPTS_SEED = 1205
DEMONSTRATIONS_SEED = 2012
TARGETS = tuple(range(5, 21))
PROMPTS_PER_TARGET = 16
DEMONSTRATIONS_PER_PROMPT = 2

PHRASINGS = (
    "In exactly {target} words, describe {subject}.",
    "Describe {subject} in exactly {target} words.",
    "Write exactly {target} words about {subject}.",
    "Using exactly {target} words, tell me about {subject}.",
)

SENTENCES: dict[str, tuple[str, ...]] = {
    "a rainy morning": (
        "Grey clouds hang low.",
        "Rain falls.",
        "Puddles fill streets.",
        "Umbrellas bob along the pavement.",
        "The windows fog with cold breath.",
        "Hot coffee steams while the gutters overflow.",
    ),
    "a busy train station": (
        "Travellers rush past kiosks.",
        "Announcements echo overhead.",
        "Trains arrive.",
        "Suitcases rattle across the tiled floor.",
        "A conductor blows his whistle.",
        "Someone waves goodbye as the doors close.",
    ),
    "a quiet library": (
        "Nobody speaks.",
        "Pages rustle softly.",
        "Dust drifts through sunbeams.",
        "Students bend over thick books.",
        "A clock ticks above the desk.",
        "The librarian stamps returns with a smile.",
    ),
    "a summer picnic": (
        "The sun shines.",
        "A checked blanket covers the grass.",
        "Lemonade sparkles.",
        "We share sandwiches under a shady oak.",
        "Ants march toward crumbs.",
        "Children chase a red kite.",
    ),
    "a snowy mountain": (
        "Snow blankets the peak.",
        "Wind howls.",
        "Pine trees bend.",
        "Climbers trudge up the ridge.",
        "Their boots crunch on frozen crust.",
        "Far below, the village lights flicker warmly.",
    ),
    "a crowded market": (
        "Vendors shout prices.",
        "Spices scent the air.",
        "Baskets overflow with ripe fruit.",
        "Coins clink.",
        "Shoppers squeeze between the narrow stalls.",
        "A street musician plays for spare change.",
    ),
    "an old lighthouse": (
        "The tower stands alone.",
        "Waves crash.",
        "Paint peels away.",
        "Gulls circle the rusty railing.",
        "Its lamp sweeps the dark sea.",
        "Sailors still trust its steady golden beam.",
    ),
    "a thunderstorm at night": (
        "Lightning flashes.",
        "Thunder shakes the house.",
        "Heavy rain drums.",
        "The power flickers and dies.",
        "We light candles in the kitchen.",
        "By dawn the sky is washed clean.",
    ),
    "a small bakery": (
        "The baker rises before dawn.",
        "Ovens hum.",
        "Flour dusts everything.",
        "Bread cools on racks.",
        "Warm cinnamon rolls fill the window.",
        "Neighbours queue outside for the first loaves.",
    ),
    "a football match": (
        "Drums beat in unison.",
        "The whistle blows.",
        "Players sprint down the wing.",
        "The ball curls past the keeper.",
        "Fans cheer.",
        "The crowd sings until the final whistle.",
    ),
    "a forest walk": (
        "Leaves crunch.",
        "Birds call overhead.",
        "Sunlight filters through branches.",
        "Soft moss covers every fallen log.",
        "A stream trickles over stones.",
        "We pause to watch a deer drink.",
    ),
    "a city at dawn": (
        "Streetlights fade.",
        "The sky turns pink.",
        "Delivery vans rumble.",
        "Joggers pass the empty cafes.",
        "Pigeons gather on the station roof.",
        "Slowly the first commuters fill the streets.",
    ),
}
"""Each subject's sentences in story order; their lengths (2 to 7 words) can add up to every
target."""

SUBJECTS = tuple(SENTENCES)


def generate_requests() -> list[tuple[int, str, str]]:
    """``(target, subject, prompt)`` of every prompt, distinct prompts, targets taking turns
    (prompt ``i`` targets ``5 + i % 16`` words)."""
    rng = np.random.default_rng(PROMPTS_SEED)
    requests: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    while len(requests) < PROMPTS_PER_TARGET * len(TARGETS):
        target = TARGETS[len(requests) % len(TARGETS)]
        subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        prompt = PHRASINGS[int(rng.integers(len(PHRASINGS)))].format(target=target, subject=subject)
        if prompt not in seen:
            seen.add(prompt)
            requests.append((target, subject, prompt))
    return requests


def generate_prompts() -> list[str]:
    """The prompts of :func:`generate_requests`, in order."""
    return [prompt for _, _, prompt in generate_requests()]


def descriptions(subject: str, target: int) -> list[str]:
    """Every description of ``subject`` made of its sentences (in story order) that has exactly
    ``target`` words."""
    sentences = SENTENCES[subject]
    return [
        " ".join(chosen)
        for size in range(1, len(sentences) + 1)
        for chosen in combinations(sentences, size)
        if sum(len(sentence.split()) for sentence in chosen) == target
    ]


def generate_demonstrations() -> list[dict[str, str]]:
    """Two different exact-length descriptions for every training prompt."""
    rng = np.random.default_rng(DEMONSTRATIONS_SEED)
    records = []
    for index, (target, subject, prompt) in enumerate(generate_requests()):
        if TASK.split_of(index) != "train":
            continue
        candidates = descriptions(subject, target)
        for choice in rng.choice(len(candidates), DEMONSTRATIONS_PER_PROMPT, replace=False):
            records.append({"prompt": prompt, "completion": " " + candidates[choice]})
    return records


TASK = Task(
    name="length",
    env_name="Length",
    version=0,
    description="Describe a scene in exactly the number of words the prompt asks for.",
    prompts_resource="length_prompts.txt",
    gold_reward="instructed-length",
    default_reward="instructed-length",
    max_new_tokens=40,
    max_prompt_tokens=32,
)


def write_data() -> None:
    """Write the shipped prompts and demonstrations from the generators."""
    write_task_data(TASK, generate_prompts(), generate_demonstrations())
