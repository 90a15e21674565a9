"""How far labelers agree: with each other on comparisons labeled more than once, and with the
gold score (and the simulated labeler over it) where the task has one.

Only answers count: a skip says nothing about the comparison, so it is left out; a tie is an
answer, a third category next to ``a`` and ``b``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats.contingency import crosstab

from rlhf_gym.preferences.pair import Comparison
from rlhf_gym.preferences.simulated import SimulatedLabeler, preference_probability

ANSWERS = ("a", "b", "tie")


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' answers to the same items: (p_o - p_e) / (1 - p_e), with
    p_e the agreement expected by chance from each rater's own answer frequencies.

    None when it is undefined (no items, or both raters always gave one and the same answer).
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} answers of the first rater but {len(second)} of the second")
    if not first:
        return None
    levels = sorted(set(first) | set(second))
    _, table = crosstab(list(first), list(second), levels=(levels, levels))  # (K, K) counts
    n = table.sum()
    observed = np.trace(table) / n
    chance = table.sum(axis=1) @ table.sum(axis=0) / n**2
    return None if chance == 1 else float((observed - chance) / (1 - chance))


@dataclass(frozen=True)
class Agreement:
    """Agreement of labels given to the same comparisons."""

    comparisons: int
    """Comparisons with at least two answers."""
    label_pairs: int
    """Pairs of answers to the same comparison (a comparison with k answers has k(k-1)/2)."""
    agreement: float | None
    """Share of those pairs that agree; None without pairs."""
    kappa: float | None
    """Cohen's kappa of those pairs with each pair counted both ways round: which labeler is
    "first" means nothing, so chance agreement comes from the pooled answer frequencies (for
    two answers a comparison, Scott's pi). None when undefined."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def labeler_agreement(labels: Mapping[str, Mapping[str, str]]) -> Agreement:
    """Agreement between labelers, from :meth:`PreferenceStore.labels` (``{id: {labeler:
    choice}}``)."""
    first: list[str] = []
    second: list[str] = []
    comparisons = 0
    for by_labeler in labels.values():
        answers = [choice for choice in by_labeler.values() if choice in ANSWERS]
        comparisons += len(answers) >= 2
        for x, y in combinations(answers, 2):
            first.append(x)
            second.append(y)
    agree = sum(x == y for x, y in zip(first, second, strict=True))
    return Agreement(
        comparisons=comparisons,
        label_pairs=len(first),
        agreement=agree / len(first) if first else None,
        kappa=cohen_kappa(first + second, second + first),
    )


def agreement_by_labeler_pair(
    labels: Mapping[str, Mapping[str, str]],
) -> dict[tuple[str, str], Agreement]:
    """For each two labelers who answered the same comparisons, their agreement on those, with
    Cohen's kappa proper (each labeler's own answer frequencies): a labeler who disagrees with
    everyone stands out."""
    answers: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for by_labeler in labels.values():
        answered = sorted((name, c) for name, c in by_labeler.items() if c in ANSWERS)
        for (one, x), (other, y) in combinations(answered, 2):
            lists = answers.setdefault((one, other), ([], []))
            lists[0].append(x)
            lists[1].append(y)
    return {
        names: Agreement(
            comparisons=len(xs),
            label_pairs=len(xs),
            agreement=float(np.mean([x == y for x, y in zip(xs, ys, strict=True)])),
            kappa=cohen_kappa(xs, ys),
        )
        for names, (xs, ys) in answers.items()
    }


@dataclass(frozen=True)
class GoldAgreement:
    """How a person's ``a``/``b`` answers compare with the gold score and the simulated labeler,
    on the comparisons whose gold scores differ (on a gold tie the gold prefers neither)."""

    labels: int
    """Answers ``a`` or ``b`` on comparisons without a gold tie."""
    human_gold: float | None
    """Share of them that picked the response with the higher gold score."""
    simulated_gold: float | None
    """The simulated labeler's expected share on the same comparisons: the bar for a careful
    labeler at its temperature."""
    human_simulated: float | None
    """Expected share of them on which the simulated labeler gives the same answer."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gold_agreement(
    labels: Mapping[str, Mapping[str, str]],
    comparisons: Mapping[str, Comparison],
    simulated: SimulatedLabeler,
) -> dict[str, GoldAgreement]:
    """For each labeler (and ``"all"`` of them), their agreement with ``simulated``'s gold score
    and with the simulated labeler itself, from ``{id: {labeler: choice}}``."""
    ids = [cid for cid in labels if cid in comparisons]
    gold_a, gold_b = simulated.gold_scores([comparisons[cid] for cid in ids]) if ids else ([], [])
    p_a = dict(zip(ids, preference_probability(gold_a, gold_b, simulated.temperature), strict=True))
    higher = dict(zip(ids, np.sign(np.asarray(gold_a) - np.asarray(gold_b)), strict=True))
    answers: dict[str, list[tuple[str, str]]] = {"all": []}
    for cid in ids:
        for name, choice in labels[cid].items():
            if choice in ("a", "b") and higher[cid] != 0:
                answers.setdefault(name, []).append((cid, choice))
                answers["all"].append((cid, choice))
    return {name: _gold_agreement(given, p_a, higher) for name, given in answers.items()}


def _gold_agreement(
    given: list[tuple[str, str]], p_a: Mapping[str, float], higher: Mapping[str, float]
) -> GoldAgreement:
    """``given`` (id, answer) pairs against the gold sign and the simulated P(a) of each id."""
    if not given:
        return GoldAgreement(0, None, None, None)
    human_gold = [(choice == "a") == (higher[cid] > 0) for cid, choice in given]
    simulated_gold = [p_a[cid] if higher[cid] > 0 else 1 - p_a[cid] for cid, _ in given]
    human_simulated = [p_a[cid] if choice == "a" else 1 - p_a[cid] for cid, choice in given]
    return GoldAgreement(
        labels=len(given),
        human_gold=float(np.mean(human_gold)),
        simulated_gold=float(np.mean(simulated_gold)),
        human_simulated=float(np.mean(human_simulated)),
    )
