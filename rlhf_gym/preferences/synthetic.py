"""Synthetic preference data for simulated-feedback experiments (Gao et al., 2022 style).

Completions sampled once from a policy are cached on disk; cheap perturbations then widen the
range of gold scores (a policy under RL drifts far from its samples, and a reward model must
rank that drift too): sentiment words from the VADER lexicon inserted at random word
boundaries, and completions cut short.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from rlhf_gym.preferences.collection import pair_up
from rlhf_gym.preferences.io import atomic_write_text
from rlhf_gym.preferences.pair import PreferencePair
from rlhf_gym.preferences.simulated import SimulatedLabeler, bayes_optimal_accuracy
from rlhf_gym.rewards.base import RewardSpec
from rlhf_gym.seeding import derived_seed, numpy_rng


def cached_completions(
    model: str,
    prompts: Sequence[str],
    k: int,
    *,
    seed: int = 0,
    max_new_tokens: int = 24,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
) -> list[list[str]]:
    """``k`` samples per prompt from ``model``, generated once and cached as JSON.

    The cache key covers everything that changes the samples (batch size included: sampling
    draws from one RNG stream across batches), the seed as the sampling stream's own (so a
    cache written before the streams were named is never mistaken for today's samples).
    Default directory: ``rlhf_gym`` cache root.
    """
    from rlhf_gym.models.smollm2 import cache_root

    stream = {"sampling_seed": derived_seed(seed, "sampling")}
    settings = [model, list(prompts), k, stream, max_new_tokens, batch_size]
    key = hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:12]
    path = Path(cache_dir or cache_root() / "completions") / f"{model.replace('/', '_')}-{key}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["completions"]
    groups = _sample(model, prompts, k, seed, max_new_tokens, batch_size)
    atomic_write_text(path, json.dumps({"settings": settings, "completions": groups}))
    return groups


def _sample(model_name, prompts, k, seed, max_new_tokens, batch_size) -> list[list[str]]:
    from rlhf_gym.models import load_model_and_tokenizer
    from rlhf_gym.models.sampling import sample_completions

    model, tokenizer = load_model_and_tokenizer(model_name)
    return sample_completions(
        model,
        tokenizer,
        prompts,
        k,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )


@cache
def sentiment_words(min_valence: float = 1.5) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Common sentiment words: VADER-lexicon words with mean valence >= +min / <= -min that
    occur in the project's review corpus (``rlhf_gym/models/data/tiny_corpus.txt``).

    Restricting to everyday review words matters: a word inserted once in thousands of texts
    teaches a reward model nothing, and a policy rarely writes "abhorrent".
    """
    from importlib.resources import files

    corpus = files("rlhf_gym.models").joinpath("data", "tiny_corpus.txt").read_text("utf-8")
    common = set(corpus.lower().replace(",", " ").replace(".", " ").split())
    lexicon = files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    positive, negative = [], []
    for line in lexicon.splitlines():
        word, valence = line.split("\t")[:2]
        if word in common:
            if float(valence) >= min_valence:
                positive.append(word)
            elif float(valence) <= -min_valence:
                negative.append(word)
    return tuple(positive), tuple(negative)


def insert_words(text: str, words: Sequence[str], rng: np.random.Generator) -> str:
    """``text`` with each of ``words`` inserted at a random word boundary."""
    tokens = text.split(" ")
    for word in words:
        tokens.insert(int(rng.integers(1, len(tokens) + 1)), word)
    return " ".join(tokens)


def perturb(text: str, rng: np.random.Generator, max_words: int = 2) -> list[str]:
    """Three variants of a completion: more positive, more negative, and cut short."""
    positive, negative = sentiment_words()
    variants = []
    for pool in (positive, negative):
        n = int(rng.integers(1, max_words + 1))
        variants.append(insert_words(text, list(rng.choice(pool, size=n)), rng))
    words = text.split(" ")
    variants.append(" ".join(words[: max(1, len(words) // 2)]))
    return variants


def augment_groups(
    groups: Sequence[Sequence[str]], seed: int = 0, max_words: int = 2
) -> list[list[str]]:
    """Each group with every completion followed by its :func:`perturb` variants."""
    rng = numpy_rng(seed, "augmentation")
    return [
        [v for text in group for v in (text, *perturb(text, rng, max_words))] for group in groups
    ]


def corpus_completions(prompts: Sequence[str], k: int, seed: int = 0) -> list[list[str]]:
    """``k`` review sentences per prompt from the project's corpus, their first two words cut so
    that they read as continuations: real text with strong sentiment, no model needed."""
    from importlib.resources import files

    text = files("rlhf_gym.models").joinpath("data", "tiny_corpus.txt").read_text("utf-8")
    lines = [line.split(" ", 2)[-1] for line in text.splitlines() if line.count(" ") >= 3]
    rng = numpy_rng(seed, "corpus-sentences")
    return [[" " + lines[i] for i in rng.choice(len(lines), size=k)] for _ in prompts]


REAL_TEXT_SOURCES = ("smollm2-135m", "corpus")


def sentiment_groups(
    prompts: Sequence[str],
    real_k: int = 8,
    soup_k: int = 4,
    seed: int = 0,
    source: str = "smollm2-135m",
) -> list[list[str]]:
    """Per prompt: ``real_k`` real-text completions, each followed by its perturbations, then
    ``soup_k`` samples of the untrained tiny preset (token soup, what a fresh tiny policy writes).

    ``source`` of the real text: ``"smollm2-135m"`` samples (generated once, cached) or
    ``"corpus"`` sentences (:func:`corpus_completions`).
    """
    if source not in REAL_TEXT_SOURCES:
        raise ValueError(f"source must be one of {REAL_TEXT_SOURCES}, got {source!r}")
    if source == "corpus":
        real = corpus_completions(prompts, real_k, seed)
    else:
        real = cached_completions(source, prompts, real_k, seed=seed)
    soup = cached_completions("tiny", prompts, soup_k, seed=seed) if soup_k else [[]] * len(prompts)
    return [a + s for a, s in zip(augment_groups(real, seed=seed), soup, strict=True)]


def simulated_pairs(
    prompts: Sequence[str],
    groups: Sequence[Sequence[str]],
    gold: RewardSpec,
    temperature: float,
    *,
    pairs_per_prompt: int | None = None,
    seed: int = 0,
) -> tuple[list[PreferencePair], float]:
    """Pairs within each prompt's group labeled by a :class:`SimulatedLabeler`, and the
    Bayes-optimal accuracy that their noise allows."""
    comparisons = pair_up(prompts, groups, pairs_per_prompt=pairs_per_prompt, seed=seed)
    labeler = SimulatedLabeler(gold, temperature=temperature, seed=seed)
    gold_a, gold_b = labeler.gold_scores(comparisons)
    return labeler.label(comparisons), bayes_optimal_accuracy(gold_a, gold_b, temperature)
