"""Gold scorers of the writing tasks: ConceptCoverage, Readability and their shared parts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.rewards import ConceptCoverage, Readability, make_reward_predictor
from rlhf_gym.rewards.writing import parse_concepts, repetition_penalty, words_of

PROMPT = "Write a sentence with: dog, frisbee, park."


@pytest.fixture(scope="module")
def concepts() -> ConceptCoverage:
    return ConceptCoverage()


@pytest.fixture(scope="module")
def readability() -> Readability:
    return Readability()


def test_words_are_lowercased_letter_and_digit_runs():
    assert words_of("The dog's 2 Frisbees!") == ["the", "dog", "s", "2", "frisbees"]


def test_repetition_penalty_by_hand():
    assert repetition_penalty([]) == 1.0
    assert repetition_penalty(["a", "a"]) == 1.0  # one bigram cannot repeat
    looping = ["the", "dog", "saw", "the", "dog"]  # "the dog" repeats: 1 of 4 bigrams
    assert repetition_penalty(looping, 0.25) == 1.0
    assert repetition_penalty(looping, 0.2) == pytest.approx(0.75 / 0.8)
    # "a" five times: 4 bigrams, 1 distinct, so 3/4 repeat: (1 - 0.75) / (1 - 0.1)
    assert repetition_penalty(["a"] * 5) == pytest.approx(0.25 / 0.9)


def test_parse_concepts():
    assert parse_concepts(PROMPT) == ("dog", "frisbee", "park")
    assert parse_concepts("Use these words in a sentence: Catch , dog,park") == (
        "catch",
        "dog",
        "park",
    )
    for bad in ("Write a sentence about dogs.", "Write: dog.", "Words: hot dog, park."):
        with pytest.raises(ValueError, match="cannot read concepts from prompt"):
            parse_concepts(bad)


def test_concept_coverage_by_hand(concepts):
    completions = [
        " The dog caught a frisbee in the park.",  # all three, 5 other words
        "dog frisbee park",  # a bare list: fluency (1 + 0) / (1 + 4)
        "dog dog dog frisbee frisbee park park park",  # 7 bigrams, 2 repeats
        " The dog ran across the big park.",  # 2 of 3, fluent
        "",
    ]
    scores = concepts([PROMPT] * 5, completions)
    assert scores.dtype == np.float32 and scores.shape == (5,)
    expected = [1.0, 0.2, 0.2 * (1 - 2 / 7) / 0.9, 2 / 3, 0.0]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores[0] > scores[1] > scores[2] > scores[4]


def test_any_inflection_counts(concepts):
    prompt = "Write a sentence with: child, catch, run, mouse."
    completion = "Two children were running, and they caught three mice."
    assert concepts([prompt], [completion])[0] == 1.0
    # a word outside lemminflect's dictionary still counts in its regular plural
    assert concepts([PROMPT], ["The dogs chased the frisbees around two parks."])[0] == 1.0
    # a concept inside a longer word does not count
    assert concepts([PROMPT], ["The doghouse stood near the parkway all day."])[0] == 0.0


def test_a_mention_in_the_prompt_does_not_count(concepts):
    assert concepts([PROMPT], ["It was a sunny and warm day."])[0] == 0.0


@settings(max_examples=40, deadline=None)
@given(
    st.permutations(["dog", "frisbee", "park", "catch"]),
    st.sampled_from(
        [
            "The dog caught the frisbee in the park.",
            "dog frisbee park",
            "Dogs catch things.",
            "A frisbee flew over the park park park park.",
        ]
    ),
)
def test_concept_order_in_the_prompt_does_not_matter(concepts, order, completion):
    reordered = f"Write a sentence with: {', '.join(order)}."
    original = "Write a sentence with: dog, frisbee, park, catch."
    assert concepts([reordered], [completion])[0] == concepts([original], [completion])[0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=6))
def test_scores_stay_in_their_ranges(concepts, readability, texts):
    coverage = concepts([PROMPT] * len(texts), texts)
    ease = readability([""] * len(texts), texts)
    assert np.all((coverage >= 0) & (coverage <= 1))
    assert np.all((ease >= -1) & (ease <= 1))


def test_reading_ease_by_hand(readability):
    # 10 words, 16 syllables (my 1, bro-ther 2, reads 1, his-to-ry 3, books 1, af-ter 2,
    # din-ner 2, in 1, the 1, gar-den 2), 1 sentence
    text = "My brother reads history books after dinner in the garden."
    ease = 206.835 - 1.015 * 10 - 84.6 * 16 / 10
    assert readability.reading_ease(text) == pytest.approx(ease)
    assert readability([""], [text])[0] == pytest.approx(2 * ease / 100 - 1, abs=1e-6)
    # 6 words, 2 sentences, 6 syllables: above 100, clipped to the top score... were it long
    assert readability.reading_ease("The cat sat. The dog ran.") == pytest.approx(
        206.835 - 1.015 * 3 - 84.6
    )


def test_short_and_looping_replies_cannot_win(readability):
    simple = " The sky looks blue because air bounces blue light around more than red light."
    scores = readability(["p"] * 4, [simple, "Yes.", "", " a" * 16])
    assert scores[0] == 1.0
    assert scores[1] == pytest.approx(-1 + 2 / 8)  # ease 121 clips to 100; 1 word of 8
    assert scores[2] == -1.0
    # 15 bigrams, 1 distinct: repetition (1/15) / 0.9
    assert scores[3] == pytest.approx(-1 + 2 * (1 / 15) / 0.9)


def test_plain_beats_jargon(readability):
    plain = " The sky looks blue because air bounces blue light around more than red light."
    jargon = (
        " Atmospheric Rayleigh scattering preferentially redistributes shorter electromagnetic"
        " wavelengths throughout the troposphere."
    )
    plain_score, jargon_score = readability(["p", "p"], [plain, jargon])
    assert plain_score - jargon_score > 1.0


def test_the_prompt_is_not_scored(readability):
    completion = ["A bike has two wheels. You push the pedals and it rolls on."]
    hard = "Elucidate the thermodynamic characteristics of internal combustion engines."
    np.testing.assert_array_equal(readability([hard], completion), readability(["Hi."], completion))


@pytest.mark.parametrize(
    ("name", "cls", "text"),
    [
        ("concepts", ConceptCoverage, "ConceptCoverage(min_other_words=4, max_repeated_share=0.1)"),
        ("readability", Readability, "Readability(min_words=8, max_repeated_share=0.1)"),
    ],
)
def test_found_by_name_with_a_repr(name, cls, text):
    predictor = make_reward_predictor(name)
    assert isinstance(predictor, cls) and repr(predictor) == text
    assert predictor([], []).shape == (0,)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        predictor([PROMPT, PROMPT], ["c"])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="min_other_words must be a positive number"):
        ConceptCoverage(min_other_words=0)
    with pytest.raises(ValueError, match=r"max_repeated_share must be a share in \[0, 1\)"):
        Readability(max_repeated_share=1.0)
    with pytest.raises(ValueError, match="min_words must be a positive number"):
        Readability(min_words=0)


def test_the_language_libraries_load_only_when_scoring():
    code = (
        "import sys, rlhf_gym, rlhf_gym.rewards.writing as w; "
        "w.ConceptCoverage(); w.Readability(); "
        "print(sorted(m for m in ('lemminflect', 'pyphen') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
