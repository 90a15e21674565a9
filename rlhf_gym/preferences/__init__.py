"""Preference data: pairs, their I/O, collection from a policy, simulated labels, a shared store."""

from rlhf_gym.preferences.collection import Comparison, pair_up, sample_completions
from rlhf_gym.preferences.io import (
    atomic_write_text,
    from_dataset,
    load_preferences,
    read_jsonl,
    to_dataset,
    write_jsonl,
)
from rlhf_gym.preferences.pair import COLUMNS, PreferencePair
from rlhf_gym.preferences.simulated import (
    BayesBound,
    SimulatedLabeler,
    bayes_bound,
    bayes_optimal_accuracy,
    preference_probability,
)
from rlhf_gym.preferences.store import PreferenceStore, comparison_id

__all__ = [
    "COLUMNS",
    "BayesBound",
    "Comparison",
    "PreferencePair",
    "PreferenceStore",
    "SimulatedLabeler",
    "atomic_write_text",
    "bayes_bound",
    "bayes_optimal_accuracy",
    "comparison_id",
    "from_dataset",
    "load_preferences",
    "pair_up",
    "preference_probability",
    "read_jsonl",
    "sample_completions",
    "to_dataset",
    "write_jsonl",
]
