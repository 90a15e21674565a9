"""TextGenerationVectorEnv: N text-generation episodes stepped together, scored in one call."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlhf_gym.envs.dialogue import DialogueEnv
from rlhf_gym.envs.dialogue_episode import DialogueSettings
from rlhf_gym.envs.episode import (
    EpisodeConfig,
    EpisodeScorer,
    EpisodeSettings,
    Observation,
    check_prompt,
)
from rlhf_gym.envs.text_generation import TextGenerationEnv
from rlhf_gym.tasks import get_task


class TextGenerationVectorEnv(EpisodeSettings, VectorEnv):
    """``num_envs`` copies of :class:`TextGenerationEnv` behind Gymnasium's ``VectorEnv`` API.

    It has the semantics of ``SyncVectorEnv`` over the same single envs (same observations,
    rewards, flags and infos under the same seeds: sub-env ``i`` is seeded with ``seed + i``),
    with one difference that is the point of it: every episode that ends on a step is scored by
    **one** call to the reward predictor. The sub-envs share one tokenizer, one predictor and
    one prompt encoder.

    Autoreset modes (``autoreset_mode=``):

    * ``NEXT_STEP`` (default, as ``SyncVectorEnv``): the step after an episode ends resets that
      sub-env, ignoring its action, with reward 0 and both flags False.
    * ``SAME_STEP``: a sub-env is reset on the step its episode ends; the last observation
      and info are in ``info["final_obs"]`` / ``info["final_info"]``.
    * ``DISABLED``: a finished sub-env stays finished until ``reset()`` or
      ``reset(options={"reset_mask": mask})``; its actions are ignored and it reports reward 0
      and no new ending. This suits agents that generate a batch of whole episodes.

    ``reset(options={"prompts": [...]})`` gives each sub-env its own prompt (one per sub-env,
    or per selected sub-env with ``reset_mask``); any other option goes to every sub-env.

    **Contract with the sub-envs**, all public: they are reset and rendered through their
    Gymnasium API and stepped through ``env.episode`` (a
    :class:`~rlhf_gym.envs.episode.TextEpisode`) in two phases: plan every action, then
    ``env.scorer.score_and_commit`` the planned steps of all sub-envs at once (it scores the
    ending episodes in one call, then commits). Sub-envs are built by ``env_class`` from the
    same arguments plus the first one's ``shared_arguments()``, and share its
    ``prompt_encoder``. The sub-envs' settings are read-only properties
    here too (``tokenizer``, ``eos_token_id``, ``pad_token_id``, ``vocab_size``,
    ``max_prompt_tokens``, ``max_new_tokens``, ``sequence_length``, ``missing_eos_penalty``),
    and ``get_attr`` / ``set_attr`` reach any other sub-env attribute (``np_random``...) as in
    ``SyncVectorEnv``, so callers need not index ``envs``.
    """

    env_class: ClassVar[type[TextGenerationEnv] | type[DialogueEnv]] = TextGenerationEnv
    """What each sub-env is."""

    def __init__(
        self,
        num_envs: int,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ) -> None:
        if (
            isinstance(num_envs, bool)
            or not isinstance(num_envs, (int, np.integer))
            or num_envs < 1
        ):
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.envs = _sub_envs(self.env_class, int(num_envs), env_kwargs)
        first = self.envs[0]
        self._episodes = [env.episode for env in self.envs]
        # Episodes write their token windows in place only, so they can be rows of one batch
        # buffer: a batched observation is then one copy instead of a stack of N arrays.
        self._input_ids = np.empty((num_envs, first.sequence_length), dtype=np.int64)  # (N, L)
        self._attention_mask = np.empty_like(self._input_ids)  # (N, L)
        for row, episode in enumerate(self._episodes):
            episode.use_buffers(self._input_ids[row], self._attention_mask[row])
        self.num_envs = int(num_envs)
        # Its own scorer with the sub-envs' (shared) predictors: replacing the vector env's
        # reward_predictor leaves the sub-envs' as they are.
        self.scorer: EpisodeScorer = copy.copy(first.scorer)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**first.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = first.render_mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    @property
    def episode_config(self) -> EpisodeConfig:
        """The sub-envs' settings (all built from the same arguments, so all equal)."""
        return self.envs[0].episode.config

    @property
    def reward_predictor(self) -> Any:
        """Scores the episodes that end; may be replaced."""
        return self.scorer.predictor

    @reward_predictor.setter
    def reward_predictor(self, predictor: Any) -> None:
        self.scorer.predictor = predictor

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Observation, dict[str, Any]]:
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(self.num_envs, bool)), dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        selected = np.flatnonzero(mask)
        seeds = self._seeds(seed)
        prompts = options.pop("prompts", None)
        if prompts is not None and len(prompts) != len(selected):
            raise ValueError(f"{len(prompts)} prompts given for {len(selected)} sub-envs to reset")
        plan = []
        for position, sub_env in enumerate(selected):
            sub_options = dict(options)
            if prompts is not None:
                sub_options["prompt"] = prompts[position]
            if "prompt" in sub_options:
                check_prompt(sub_options["prompt"])  # a bad prompt fails before any sub-env resets
            plan.append((sub_env, sub_options))
        infos: dict[str, Any] = {}
        for sub_env, sub_options in plan:
            _, info = self.envs[sub_env].reset(seed=seeds[sub_env], options=sub_options)
            infos = self._add_info(infos, info, sub_env)
        self._needs_reset[selected] = False
        return self._observations(), infos

    def step(
        self, actions: Any
    ) -> tuple[Observation, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(
                f"expected {self.num_envs} actions, got an array of shape {actions.shape}"
            )
        # 1. Validate everything before changing anything.
        to_reset = np.flatnonzero(self._needs_reset) if self._resets_next_step else []
        idle = set(to_reset) | (
            {i for i, e in enumerate(self._episodes) if e.done} if self._disabled else set()
        )
        pending = {
            i: episode.plan(actions[i]) for i, episode in enumerate(self._episodes) if i not in idle
        }
        # 2. Score every episode that ends on this step in one call, then commit.
        pending_envs = list(pending)
        results = self.scorer.score_and_commit([(self._episodes[i], s) for i, s in pending.items()])
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        for i in to_reset:
            infos = self._add_info(infos, self.envs[i].reset()[1], i)
        if self.render_mode == "human":
            for i in pending:
                self.envs[i].render()  # what the sub-env's own step() would print
        for position, (reward, ends, cut, info) in results.items():
            i = pending_envs[position]
            rewards[i], terminated[i], truncated[i] = reward, ends, cut
            if (ends or cut) and self.autoreset_mode == AutoresetMode.SAME_STEP:
                final_obs = self._episodes[i].observation()  # before the reset overwrites it
                info = {"final_obs": final_obs, "final_info": info, **self.envs[i].reset()[1]}
            infos = self._add_info(infos, info, i)
        self._needs_reset = terminated | truncated
        return self._observations(), rewards, terminated, truncated, infos

    def render(self) -> tuple[str | None, ...] | None:
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-env (read, never called)."""
        return tuple(env.get_wrapper_attr(name) for env in self.envs)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set attribute ``name`` of the sub-envs: a list or tuple gives one value per sub-env,
        anything else goes to all of them (as ``SyncVectorEnv.set_attr``)."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"{len(values)} values given for {self.num_envs} sub-envs")
        for env, value in zip(self.envs, values, strict=True):
            env.set_wrapper_attr(name, value)

    # ---------------------------------------------------------------------- helpers
    @property
    def _resets_next_step(self) -> bool:
        return self.autoreset_mode == AutoresetMode.NEXT_STEP

    @property
    def _disabled(self) -> bool:
        return self.autoreset_mode == AutoresetMode.DISABLED

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)):
            return [int(seed) + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"{len(seed)} seeds given for {self.num_envs} sub-envs")
        return list(seed)

    def _observations(self) -> Observation:
        return {"input_ids": self._input_ids.copy(), "attention_mask": self._attention_mask.copy()}


class DialogueVectorEnv(DialogueSettings, TextGenerationVectorEnv):
    """``num_envs`` copies of :class:`~rlhf_gym.envs.dialogue.DialogueEnv`, stepped together.

    Everything :class:`TextGenerationVectorEnv` says holds, with conversations for episodes:
    on each step one reward-predictor call scores every conversation that ends, and one call
    of the turn reward predictor (if any) every turn that ends. The sub-envs share one user
    simulator (a conversation starter draws each conversation's secret with the sub-env's own
    ``np_random``). It also publishes ``max_turns`` and ``max_user_tokens``.
    """

    env_class = DialogueEnv


def make_vector_env(
    num_envs: int, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, **env_kwargs: Any
) -> TextGenerationVectorEnv:
    """The vector env of these arguments: a :class:`DialogueVectorEnv` when ``task`` is a
    dialogue task or a ``user_simulator`` is given, else a :class:`TextGenerationVectorEnv`
    (what the agents build from their ``env_kwargs``)."""
    task = env_kwargs.get("task")
    dialogue = "user_simulator" in env_kwargs or (task is not None and get_task(task).is_dialogue)
    env_class = DialogueVectorEnv if dialogue else TextGenerationVectorEnv
    return env_class(num_envs, autoreset_mode=autoreset_mode, **env_kwargs)


def _sub_envs(
    env_class: type[TextGenerationEnv] | type[DialogueEnv],
    num_envs: int,
    env_kwargs: dict[str, Any],
) -> list[Any]:
    """``num_envs`` envs from the same arguments that share the first one's tokenizer,
    predictors, prompt list and prompt encoder (so each listed prompt is tokenized once)."""
    first = env_class(**env_kwargs)
    shared = {**env_kwargs, **first.shared_arguments()}
    envs = [first, *(env_class(**shared) for _ in range(num_envs - 1))]
    for env in envs[1:]:
        env.prompt_encoder = first.prompt_encoder
    return envs


def parse_autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    """An ``AutoresetMode``, or its name in any spelling: ``"disabled"``, ``"same_step"``..."""
    if isinstance(value, AutoresetMode):
        return value
    wanted = str(value).replace("_", "").replace("-", "").lower()
    for mode in AutoresetMode:
        if wanted in (mode.value.lower(), mode.name.replace("_", "").lower()):
            return mode
    raise ValueError(
        f"unknown autoreset_mode {value!r}; expected one of {[m.name for m in AutoresetMode]}"
    )
