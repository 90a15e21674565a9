"""benchmarks/split_gold.py: gold on a task's train and test splits, every policy alike."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import split_gold as bench

from rlhf_gym.tasks import get_task


def test_a_policy_identical_to_the_reference_scores_as_it_does_on_both_splits(
    tiny_model, tiny_tokenizer
):
    task = get_task("arithmetic")
    results = bench.split_gold(
        task, tiny_model, tiny_tokenizer, {"copy": tiny_model},
        samples_per_prompt=2, max_new_tokens=3, seed=7, limit=3,
    )  # fmt: skip
    assert set(results) == {"train", "test"}
    for by_policy in results.values():
        reference, copy = by_policy["reference"], by_policy["copy"]
        assert copy == reference  # same samples: same seed, same stream, same model
        assert reference["kl"] == pytest.approx(0.0, abs=1e-6)
        assert (reference["prompts"], reference["samples"]) == (3, 6)
        assert 0.0 <= reference["gold"] <= 1.0 and reference["gold_standard_error"] >= 0.0


def test_the_splits_are_the_tasks_own():
    task = get_task("arithmetic")
    assert bench.SPLITS == ("train", "test")
    assert not set(task.prompts("train")) & set(task.prompts("test"))


def test_each_split_is_scored_on_its_own_prompts_for_every_policy(monkeypatch):
    task, seen = get_task("arithmetic"), []

    def evaluate(policy, reference, tokenizer, prompts, gold, proxy, **options):
        seen.append((policy, reference, list(prompts), options["seed"]))
        figures = {"gold": 0.5, "gold_std": 0.5, "kl": 0.0, "num_samples": 2 * len(prompts)}
        return SimpleNamespace(as_dict=lambda: figures), []

    monkeypatch.setattr(bench, "evaluate_policy", evaluate)
    bench.split_gold(
        task, "ref", None, {"a": "policy-a"}, samples_per_prompt=2, max_new_tokens=3, seed=7,
        limit=4,
    )  # fmt: skip
    expected = [
        (policy, "ref", task.prompts(split)[:4], 7)
        for split in ("train", "test")
        for policy in ("ref", "policy-a")
    ]
    assert seen == expected  # one seed and the reference for all; each split its own prompts


def test_the_table_has_a_row_per_policy_with_both_splits():
    cell = {"gold": 0.27, "gold_standard_error": 0.022, "kl": 0.0, "prompts": 202, "samples": 404}
    results = {s: {"reference": cell, "grpo": cell | {"kl": 1.61}} for s in bench.SPLITS}
    lines = bench.table(results).splitlines()
    assert lines[2] == "| reference | 0.270 ± 0.022 | 0.00 | 0.270 ± 0.022 | 0.00 |"
    assert lines[3].startswith("| grpo | 0.270 ± 0.022 | 1.61 |")


@pytest.mark.parametrize("text", ["grpo", "=path", "grpo="])
def test_a_policy_without_name_and_path_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=PATH"):
        bench.parse_policy(text)
