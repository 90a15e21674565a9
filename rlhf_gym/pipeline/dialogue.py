"""The pipeline's view of dialogue tasks: conversations played by a policy against the task's
user simulator, the preference pairs made from them, and their held-out evaluation.

A conversation is played by the agents' own batched generation (``agents.token_ppo.rollout``)
against :class:`~rlhf_gym.envs.DialogueVectorEnv`, whose reward predictor is the task's gold
scorer, so every conversation comes with its gold score and, against a reference, with the
exact log-probs of the tokens the policy wrote (user turns are read, not scored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from agents.token_ppo.rollout import Sampler, generate, response_logprobs
from rlhf_gym.dialogue import Message, preference_record, reward_texts
from rlhf_gym.envs import DialogueVectorEnv
from rlhf_gym.evaluation import PolicyEvaluation, best_of_n_rows, distinct_n, n_matching_kl
from rlhf_gym.pipeline.evaluate import MAX_BEST_OF_N, SAMPLES_IN_REPORT
from rlhf_gym.preferences.collection import pair_up
from rlhf_gym.preferences.pair import PreferencePair
from rlhf_gym.preferences.simulated import BayesBound, SimulatedLabeler, bayes_bound
from rlhf_gym.rewards import RewardPredictor, conversation_scores, make_reward_predictor
from rlhf_gym.seeding import derived_seed
from rlhf_gym.tasks import Task

if TYPE_CHECKING:
    from rlhf_gym.pipeline.outputs import RunOutputs

CHUNK = 32
"""Conversations played at once (one vector env)."""


@dataclass
class Conversations:
    """Conversations a policy played, with their gold scores and the log-probs of its turns."""

    conversations: list[list[Message]]
    gold: np.ndarray  # (N,)
    logprobs: np.ndarray  # (N,) summed over the policy's tokens, at the sampling temperature
    reference_logprobs: np.ndarray  # (N,) the same tokens under the reference, same temperature
    untempered_reference_logprobs: np.ndarray  # (N,) under the untempered reference
    token_counts: np.ndarray  # (N,) the policy's tokens (every turn's EOS included)

    @property
    def log_ratios(self) -> np.ndarray:
        """``log pi(y|x) - log pi_ref(y|x)`` of each conversation's agent tokens: their mean
        estimates the KL to the reference."""
        return self.logprobs - self.reference_logprobs


@torch.no_grad()
def play_conversations(
    policy: PreTrainedModel,
    reference: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    openings: Sequence[str],
    *,
    split: str,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    same_secret: int = 1,
) -> Conversations:
    """One conversation per entry of ``openings`` (repeat one to play it several times),
    ``policy`` against the task's user simulator with the secrets of ``split``. Without a
    ``reference`` the reference log-probs are the policy's own (log-ratios 0).

    The user's secrets come from the env seeds ``derived_seed(seed, "conversations")`` and the
    policy's tokens from a torch generator of ``seed``'s own stream, restored afterwards, so two
    policies played with one seed meet the same secrets and training's streams are untouched.
    Each run of ``same_secret`` consecutive conversations meets one secret (best-of-n's draws).
    """
    sampler, untempered = Sampler(temperature), Sampler(1.0)
    gold = make_reward_predictor(task.gold_reward)
    env_seed = derived_seed(seed, "conversations")
    parts: dict[str, list[Any]] = {name: [] for name in Conversations.__dataclass_fields__}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(seed, "conversation-sampling"))
        for first in range(0, len(openings), CHUNK):
            chunk = list(openings[first : first + CHUNK])
            env = DialogueVectorEnv(
                len(chunk), autoreset_mode=AutoresetMode.DISABLED, task=task.name,
                tokenizer=tokenizer, split=split, reward_predictor=gold,
                max_new_tokens=max_new_tokens,
            )  # fmt: skip
            seeds = [env_seed + (first + i) // same_secret for i in range(len(chunk))]
            observation, _ = env.reset(seed=seeds, options={"prompts": chunk})
            rollout = generate(policy, env, observation, sampler)
            mask = rollout.response_mask
            parts["conversations"] += rollout.conversations
            parts["gold"].append(rollout.raw_scores)
            parts["logprobs"].append((rollout.logprobs * mask).sum(1))
            for name, which in (
                ("reference_logprobs", sampler),
                ("untempered_reference_logprobs", untempered),
            ):
                if reference is None and which is sampler:
                    parts[name].append(parts["logprobs"][-1])
                    continue
                model = policy if reference is None else reference
                parts[name].append((response_logprobs(model, rollout, which) * mask).sum(1))
            parts["token_counts"].append(mask.sum(1))
    arrays = {
        name: np.concatenate([np.asarray(torch.as_tensor(p).double().cpu()) for p in values])
        for name, values in parts.items()
        if name != "conversations"
    }
    return Conversations(parts["conversations"], **arrays)


def evaluate_conversations(played: Conversations, proxy: RewardPredictor) -> dict[str, float]:
    """The evaluation of played conversations: what :class:`PolicyEvaluation` reports of
    completions (over the agent's turns: ``length`` in its tokens, distinct-n of its
    messages, the reference's perplexity of its tokens), plus ``success_rate`` (the share
    with a positive gold score: a game's gold is positive exactly when it is solved),
    ``mean_turns`` (the agent's turns per conversation) and ``mean_turns_solved`` (in the
    solved ones; 0 when none is)."""
    proxy_scores = conversation_scores(proxy, played.conversations).astype(np.float64)
    turns = np.asarray([len(c) // 2 for c in played.conversations], dtype=np.float64)
    solved = played.gold > 0
    said = [m["content"] for c in played.conversations for m in c if m["role"] == "assistant"]
    counts = played.token_counts
    result = PolicyEvaluation(
        gold=float(played.gold.mean()),
        proxy=float(proxy_scores.mean()),
        kl=float(played.log_ratios.mean()),
        gold_std=float(played.gold.std()),
        proxy_std=float(proxy_scores.std()),
        length=float(counts.mean()),
        distinct_1=distinct_n(said, 1),
        distinct_2=distinct_n(said, 2),
        perplexity=float(
            np.exp(-played.untempered_reference_logprobs.sum() / max(counts.sum(), 1))
        ),
        num_samples=len(played.conversations),
    )
    return result.as_dict() | {
        "success_rate": float(solved.mean()),
        "mean_turns": float(turns.mean()),
        "mean_turns_solved": float(turns[solved].mean()) if solved.any() else 0.0,
    }


@dataclass
class ConversationPreferences:
    """Simulated preferences between conversations of one opening, in two aligned forms."""

    pairs: list[PreferencePair]
    """Text pairs (:func:`rlhf_gym.dialogue.reward_texts`): what the reward model reads."""
    records: list[dict[str, list[Message]]]
    """The same pairs as TRL's conversational records (``prompt``/``chosen``/``rejected``
    message lists), in the same order."""
    bound: BayesBound


def label_conversations(
    groups: Sequence[Sequence[Sequence[Message]]],
    gold: Sequence[Sequence[float]],
    labeler: SimulatedLabeler,
    seed: int,
) -> ConversationPreferences:
    """Pair up the conversations within each group (one opening each, as
    :func:`~rlhf_gym.preferences.collection.pair_up` pairs completions) and label every pair by
    its gold scores with ``labeler``'s noise."""
    by_text: dict[tuple[str, str], tuple[Sequence[Message], float]] = {}
    prompts, completions = [], []
    for group, scores in zip(groups, gold, strict=True):
        texts = [reward_texts(c) for c in group]
        for (prompt, completion), conversation, score in zip(texts, group, scores, strict=True):
            by_text.setdefault((prompt, completion), (conversation, float(score)))
        prompts.append(texts[0][0])
        completions.append([completion for _, completion in texts])
    comparisons = pair_up(prompts, completions, seed=seed)
    gold_a = np.asarray([by_text[c.prompt, c.a][1] for c in comparisons], dtype=np.float32)
    gold_b = np.asarray([by_text[c.prompt, c.b][1] for c in comparisons], dtype=np.float32)
    pairs = labeler.choose(comparisons, gold_a, gold_b)
    records = [
        preference_record(by_text[p.prompt, p.chosen][0], by_text[p.prompt, p.rejected][0])
        for p in pairs
    ]
    return ConversationPreferences(pairs, records, bayes_bound(gold_a, gold_b, labeler.temperature))


def record_gold_scores(
    records: Sequence[dict[str, list[Message]]], gold: RewardPredictor
) -> tuple[np.ndarray, np.ndarray]:
    """Gold scores of the chosen and of the rejected conversation of each record."""
    chosen = [[*r["prompt"], *r["chosen"]] for r in records]
    rejected = [[*r["prompt"], *r["rejected"]] for r in records]
    return conversation_scores(gold, chosen), conversation_scores(gold, rejected)


def evaluate_dialogue_run(outputs: RunOutputs) -> dict[str, Any]:
    """The evaluation stage of a dialogue task: the reference and each agent's policy play
    ``eval_samples_per_prompt`` conversations of each held-out opening against the held-out
    secrets (the same secrets for every policy), measured by :func:`evaluate_conversations`,
    beside best-of-n from the reference (:func:`best_of_n_conversations`)."""
    c, task = outputs.config, outputs.task
    reference, tokenizer = outputs.starting_policy()
    reference.requires_grad_(False)
    gold, proxy = make_reward_predictor(task.gold_reward), outputs.reward_model()
    held_out = outputs.eval_prompts()
    openings = [o for o in held_out for _ in range(c.eval_samples_per_prompt)]
    options = {
        "split": "test",
        "max_new_tokens": c.max_new_tokens,
        "seed": derived_seed(c.seed, "evaluation"),
        "temperature": c.temperature,
    }
    played = {"before (reference)": play_conversations(
        reference, reference, tokenizer, task, openings, **options
    )}  # fmt: skip
    for name in c.agents:
        played[f"after ({name})"] = play_conversations(
            outputs.agent_policy(name), reference, tokenizer, task, openings, **options
        )
    policies = {name: evaluate_conversations(p, proxy) for name, p in played.items()}
    # best-of-n at each policy's KL and at MAX_BEST_OF_N (the bench's anchor), on about as many
    # conversations as one policy's evaluation: ceil(conversations / 16) secrets, the held-out
    # openings in turn
    ns = {min(n_matching_kl(max(p["kl"], 0.0)), MAX_BEST_OF_N) for p in policies.values()}
    slots = [held_out[i % len(held_out)] for i in range(-(-len(openings) // MAX_BEST_OF_N))]
    for baseline in best_of_n_conversations(
        reference, tokenizer, task, slots, proxy, sorted(ns | {MAX_BEST_OF_N}),
        max_new_tokens=c.max_new_tokens, seed=derived_seed(c.seed, "best-of-n"),
        temperature=c.temperature,
    ):  # fmt: skip
        policies[f"best-of-{baseline['n']} (reference)"] = baseline
    everything = [conv for result in played.values() for conv in result.conversations]
    return {
        "policies": policies,
        "held_out_prompts": len(held_out),
        "held_out_conversations": len(openings),
        "samples": _sample_table(played, c.eval_samples_per_prompt),
        "calibration": {
            "gold": conversation_scores(gold, everything).tolist(),
            "proxy": conversation_scores(proxy, everything).tolist(),
        },
    }


def best_of_n_conversations(
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    slots: Sequence[str],
    proxy: RewardPredictor,
    ns: Sequence[int],
    *,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
) -> list[dict[str, float]]:
    """Best-of-n baselines of a dialogue task: for each slot (a held-out opening), ``max(ns)``
    reference conversations against one held-out secret; best-of-n keeps the first n's
    conversation the proxy scores highest. KL is the analytic ``log n - (n - 1) / n``."""
    largest = max(ns)
    played = play_conversations(
        reference, None, tokenizer, task, [o for o in slots for _ in range(largest)],
        split="test", max_new_tokens=max_new_tokens, seed=seed, temperature=temperature,
        same_secret=largest,
    )  # fmt: skip
    proxy_scores = conversation_scores(proxy, played.conversations).reshape(len(slots), largest)
    gold = played.gold.reshape(len(slots), largest)  # every game's gold is known once played
    return best_of_n_rows(proxy_scores, ns, lambda best: gold[np.arange(len(slots)), best])


def _sample_table(played: dict[str, Conversations], step: int) -> list[dict[str, str]]:
    """One row per sampled opening: its transcript (after the opening) under each policy;
    every policy met the same secret in a row."""
    rows = []
    first = next(iter(played.values())).conversations
    for position in range(0, min(len(first), SAMPLES_IN_REPORT * step), step):
        row = {"prompt": first[position][0]["content"]}
        for name, result in played.items():
            row[name.removesuffix(" (reference)")] = reward_texts(result.conversations[position])[1]
        rows.append(row)
    return rows
