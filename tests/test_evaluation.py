import copy
import itertools

import numpy as np
import pytest
import torch

from rlhf_gym.evaluation import (
    best_of_n,
    best_of_n_kl,
    best_of_n_rows,
    distinct_n,
    evaluate_policy,
    n_matching_kl,
)


def word_count(prompts, completions):
    return np.array([len(c.split()) for c in completions], dtype=np.float32)


def test_distinct_n_counts_unique_ngrams():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a", ""], 2) == 0.0


@pytest.mark.parametrize("n", [1, 2, 8, 32])
def test_best_of_n_kl_is_the_limit_of_the_exact_kl_of_picking_the_best_of_n(n):
    """Over m equally likely outcomes with distinct scores, the best of n draws is the outcome
    of rank i with probability (i/m)^n - ((i-1)/m)^n; its exact KL to the base rises towards
    the formula as m grows and never passes it."""
    exact = []
    for m in (10, 100, 100_000):
        ranks = np.arange(1, m + 1)
        picked = (ranks / m) ** n - ((ranks - 1) / m) ** n
        picked = picked[picked > 0]
        exact.append(float(np.sum(picked * np.log(picked * m))))
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(exact))
    assert exact[-1] <= best_of_n_kl(n) + 1e-12
    assert exact[-1] == pytest.approx(best_of_n_kl(n), abs=1e-3)


def test_n_matching_kl_is_the_smallest_n_that_reaches_the_kl():
    assert n_matching_kl(0.0) == 1
    n = n_matching_kl(1.0)
    assert best_of_n_kl(n) >= 1.0 > best_of_n_kl(n - 1)


def test_policy_equal_to_reference_has_zero_kl(tiny_model, tiny_tokenizer):
    prompts = ["The museum tour", "My new kettle"]
    result, samples = evaluate_policy(
        tiny_model,
        tiny_model,
        tiny_tokenizer,
        prompts,
        word_count,
        word_count,
        samples_per_prompt=3,
        max_new_tokens=8,
    )
    assert result.kl == 0.0
    assert result.num_samples == len(samples) == 6
    assert result.perplexity > 1.0
    assert 0.0 < result.distinct_1 <= 1.0
    assert result.gold == result.proxy  # same scorer


def test_changed_policy_has_positive_kl(tiny_model, tiny_tokenizer):
    policy = copy.deepcopy(tiny_model)
    with torch.no_grad():
        policy.lm_head.weight.mul_(3.0)  # sharper distribution than the reference
    result, _ = evaluate_policy(
        policy,
        tiny_model,
        tiny_tokenizer,
        ["The museum tour"] * 4,
        word_count,
        word_count,
        samples_per_prompt=4,
        max_new_tokens=8,
    )
    assert result.kl > 0.0


def test_best_of_n_picks_the_proxy_best(tiny_model, tiny_tokenizer):
    prompts = ["The museum tour", "My new kettle", "The hotel lobby"]
    one, eight = best_of_n(
        tiny_model, tiny_tokenizer, prompts, word_count, word_count, [1, 8], max_new_tokens=10
    )
    assert (one["n"], eight["n"]) == (1, 8)
    assert eight["gold"] >= one["gold"]
    assert eight["proxy"] >= one["proxy"]
    with pytest.raises(ValueError, match="every n"):
        best_of_n(tiny_model, tiny_tokenizer, prompts, word_count, word_count, [0])


def test_best_of_n_rows_give_the_chosen_samples_gold_spread_over_slots():
    proxy = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])  # (S=2, N=3)
    gold = np.array([[0.0, 1.0, 0.0], [0.4, 0.0, 2.0]])
    one, three = best_of_n_rows(proxy, [1, 3], lambda best: gold[np.arange(2), best])
    # best-of-1 keeps golds 0 and 0.4, best-of-3 keeps 1 and 0.4
    assert [one[k] for k in ("gold", "gold_std", "num_samples")] == pytest.approx([0.2, 0.2, 2])
    assert [three[k] for k in ("gold", "gold_std", "num_samples")] == pytest.approx([0.7, 0.3, 2])


def test_temperature_samples_the_tempered_policy_and_keeps_untempered_perplexity(
    tiny_model, tiny_tokenizer
):
    def run(temperature):
        return evaluate_policy(
            tiny_model, tiny_model, tiny_tokenizer, ["The museum tour"] * 2, word_count,
            word_count, samples_per_prompt=4, max_new_tokens=8, temperature=temperature,
        )  # fmt: skip

    (cold, cold_samples), (hot, hot_samples) = run(1e-3), run(1.0)
    assert cold.kl == hot.kl == 0.0  # the reference is tempered like the policy
    assert len(set(cold_samples)) == 1 < len(set(hot_samples))  # greedy at T = 0.001
    # perplexity is the untempered reference's: greedy text is far likelier under it
    assert cold.perplexity < hot.perplexity
