"""Preference data: pairs, their I/O, collection from a policy, simulated labels, a shared store,
its labeling web page and the labelers' agreement."""

from typing import TYPE_CHECKING

from rlhf_gym.lazy import lazy_exports

if TYPE_CHECKING:
    from rlhf_gym.models.sampling import sample_completions
    from rlhf_gym.preferences.agreement import (
        Agreement,
        GoldAgreement,
        agreement_by_labeler_pair,
        cohen_kappa,
        gold_agreement,
        labeler_agreement,
    )
    from rlhf_gym.preferences.collection import pair_up
    from rlhf_gym.preferences.io import (
        atomic_write_text,
        from_dataset,
        load_preferences,
        read_jsonl,
        to_dataset,
        write_jsonl,
    )
    from rlhf_gym.preferences.pair import COLUMNS, Comparison, PreferencePair
    from rlhf_gym.preferences.simulated import (
        BayesBound,
        SimulatedLabeler,
        bayes_bound,
        bayes_optimal_accuracy,
        preference_probability,
    )
    from rlhf_gym.preferences.store import PreferenceStore, comparison_id
    from rlhf_gym.preferences.web import build_labeling_app

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Comparison": "rlhf_gym.preferences.pair",
        "pair_up": "rlhf_gym.preferences.collection",
        "sample_completions": "rlhf_gym.models.sampling",
        "atomic_write_text": "rlhf_gym.preferences.io",
        "from_dataset": "rlhf_gym.preferences.io",
        "load_preferences": "rlhf_gym.preferences.io",
        "read_jsonl": "rlhf_gym.preferences.io",
        "to_dataset": "rlhf_gym.preferences.io",
        "write_jsonl": "rlhf_gym.preferences.io",
        "COLUMNS": "rlhf_gym.preferences.pair",
        "PreferencePair": "rlhf_gym.preferences.pair",
        "BayesBound": "rlhf_gym.preferences.simulated",
        "SimulatedLabeler": "rlhf_gym.preferences.simulated",
        "bayes_bound": "rlhf_gym.preferences.simulated",
        "bayes_optimal_accuracy": "rlhf_gym.preferences.simulated",
        "preference_probability": "rlhf_gym.preferences.simulated",
        "PreferenceStore": "rlhf_gym.preferences.store",
        "comparison_id": "rlhf_gym.preferences.store",
        "Agreement": "rlhf_gym.preferences.agreement",
        "GoldAgreement": "rlhf_gym.preferences.agreement",
        "agreement_by_labeler_pair": "rlhf_gym.preferences.agreement",
        "cohen_kappa": "rlhf_gym.preferences.agreement",
        "gold_agreement": "rlhf_gym.preferences.agreement",
        "labeler_agreement": "rlhf_gym.preferences.agreement",
        "build_labeling_app": "rlhf_gym.preferences.web",
    },
)

__all__ = [
    "COLUMNS",
    "Agreement",
    "BayesBound",
    "Comparison",
    "GoldAgreement",
    "PreferencePair",
    "PreferenceStore",
    "SimulatedLabeler",
    "agreement_by_labeler_pair",
    "atomic_write_text",
    "bayes_bound",
    "bayes_optimal_accuracy",
    "build_labeling_app",
    "cohen_kappa",
    "comparison_id",
    "from_dataset",
    "gold_agreement",
    "labeler_agreement",
    "load_preferences",
    "pair_up",
    "preference_probability",
    "read_jsonl",
    "sample_completions",
    "to_dataset",
    "write_jsonl",
]
