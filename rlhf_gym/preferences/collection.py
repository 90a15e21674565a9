"""Collection: form the comparisons a labeler is asked about from K completions per prompt
(sampled with :func:`rlhf_gym.models.sampling.sample_completions`)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from rlhf_gym.preferences.pair import Comparison
from rlhf_gym.seeding import numpy_rng


def pair_up(
    prompts: Sequence[str],
    completions: Sequence[Sequence[str]],
    *,
    pairs_per_prompt: int | None = None,
    seed: int = 0,
) -> list[Comparison]:
    """Comparisons between distinct, non-blank completions of the same prompt.

    All ``k * (k - 1) / 2`` pairs by default, else ``pairs_per_prompt`` drawn without
    replacement; the display order (which one is ``a``) is random, from the ``"pairing"``
    stream of ``seed`` (independent of the labeler's, which gets the same user seed).
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completion lists")
    rng = numpy_rng(seed, "pairing")
    comparisons: list[Comparison] = []
    for prompt, group in zip(prompts, completions, strict=True):
        # Identical responses tell a labeler nothing; blank ones cannot form a valid pair.
        distinct = [text for text in dict.fromkeys(group) if text.strip()]
        candidates = list(combinations(distinct, 2))
        if pairs_per_prompt is not None and pairs_per_prompt < len(candidates):
            picked = rng.choice(len(candidates), size=pairs_per_prompt, replace=False)
            candidates = [candidates[i] for i in sorted(picked)]
        for first, second in candidates:
            a, b = (first, second) if rng.random() < 0.5 else (second, first)
            comparisons.append(Comparison(prompt, a, b))
    return comparisons
