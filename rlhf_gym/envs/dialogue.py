"""DialogueEnv: a language model holds a conversation with a user simulator, one token per step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.dialogue.conversation import assistant, transcript
from rlhf_gym.dialogue.games import SPLITS
from rlhf_gym.dialogue.simulators import (
    ConversationStarter,
    SimulatorSpec,
    UserSimulator,
    begin_conversation,
    make_user_simulator,
)
from rlhf_gym.envs.arguments import (
    check_render_mode,
    check_shared_encoder,
    positive,
    resolve_predictor,
    resolve_prompts,
    window_spaces,
)
from rlhf_gym.envs.chat import OpeningEncoder, chat_format
from rlhf_gym.envs.dialogue_episode import (
    DialogueConfig,
    DialogueEpisode,
    DialogueScorer,
    DialogueSettings,
)
from rlhf_gym.envs.episode import Observation, ScoredTokenSteps, check_prompt
from rlhf_gym.models import load_tokenizer
from rlhf_gym.rewards import ConversationRewardPredictor, RewardPredictor, RewardSpec
from rlhf_gym.tasks import Task, get_task


class DialogueEnv(ScoredTokenSteps, DialogueSettings, gym.Env[Observation, int]):
    """
    ## Description

    A language model holds a conversation with a **user simulator**, one token per step. The
    user opens; the agent writes its turn token by token; when the turn ends, the simulator
    reads the conversation so far and writes the user's reply, which the env tokenizes with
    the model's chat template and appends to the observation; and so on until the user ends
    the conversation or the agent has had `max_turns` turns. A reward predictor then scores
    the whole conversation. This is the multi-turn form of `TextGenerationEnv`, and shares its
    action and observation spaces.

    A user simulator is any callable `(history) -> str | FinalReply | None` (`None` ends the
    conversation, a `FinalReply` is a last message that ends it), or a conversation starter
    whose `start(rng, split)` draws a secret with `self.np_random` and returns the simulator of
    one conversation; both are named in a registry like reward predictors
    (`rlhf_gym.dialogue.simulators`). History and conversations are lists of
    `{"role": "user" | "assistant", "content": str}` messages (TRL's conversational format).

    ## Action Space

    `Discrete(len(tokenizer))`: the id of the next token of the agent's turn. EOS ends the
    turn. An id outside the vocabulary raises `ValueError` and changes nothing.

    ## Observation Space

    As `TextGenerationEnv`: a `Dict` of `input_ids` and `attention_mask`, each
    `Box(shape=(L,), dtype=int64)`, left-padded with the newest token at index -1, where
    `L = max_prompt_tokens + max_turns * (max_new_tokens + max_user_tokens)` is enough for the
    longest conversation: **no token ever leaves the window**, so the real tokens are the
    whole conversation so far. A step appends the action's token and, when it ends a turn and
    the conversation goes on (or the user has a last word), the user's turn: its ids are
    `info["user_token_ids"]`, and the number of real tokens grows by exactly
    `1 + len(info["user_token_ids"])` (an agent that keeps a KV cache extends it with
    `[action, *user_token_ids]` at positions that continue `cumsum(attention_mask) - 1`).

    How turns become tokens (`rlhf_gym/envs/chat.py`): with the tokenizer's chat template
    (the opening with the generation prompt; after each turn, what the template writes after
    an assistant message: its end-of-turn, the user message, the next generation prompt,
    without repeating an end-of-turn that is the EOS the agent wrote); without one, the plain
    text `"User: {opening}\\nAssistant:"` and `"\\nUser: {reply}\\nAssistant:"`.

    ## Rewards

    0 on steps that do not end a turn. On a step that ends a turn: the turn reward
    predictor's score of the conversation up to the user's reply to it (when
    `turn_reward_predictor` is given), minus `missing_eos_penalty` when the turn was cut at
    `max_new_tokens` without EOS; on the step that ends the conversation, plus the reward
    predictor's score of the whole conversation. A predictor with a
    `score_conversations(conversations)` method reads the messages; any other
    `(prompts, completions)` predictor reads `rlhf_gym.dialogue.reward_texts` of each
    conversation (the opening, then the rest of the plain-text transcript).

    ## Starting State

    `reset` draws an opening from the prompt list with `self.np_random` (or takes
    `options={"prompt": ...}`), then starts the user simulator (a conversation starter draws
    its secret with `self.np_random`, from the env's `split`). An opening longer than
    `max_prompt_tokens` tokens in the chat format raises `ValueError` (listed openings are
    checked when the env is made).

    ## Episode End

    A turn ends on EOS or after `max_new_tokens` tokens; its text (decoded without EOS and
    special tokens, stripped) becomes an assistant message and the simulator replies. The
    conversation ends, and is scored, when the simulator returns `None` or a `FinalReply`
    (`terminated=True`), or when the agent's turn `max_turns` ends (`terminated=True` and
    `truncated=True`: cut by the turn limit, yet scored, so no agent bootstraps past it; the
    user's reply to that turn is kept as its last message). A simulator reply that is not a
    `str`, `FinalReply` or `None` raises `TypeError`; an empty one, or one longer than
    `max_user_tokens` tokens in the chat format, `ValueError`; the step is not applied.

    `info` is empty on steps inside a turn. A step that ends a turn has `turn` (its number,
    from 1), `eos`, `num_new_tokens` (the turn's tokens, EOS included), `reply` (the user's
    reply, or None), `user_token_ids` (tuple) and, with a turn reward predictor,
    `turn_score`; the last step adds `prompt` (the opening), `conversation` (the messages),
    `score` (the conversation's raw score) and `num_turns`. `reset` returns `{"prompt": ...}`.

    ## Arguments

    * `task`: a task name (`"guess_number"`) or `Task`; supplies openings, simulator, reward
      and budgets.
    * `model`, `tokenizer`, `prompts` (the openings), `split`, `reward_predictor`,
      `max_new_tokens` (per turn), `max_prompt_tokens` (the opening), `missing_eos_penalty`
      (per cut turn), `render_mode`: as `TextGenerationEnv`.
    * `user_simulator`: a registered name (`"guess-number"`), a conversation starter or a
      callable; defaults to the task's. The split (`"train"`, `"test"`, `"all"`) also picks
      a starter's secrets.
    * `turn_reward_predictor`: scores each turn (optional).
    * `max_turns`, `max_user_tokens`: defaults from the task, else 4 and 32
      (`max_prompt_tokens` defaults to 64 without a task).

    ## Version History

    * v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(
        self,
        task: str | Task | None = None,
        model: str = "tiny",
        tokenizer: PreTrainedTokenizerBase | None = None,
        prompts: Sequence[str] | None = None,
        split: str = "train",
        user_simulator: SimulatorSpec | None = None,
        reward_predictor: RewardSpec | None = None,
        turn_reward_predictor: RewardSpec | None = None,
        max_new_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        max_turns: int | None = None,
        max_user_tokens: int | None = None,
        missing_eos_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        self.task = get_task(task) if task is not None else None
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        self.split = split
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
        self.prompts = resolve_prompts(prompts, self.task, split)
        self.user_simulator = _resolve_simulator(user_simulator, self.task)
        predictor = resolve_predictor(reward_predictor, self.task)
        turn_predictor = (
            None
            if turn_reward_predictor is None
            else resolve_predictor(turn_reward_predictor, None)
        )
        check_render_mode(render_mode, self.metadata)
        self.render_mode = render_mode
        config = _config(
            self.task, tokenizer, float(missing_eos_penalty),
            max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens,
            max_turns=max_turns, max_user_tokens=max_user_tokens,
        )  # fmt: skip
        chat = chat_format(tokenizer)
        self._episode = DialogueEpisode(config, chat)
        self._scorer = DialogueScorer(predictor, turn_predictor)
        self._prompt_encoder = OpeningEncoder(chat, config.max_prompt_tokens)
        for opening in self.prompts:  # an opening over the budget fails now, not at a reset
            self._prompt_encoder.encode_listed(opening)
        self.observation_space, self.action_space = window_spaces(config)

    # ------------------------------------------------------------------ public state
    @property
    def episode(self) -> DialogueEpisode:
        """The current conversation: its token window, messages and step rules."""
        return self._episode

    @property
    def episode_config(self) -> DialogueConfig:
        return self._episode.config

    @property
    def reward_predictor(self) -> RewardPredictor | ConversationRewardPredictor:
        """Scores each finished conversation; may be replaced."""
        return self._scorer.predictor

    @reward_predictor.setter
    def reward_predictor(self, predictor: RewardPredictor | ConversationRewardPredictor) -> None:
        self._scorer.predictor = predictor

    @property
    def turn_reward_predictor(self) -> RewardPredictor | ConversationRewardPredictor | None:
        """Scores each turn, or None; may be replaced."""
        return self._scorer.turn_predictor

    @turn_reward_predictor.setter
    def turn_reward_predictor(
        self, predictor: RewardPredictor | ConversationRewardPredictor | None
    ) -> None:
        self._scorer.turn_predictor = predictor

    @property
    def scorer(self) -> DialogueScorer:
        """Scores and commits planned steps of conversations (the vector env ends its
        sub-envs' steps through it)."""
        return self._scorer

    @property
    def prompt_encoder(self) -> OpeningEncoder:
        """Tokenizes openings for ``reset``; envs with the same tokenizer may share one."""
        return self._prompt_encoder

    @prompt_encoder.setter
    def prompt_encoder(self, encoder: OpeningEncoder) -> None:
        check_shared_encoder(encoder, self.tokenizer, self.max_prompt_tokens, "opening")
        self._prompt_encoder = encoder

    def shared_arguments(self) -> dict[str, Any]:
        """Keyword arguments that make an env built from the same arguments share this one's
        tokenizer, predictors, simulator and openings (the vector env builds its sub-envs so)."""
        return {
            "tokenizer": self.tokenizer,
            "reward_predictor": self.reward_predictor,
            "turn_reward_predictor": self.turn_reward_predictor,
            "user_simulator": self.user_simulator,
            "prompts": self.prompts,
        }

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        opening = (options or {}).get("prompt")
        if opening is not None:  # checked before seeding: a refused opening changes nothing
            check_prompt(opening)
            opening_ids = self._prompt_encoder.encode(opening)
        super().reset(seed=seed)
        if opening is None:
            opening = self.prompts[int(self.np_random.integers(len(self.prompts)))]
            opening_ids = self._prompt_encoder.encode_listed(opening)
        user = begin_conversation(self.user_simulator, self.np_random, self.split)
        self._episode.start(opening_ids, opening, user)
        if self.render_mode == "human":
            self.render()
        return self._episode.observation(), {"prompt": opening}

    def _render_text(self) -> str:
        """The conversation so far in plain text, with the agent's turn in progress."""
        messages = self._episode.conversation
        if not messages:
            return ""  # before the first reset
        if messages[-1]["role"] == "user" and not self._episode.done:
            turn = self.tokenizer.decode(self._episode.turn_ids, skip_special_tokens=True)
            messages.append(assistant(turn.strip()))
        return transcript(messages)


def _resolve_simulator(
    spec: SimulatorSpec | None, task: Task | None
) -> UserSimulator | ConversationStarter:
    spec = spec if spec is not None else task and task.user_simulator
    if spec is None:
        raise ValueError(
            "give a user_simulator: a registered name, a callable (history) -> reply or a "
            f"conversation starter (task {task and task.name!r} declares none)"
        )
    return make_user_simulator(spec)


def _config(
    task: Task | None, tokenizer: PreTrainedTokenizerBase, missing_eos_penalty: float,
    **budgets: int | None,
) -> DialogueConfig:  # fmt: skip
    """The episode config from the given budgets, else the task's, else the defaults."""
    defaults = {
        "max_new_tokens": 24,
        "max_prompt_tokens": 64,
        "max_turns": 4,
        "max_user_tokens": 32,
    }
    chosen = {
        name: positive(name, value, task and getattr(task, name), defaults[name])
        for name, value in budgets.items()
    }
    return DialogueConfig(
        tokenizer, chosen["max_prompt_tokens"], chosen["max_new_tokens"], missing_eos_penalty,
        max_turns=chosen["max_turns"], max_user_tokens=chosen["max_user_tokens"],
    )  # fmt: skip
