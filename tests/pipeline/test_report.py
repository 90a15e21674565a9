"""The report's judgements: warnings a sceptical reader needs, from the metrics alone."""

from __future__ import annotations

import pytest

from rlhf_gym.pipeline.report import (
    _kl_budget_lines,
    _perplexity_warnings,
    _reward_model_lines,
    rank_correlation,
)


def _reward_model(accuracy: float, bayes: float | None) -> dict:
    bound = None
    if bayes is not None:
        bound = {"accuracy": bayes, "standard_error": 0.01, "gold_tie_share": 0.25, "pairs": 400}
    return {
        "accuracy": accuracy,
        "accuracy_standard_error": (accuracy * (1 - accuracy) / 400) ** 0.5,  # 0.024 at 0.6
        "heldout_pairs": 400,
        "heldout_prompts": 15,
        "bayes_bound": bound,
        "spearman_heldout": 0.4,
    }


def test_accuracy_above_the_bayes_bound_by_three_standard_errors_is_flagged():
    lines = _reward_model_lines(_reward_model(0.823, 0.639))
    assert "400 pairs of 15 held-out prompts" in lines[0]
    assert "0.639 ± 0.010" in lines[0] and "25% of them gold ties" in lines[0]
    assert len(lines) == 2 and "Warning" in lines[1] and "Bayes-optimal" in lines[1]


@pytest.mark.parametrize(("accuracy", "bayes"), [(0.62, 0.639), (0.66, 0.639), (0.7, None)])
def test_accuracy_within_noise_of_the_bound_or_without_one_is_not_flagged(accuracy, bayes):
    assert len(_reward_model_lines(_reward_model(accuracy, bayes))) == 1


def test_the_rank_agreement_with_gold_is_reported_only_where_measured():
    learned = _reward_model_lines(_reward_model(0.62, 0.639))[0]
    assert "Spearman correlation with gold on the held-out samples above: 0.400." in learned
    gold_mode = _reward_model(0.62, 0.639)
    del gold_mode["spearman_heldout"]  # run_metrics leaves it out when reward_source is gold
    (line,) = _reward_model_lines(gold_mode)
    assert "Spearman" not in line and line.endswith("(reward_source gold).")


def test_a_policy_with_over_three_times_the_reference_perplexity_is_flagged():
    policies = {
        "before (reference)": {"perplexity": 88.0},
        "after (dpo)": {"perplexity": 2573.0},
        "after (token-ppo)": {"perplexity": 250.0},
        "best-of-4 (reference)": {"gold": 0.3},
    }
    warnings = _perplexity_warnings(policies)
    assert len(warnings) == 1 and "after (dpo)" in warnings[0] and "88.0" in warnings[0]


def test_rank_correlation_is_undefined_on_a_constant_score():
    assert rank_correlation([1, 2, 3], [0, 0, 0]) is None
    assert rank_correlation([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486833, rel=1e-6)


def test_only_agents_the_kl_budget_stopped_get_a_line():
    agents = {"rloo": {"iterations": 12, "kl_budget_stop": 12}, "dpo": {"iterations": 40}}
    lines = _kl_budget_lines(agents, 4.5)
    assert lines == [
        "rloo stopped after iteration 12: its KL to the reference (mean of the last training "
        "batches) reached the budget of 4.5 nats."
    ]
