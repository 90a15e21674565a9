"""The reward-predictor protocols (text pairs, whole conversations), score validation, and
lookup by name or entry point."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rlhf_gym.dialogue.conversation import Message, reward_texts
from rlhf_gym.plugins import Registry

ENTRY_POINT_GROUP = "rlhf_gym.reward_predictors"

PREDICTORS = Registry(
    "reward predictor",
    ENTRY_POINT_GROUP,
    {
        "vader": "rlhf_gym.rewards.gold:VaderSentiment",
        "keyword": "rlhf_gym.rewards.gold:KeywordScore",
        "length": "rlhf_gym.rewards.gold:LengthTarget",
        "arithmetic": "rlhf_gym.rewards.instructions:ArithmeticAnswer",
        "instructed-length": "rlhf_gym.rewards.instructions:InstructedLength",
        "concepts": "rlhf_gym.rewards.writing:ConceptCoverage",
        "readability": "rlhf_gym.rewards.writing:Readability",
        "sentiment-rm": "rlhf_gym.rewards.learned:sentiment_reward_model",
        "ensemble": "rlhf_gym.rewards.ensemble:EnsemblePredictor",
        "remote": "rlhf_gym.rewards.remote:RemoteRewardPredictor",
        "guess-number": "rlhf_gym.dialogue.guess_number:gold_score",
        "twenty-questions": "rlhf_gym.dialogue.twenty_questions:gold_score",
        "guess-number-off-rules": "rlhf_gym.dialogue.guess_number:off_rules_penalty",
        "twenty-questions-off-rules": "rlhf_gym.dialogue.twenty_questions:off_rules_penalty",
    },
)
"""Built-in predictors by name, plus the ``rlhf_gym.reward_predictors`` entry-point group."""


@runtime_checkable
class RewardPredictor(Protocol):
    """Anything that scores a batch of (prompt, completion) pairs.

    It returns one finite float per pair, as a float32 array of shape ``(N,)``. It sees text
    only, so a reward model with its own tokenizer plugs in unchanged.
    """

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class ConversationRewardPredictor(Protocol):
    """Anything that scores whole conversations, reading their messages.

    Each conversation is a sequence of ``{"role": "user" | "assistant", "content": str}``
    messages from the user's opening on; it returns one finite float per conversation, as a
    float32 array of shape ``(N,)``. A predictor that implements only :class:`RewardPredictor`
    scores conversations too, through their text (:func:`conversation_scores`).
    """

    def score_conversations(self, conversations: Sequence[Sequence[Message]]) -> np.ndarray: ...


RewardSpec = (
    str
    | RewardPredictor
    | ConversationRewardPredictor
    | Callable[[Sequence[str], Sequence[str]], Any]
)


def check_scores(scores: Any, expected: int, source: object = "reward predictor") -> np.ndarray:
    """Return ``scores`` as a float32 array of shape ``(expected,)``, or raise a clear error."""
    try:
        raw = np.asarray(scores)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{source!r} returned {type(scores).__name__}, not numbers") from err
    # Refuse strings, objects and booleans rather than letting numpy coerce "0.5" or True.
    if raw.dtype.kind not in "iuf":
        raise TypeError(
            f"{source!r} returned scores of dtype {raw.dtype} ({scores!r:.80}); expected numbers"
        )
    array = raw.astype(np.float32)
    if array.shape != (expected,):
        raise ValueError(
            f"{source!r} returned scores of shape {array.shape} for {expected} completions; "
            f"expected shape ({expected},)"
        )
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array)).tolist()
        raise ValueError(f"{source!r} returned non-finite scores at positions {bad}: {array[bad]}")
    return array


def conversation_scores(
    predictor: RewardPredictor | ConversationRewardPredictor,
    conversations: Sequence[Sequence[Message]],
) -> np.ndarray:
    """The checked float32 scores of whole conversations, from one predictor call.

    A :class:`ConversationRewardPredictor` gets the messages; any other predictor the
    ``(prompt, completion)`` texts of :func:`rlhf_gym.dialogue.reward_texts` (the opening up to
    the assistant's cue, and the rest of the transcript). No conversations, no call.
    """
    if not conversations:
        return np.zeros(0, dtype=np.float32)
    if isinstance(predictor, ConversationRewardPredictor):
        scores = predictor.score_conversations(conversations)
    else:
        prompts, completions = zip(*(reward_texts(c) for c in conversations), strict=True)
        scores = predictor(list(prompts), list(completions))
    return check_scores(scores, len(conversations), predictor)


def available_predictors() -> list[str]:
    """Names accepted by :func:`make_reward_predictor`: built-ins and installed plug-ins."""
    return PREDICTORS.names()


def make_reward_predictor(
    spec: RewardSpec, **kwargs: Any
) -> RewardPredictor | ConversationRewardPredictor:
    """Turn a name, a predictor instance or a plain callable into a reward predictor.

    A name is looked up among the built-ins, then in the ``rlhf_gym.reward_predictors``
    entry-point group; the object found there is called with ``kwargs`` to build the predictor.
    A directory holding a saved reward model (``config.json``, e.g. from
    ``RewardModelTrainer.save_pretrained``) loads as a ``LearnedRewardModel`` with ``kwargs``.
    """
    if isinstance(spec, str):
        if spec not in PREDICTORS.builtins and (Path(spec) / "config.json").is_file():
            from rlhf_gym.rewards.learned import LearnedRewardModel  # torch only when asked

            factory = partial(LearnedRewardModel.from_pretrained, spec)
        else:
            factory = PREDICTORS.find(spec)
            if factory is None:
                raise ValueError(
                    f"unknown reward predictor {spec!r}: neither a saved reward model directory "
                    f"nor one of {available_predictors()}"
                )
        return factory(**kwargs)
    if kwargs:
        raise TypeError("keyword arguments are only used when the predictor is given by name")
    if callable(spec) or isinstance(spec, ConversationRewardPredictor):
        return spec
    raise TypeError(
        "reward_predictor must be a name, a RewardPredictor or a callable (or, for "
        f"conversations, a ConversationRewardPredictor), got {type(spec).__name__}"
    )
