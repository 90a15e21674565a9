"""One dialogue episode: its token window, its conversation, and the rules of a step.

The dialogue counterpart of :mod:`rlhf_gym.envs.episode`, with the same shape, so that
:class:`~rlhf_gym.envs.DialogueEnv` and the vector env drive it as they drive a text episode:

1. ``planned = episode.plan(action)`` checks the action; when it ends the agent's turn, it also
   asks the user simulator for its reply and checks and tokenizes that reply. Nothing changes.
2. ``scorer.score_and_commit(steps)`` (a :class:`DialogueScorer`) scores, in one call per
   predictor, every turn that ends (turn reward predictor, if any) and every conversation that
   ends (reward predictor), then commits each step: the action's token and the user's turn
   are appended to the token window. It returns each step's reward, flags and info.

A failed check or score raises before anything is committed, so the episode is as it was.
The window holds ``max_prompt_tokens + max_turns * (max_new_tokens + max_user_tokens)``
tokens, enough for the longest conversation, so no token ever leaves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rlhf_gym.dialogue.conversation import Message, assistant, copy_messages, user
from rlhf_gym.dialogue.simulators import UserSimulator, check_reply
from rlhf_gym.envs.chat import ChatFormat
from rlhf_gym.envs.episode import (
    EpisodeConfig,
    EpisodeSettings,
    Observation,
    StepResult,
    TokenWindow,
    as_token,
    check_steppable,
)
from rlhf_gym.rewards import ConversationRewardPredictor, RewardPredictor, conversation_scores


@dataclass(frozen=True, eq=False, kw_only=True)
class DialogueConfig(EpisodeConfig):
    """What every dialogue episode of an env shares. ``max_new_tokens`` is the budget of one
    assistant turn, ``max_prompt_tokens`` that of the opening, and ``missing_eos_penalty`` is
    subtracted for each turn cut at the budget."""

    max_turns: int  # the conversation ends after this many assistant turns
    max_user_tokens: int  # the longest user turn, counted in the tokens the env appends

    def __post_init__(self) -> None:
        super().__post_init__()
        turns = self.max_turns * (self.max_new_tokens + self.max_user_tokens)
        object.__setattr__(self, "sequence_length", self.max_prompt_tokens + turns)


class DialogueSettings(EpisodeSettings):
    """The settings a dialogue env publishes besides the text env's (its ``episode_config`` is
    a :class:`DialogueConfig`)."""

    @property
    def max_turns(self) -> int:
        return self.episode_config.max_turns

    @property
    def max_user_tokens(self) -> int:
        return self.episode_config.max_user_tokens


class DialoguePlannedStep(NamedTuple):
    """What a checked action would do, before it is committed to the episode."""

    token: int
    eos: bool  # the token is EOS, the agent's end of turn
    turn_length: int  # the tokens of the agent's turn with this one
    turn_ends: bool  # EOS, or the turn's token budget
    ends: bool  # the conversation ends (the user ended it, or the last turn ended): scored
    truncated: bool  # it ends because the last allowed turn ended
    conversation: tuple[Message, ...]  # after the turn and the user's reply; () if no turn end
    reply: str | None  # the user's reply to the turn, if any
    user_token_ids: tuple[int, ...]  # appended to the window after ``token``


class DialogueEpisode:
    """The state of one conversation and the rules of its steps (see the module docstring)."""

    def __init__(self, config: DialogueConfig, chat: ChatFormat) -> None:
        self._config = config
        self._chat = chat
        self._window = TokenWindow(config.sequence_length, config.pad_token_id)
        self._messages: list[Message] = []
        self._turn_ids: list[int] = []
        self._user: UserSimulator | None = None
        self._done: bool | None = None  # None until the first start

    @property
    def config(self) -> DialogueConfig:
        return self._config

    @property
    def prompt(self) -> str:
        """The user's opening message."""
        return self._messages[0]["content"] if self._messages else ""

    @property
    def conversation(self) -> list[Message]:
        """Copies of the messages so far (the agent's turn in progress is not one yet)."""
        return copy_messages(self._messages)

    @property
    def turn_ids(self) -> tuple[int, ...]:
        """The tokens of the agent's turn in progress."""
        return tuple(self._turn_ids)

    @property
    def num_turns(self) -> int:
        """The agent's turns that have ended."""
        return len(self._messages) // 2

    @property
    def user(self) -> UserSimulator | None:
        """The user simulator of this conversation (what a conversation starter started)."""
        return self._user

    @property
    def started(self) -> bool:
        return self._done is not None

    @property
    def done(self) -> bool:
        return bool(self._done)

    def observation(self) -> Observation:
        """Copies of the token window: ``input_ids`` and ``attention_mask``, each ``(L,)``."""
        return self._window.observation()

    def use_buffers(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
        """Keep the token window in these ``(L,)`` int64 arrays (rows of a batch buffer)."""
        self._window.use_buffers(input_ids, attention_mask)

    def start(
        self, opening_ids: Sequence[int], opening: str, user_simulator: UserSimulator
    ) -> None:
        """Begin a conversation on ``opening`` (token ids ``opening_ids`` in the chat format),
        answered by ``user_simulator``."""
        if not 1 <= len(opening_ids) <= self._config.max_prompt_tokens:
            raise ValueError(
                f"{len(opening_ids)} opening token ids given; expected 1 to "
                f"max_prompt_tokens={self._config.max_prompt_tokens}"
            )
        self._window.start(opening_ids)
        self._messages = [user(opening)]
        self._turn_ids = []
        self._user = user_simulator
        self._done = False

    def plan(self, action: Any) -> DialoguePlannedStep:
        """Check ``action`` and, if it ends the turn, the user's reply; change nothing.

        Raises ``RuntimeError`` before the first start or after the end, ``ValueError`` for an
        action that is not one token id of the vocabulary, and the errors of
        :meth:`plan_turn_end` for a bad reply.
        """
        check_steppable(self._done)
        token = as_token(action, self._config.vocab_size)
        eos = token == self._config.eos_token_id
        turn_length = len(self._turn_ids) + 1
        if eos or turn_length >= self._config.max_new_tokens:
            return self.plan_turn_end(token, eos, turn_length)
        return DialoguePlannedStep(
            token, eos, turn_length, turn_ends=False, ends=False, truncated=False,
            conversation=(), reply=None, user_token_ids=(),
        )  # fmt: skip

    def plan_turn_end(self, token: int, eos: bool, turn_length: int) -> DialoguePlannedStep:
        """The step that ends the agent's turn with ``token``: the user's reply to it.

        The turn's text is decoded without EOS and special tokens, and stripped. Raises
        ``TypeError`` for a reply that is not a ``str``, ``FinalReply`` or ``None``, and
        ``ValueError`` for an empty one or one longer than ``max_user_tokens`` tokens.
        """
        said = self._turn_ids if eos else [*self._turn_ids, token]
        history = (*self._messages, assistant(self._decode(said).strip()))
        text, final = check_reply(self._user(copy_messages(history)), self._user)
        if text is None:
            return DialoguePlannedStep(
                token, eos, turn_length, turn_ends=True, ends=True, truncated=False,
                conversation=history, reply=None, user_token_ids=(),
            )  # fmt: skip
        last_turn = self.num_turns + 1 >= self._config.max_turns
        ends = final or last_turn
        ids = tuple(self._chat.user_turn_ids(text, after_eos=eos, cue=not ends))
        if len(ids) > self._config.max_user_tokens:
            raise ValueError(
                f"user simulator {self._user!r} replied with {len(ids)} tokens in the chat "
                f"format, more than max_user_tokens={self._config.max_user_tokens}: {text!r:.80}"
            )
        return DialoguePlannedStep(
            token, eos, turn_length, turn_ends=True, ends=ends, truncated=ends and not final,
            conversation=(*history, user(text)), reply=text, user_token_ids=ids,
        )  # fmt: skip

    def commit(self, planned: DialoguePlannedStep) -> None:
        """Apply a step that :meth:`plan` returned for the current state."""
        self._window.push(planned.token)
        self._window.extend(planned.user_token_ids)
        if planned.turn_ends:
            self._messages = list(planned.conversation)
            self._turn_ids = []
        else:
            self._turn_ids.append(planned.token)
        self._done = planned.ends

    def outcome(
        self, planned: DialoguePlannedStep, turn_score: float | None, score: float | None
    ) -> StepResult:
        """``(reward, terminated, truncated, info)`` of the turn-ending step ``planned``, just
        committed.

        ``turn_score`` is the turn reward predictor's score of the turn (None without one),
        ``score`` the reward predictor's score of the conversation when it ends (else None).
        """
        if not planned.turn_ends:
            raise RuntimeError("outcome() asked of a step that does not end a turn")
        penalty = 0.0 if planned.eos else self._config.missing_eos_penalty
        reward = (turn_score or 0.0) - penalty + (score if planned.ends else 0.0)
        info: dict[str, Any] = {
            "turn": self.num_turns,
            "eos": planned.eos,
            "num_new_tokens": planned.turn_length,
            "reply": planned.reply,
            "user_token_ids": planned.user_token_ids,
        }
        if turn_score is not None:
            info["turn_score"] = turn_score
        if planned.ends:
            info["prompt"] = self.prompt
            info["conversation"] = self.conversation
            info["score"] = score
            info["num_turns"] = self.num_turns
        return reward, planned.ends, planned.truncated, info

    def _decode(self, ids: Sequence[int]) -> str:
        return self._config.tokenizer.decode(ids, skip_special_tokens=True)


class DialogueScorer:
    """The end of a step of dialogue episodes: every ending turn is scored by the turn reward
    predictor (if any) in one call, every ending conversation by the reward predictor in one
    call; then every step is committed."""

    def __init__(
        self,
        predictor: RewardPredictor | ConversationRewardPredictor,
        turn_predictor: RewardPredictor | ConversationRewardPredictor | None = None,
    ) -> None:
        self.predictor = predictor
        self.turn_predictor = turn_predictor

    def score_and_commit(
        self, steps: Sequence[tuple[DialogueEpisode, DialoguePlannedStep]]
    ) -> dict[int, StepResult]:
        """The outcomes of the steps that end a turn, by position in ``steps``."""
        turns = [i for i, (_, planned) in enumerate(steps) if planned.turn_ends]
        turn_scores = self._turn_scores([steps[i][1] for i in turns])
        ending = [steps[i][1].conversation for i in turns if steps[i][1].ends]
        scores = iter(conversation_scores(self.predictor, ending).tolist())
        for episode, planned in steps:
            episode.commit(planned)
        results = {}
        for i, turn_score in zip(turns, turn_scores, strict=True):
            episode, planned = steps[i]
            score = next(scores) if planned.ends else None
            results[i] = episode.outcome(planned, turn_score, score)
        return results

    def _turn_scores(self, turns: list[DialoguePlannedStep]) -> list[float | None]:
        if self.turn_predictor is None:
            return [None] * len(turns)
        conversations = [planned.conversation for planned in turns]
        return conversation_scores(self.turn_predictor, conversations).tolist()
