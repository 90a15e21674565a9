"""TextGenerationEnv: a language model writes a completion one token per step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from rlhf_gym.envs.arguments import (
    UnsupportedRenderModeError,
    check_render_mode,
    check_shared_encoder,
    positive,
    resolve_predictor,
    resolve_prompts,
    window_spaces,
)
from rlhf_gym.envs.episode import (
    EpisodeConfig,
    EpisodeSettings,
    Observation,
    PromptEncoder,
    ScoredTokenSteps,
    TextEpisode,
    TextScorer,
    check_prompt,
)
from rlhf_gym.models import load_tokenizer
from rlhf_gym.rewards import RewardPredictor, RewardSpec
from rlhf_gym.tasks import Task, get_task

__all__ = ["Observation", "TextGenerationEnv", "UnsupportedRenderModeError", "check_prompt"]


class TextGenerationEnv(ScoredTokenSteps, EpisodeSettings, gym.Env[Observation, int]):
    """
    ## Description

    A language model continues a prompt one token per step; when the completion ends, a reward
    predictor (a learned reward model, a gold labeler, a remote service...) scores it. The env
    knows a tokenizer, a prompt source and a reward predictor, never the policy.

    The state of the current episode and the rules of a step are `env.episode`, a public
    `TextEpisode` (`rlhf_gym/envs/episode.py`); `TextGenerationVectorEnv` steps its sub-envs
    through it, so that one predictor call scores every episode that ends on a step. The
    settings below are read-only attributes (`tokenizer`, `eos_token_id`, `pad_token_id`,
    `vocab_size`, `max_prompt_tokens`, `max_new_tokens`, `sequence_length`,
    `missing_eos_penalty`).

    ## Action Space

    `Discrete(len(tokenizer))`: the id of the next token, taken from the tokenizer (special
    tokens included). An id outside the vocabulary raises `ValueError` and changes nothing.

    ## Observation Space

    A `Dict` of two `Box(shape=(max_prompt_tokens + max_new_tokens,), dtype=int64)` arrays:

    | key              | values                  | meaning                                     |
    |------------------|-------------------------|---------------------------------------------|
    | `input_ids`      | `0 .. len(tokenizer)-1` | prompt + completion so far, **left-padded** |
    | `attention_mask` | `0 / 1`                 | 1 on real tokens, 0 on padding              |

    Left padding keeps the newest token at index -1, so a causal LM reads its next-token logits
    at the last position; positions of real tokens are `cumsum(attention_mask) - 1`. Padding
    uses the tokenizer's pad id (else its EOS id, else 0); only the mask tells padding apart.
    Text never appears in observations: it is in `info`.

    ## Rewards

    0 on every step but the last. On the last step: the reward predictor's score of
    `(prompt, completion)`, minus `missing_eos_penalty` when the completion hit
    `max_new_tokens` without emitting EOS. The completion is decoded without its EOS and
    without special tokens. A predictor that returns the wrong number of scores or a
    non-finite score raises `ValueError`, and the step is not applied.

    ## Starting State

    `reset` draws a prompt uniformly from the prompt list with `self.np_random`, or takes
    `options={"prompt": "..."}`. A prompt longer than `max_prompt_tokens` tokens is truncated
    from the left (its end is what the completion continues) with a `UserWarning`; an empty
    prompt raises `ValueError`.

    ## Episode End

    The completion is scored, and the episode ends, when the action is the EOS token or when
    `max_new_tokens` tokens have been generated. Either way the scored completion is a terminal
    state of the task, so `terminated=True`. At the length budget `truncated=True` as well, to
    say that the text was cut without EOS (`info["eos"]` says the same). Reporting both flags
    matters: agents that bootstrap the value of a time-limit cut (`truncated and not
    terminated`, as stable-baselines3 does) never bootstrap past a completion that was already
    scored. `step` after the end, or before `reset`, raises `RuntimeError`.

    `info` is empty on intermediate steps; on the last step it holds `prompt`, `completion`,
    `score` (the predictor's raw score), `eos` and `num_new_tokens`. `reset` returns
    `{"prompt": ...}`.

    ## Arguments

    * `task`: a task name (`"sentiment"`) or `Task`; supplies prompts, reward and lengths.
    * `model`: where the tokenizer comes from: a preset (`"tiny"`), `"smollm2-135m"`, an HF
      id or a local directory. Default `"tiny"`. Ignored when `tokenizer` is given.
    * `tokenizer`: a tokenizer instance (never modified).
    * `prompts`: the prompt list, overriding the task's.
    * `split`: the task's prompt split, `"train"` (default), `"test"` (held out) or `"all"`.
    * `reward_predictor`: a name (`"vader"`), a `RewardPredictor`, or any callable
      `(prompts, completions) -> scores`; defaults to the task's.
    * `max_new_tokens`, `max_prompt_tokens`: the length budget (defaults from the task, else
      24 and 32).
    * `missing_eos_penalty`: subtracted from the score of a completion without EOS (default 0).
    * `render_mode`: `"ansi"` (returns the text) or `"human"` (prints it).

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
        reward_predictor: RewardSpec | None = None,
        max_new_tokens: int | None = None,
        max_prompt_tokens: int | None = None,
        missing_eos_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        resolved_task = get_task(task) if task is not None else None
        self.task = resolved_task
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
        self.prompts = resolve_prompts(prompts, resolved_task, split)
        predictor = _text_predictor(reward_predictor, resolved_task)
        new_tokens = positive(
            "max_new_tokens", max_new_tokens, resolved_task and resolved_task.max_new_tokens, 24
        )
        prompt_tokens = positive(
            "max_prompt_tokens",
            max_prompt_tokens,
            resolved_task and resolved_task.max_prompt_tokens,
            32,
        )
        check_render_mode(render_mode, self.metadata)
        self.render_mode = render_mode
        config = EpisodeConfig(tokenizer, prompt_tokens, new_tokens, float(missing_eos_penalty))
        self._episode = TextEpisode(config)
        self._scorer = TextScorer(predictor)
        self._prompt_encoder = PromptEncoder(tokenizer, prompt_tokens)
        self.observation_space, self.action_space = window_spaces(config)

    # ------------------------------------------------------------------ public state
    @property
    def episode(self) -> TextEpisode:
        """The current episode: its token window, prompt, completion and step rules."""
        return self._episode

    @property
    def episode_config(self) -> EpisodeConfig:
        return self._episode.config

    @property
    def reward_predictor(self) -> RewardPredictor:
        """Scores each finished completion; may be replaced."""
        return self._scorer.predictor

    @reward_predictor.setter
    def reward_predictor(self, predictor: RewardPredictor) -> None:
        self._scorer.predictor = predictor

    @property
    def scorer(self) -> TextScorer:
        """Scores and commits planned steps of episodes in one predictor call (the vector env
        ends its sub-envs' steps through it)."""
        return self._scorer

    def shared_arguments(self) -> dict[str, Any]:
        """Keyword arguments that make an env built from the same arguments share this one's
        tokenizer, reward predictor and prompt list (the vector env builds its sub-envs so)."""
        return {
            "tokenizer": self.tokenizer,
            "reward_predictor": self.reward_predictor,
            "prompts": self.prompts,
        }

    @property
    def prompt_encoder(self) -> PromptEncoder:
        """Tokenizes prompts for ``reset``; envs with the same tokenizer may share one."""
        return self._prompt_encoder

    @prompt_encoder.setter
    def prompt_encoder(self, encoder: PromptEncoder) -> None:
        check_shared_encoder(encoder, self.tokenizer, self.max_prompt_tokens, "prompt")
        self._prompt_encoder = encoder

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        prompt = (options or {}).get("prompt")
        if prompt is not None:
            check_prompt(prompt)  # before seeding: a refused prompt must change nothing
        super().reset(seed=seed)
        if prompt is None:
            index = int(self.np_random.integers(len(self.prompts)))
            prompt_ids, text = self._prompt_encoder.encode_listed(self.prompts[index])
        else:
            prompt_ids, text = self._prompt_encoder.encode(prompt)
        self._episode.start(prompt_ids, text)
        if self.render_mode == "human":
            self.render()
        return self._episode.observation(), {"prompt": text}

    def _render_text(self) -> str:
        return f"{self._episode.prompt}\u2502{self._episode.completion}"


def _text_predictor(spec: RewardSpec | None, task: Task | None) -> RewardPredictor:
    predictor = resolve_predictor(spec, task)
    if not callable(predictor):
        raise TypeError(
            f"reward predictor {predictor!r} scores whole conversations only (it has no "
            "(prompts, completions) call); use it with the dialogue env"
        )
    return predictor
