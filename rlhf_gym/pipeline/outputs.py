"""RunOutputs: what the finished stages of one run hold, for the stages after them.

The agent, evaluation and report stages (and third-party agents) receive this object and read
the starting policy, the reward model, the preference pairs and the prompts through it, never
through the pipeline's internals. Loading failures become a :class:`StageError` that names the
stage and the command that redoes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.stages import StageError, StageRunner, agent_stage
from rlhf_gym.seeding import derived_seed, numpy_rng
from rlhf_gym.tasks import Task

if TYPE_CHECKING:
    from transformers import PreTrainedModel
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    from rlhf_gym.pipeline.probe import HeldOutProbe
    from rlhf_gym.preferences import PreferencePair
    from rlhf_gym.rewards.base import RewardPredictor

Loaded = TypeVar("Loaded")


def reward_member_dirs(size: int) -> list[str]:
    """Directories of the reward stage's models: ``model`` (the first, alone by default), then
    ``model-1``, ``model-2``... for an ensemble."""
    return ["model", *(f"model-{i}" for i in range(1, size))]


@dataclass(frozen=True)
class RunOutputs:
    """The outputs of one run's finished stages, loaded on demand."""

    config: RunConfig
    task: Task
    runner: StageRunner

    def path(self, stage: str) -> Path:
        return self.runner.path(stage)

    def summary(self, stage: str) -> dict[str, Any]:
        """The JSON summary a finished stage returned."""
        return self.runner.summary(stage)

    def seconds(self, stage: str) -> float:
        """The wall time a finished stage took."""
        return self.runner.seconds(stage)

    def load(self, stage: str, loader: Callable[[Path], Loaded]) -> Loaded:
        """``loader(stage directory)``, any failure turned into a clear message."""
        path = self.path(stage)
        try:
            return loader(path)
        except Exception as err:
            raise StageError(
                f"cannot load the output of stage {stage!r} from {path} "
                f"({type(err).__name__}: {err}); rerun with --force {stage}"
            ) from err

    def starting_source(self) -> str:
        """Name or directory of the policy every agent starts from: the SFT output, or the base
        model when SFT is off."""
        if self.summary("sft").get("skipped"):
            return self.config.model
        return str(self.path("sft") / "model")

    def starting_policy(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The starting policy and its tokenizer; it is also the reference of the KL penalty
        and of the evaluation."""
        from rlhf_gym.models import load_model

        source = self.starting_source()
        return self.load("sft", lambda _: load_model(source)), self.tokenizer()

    def tokenizer(self) -> PreTrainedTokenizerBase:
        from rlhf_gym.models import load_tokenizer

        source = self.starting_source()
        return self.load("sft", lambda _: load_tokenizer(source))

    def reward_model(self) -> RewardPredictor:
        """The reward the agents optimise: the reward model, or with ``reward_ensemble_size`` > 1
        the ensemble under ``reward_ensemble_objective``; with ``reward_source="gold"`` the
        task's gold scorer."""
        from rlhf_gym.rewards import make_reward_predictor
        from rlhf_gym.rewards.ensemble import EnsemblePredictor
        from rlhf_gym.rewards.learned import LearnedRewardModel

        c = self.config
        if c.reward_source == "gold":
            return make_reward_predictor(self.task.gold_reward)
        members = [
            self.load("reward", lambda p, name=name: LearnedRewardModel.from_pretrained(p / name))
            for name in reward_member_dirs(c.reward_ensemble_size)
        ]
        if len(members) == 1:
            return members[0]
        return EnsemblePredictor(members, c.reward_ensemble_objective, c.reward_uncertainty_coef)

    def pairs(self) -> list[PreferencePair]:
        """The preference pairs (simulated or human) in TRL's prompt/chosen/rejected form."""
        from rlhf_gym.preferences.io import read_jsonl

        return self.load("preferences", lambda p: read_jsonl(p / "pairs.jsonl"))

    def train_prompts(self, count: int) -> list[str]:
        """``count`` train prompts in the run's own random order (the same on every call)."""
        prompts = self.task.prompts("train")
        order = numpy_rng(self.config.seed, "preference-prompts").permutation(len(prompts))
        return [prompts[i] for i in order[:count]]

    def eval_prompts(self) -> list[str]:
        """The held-out prompts evaluated on (the first ``eval_prompts``, or all)."""
        prompts = self.task.prompts("test")
        return prompts[: self.config.eval_prompts] if self.config.eval_prompts else prompts

    def heldout_probe(self) -> HeldOutProbe | None:
        """A probe of the policy in training every ``eval_every`` iterations: one completion of
        each of the first ``probe_prompts`` held-out prompts, or for a dialogue task
        ``probe_prompts`` conversations on the held-out openings and secrets; None when
        ``eval_every`` is off. Its reference is its own copy of the starting policy."""
        from rlhf_gym.pipeline.probe import HeldOutProbe
        from rlhf_gym.rewards import make_reward_predictor

        c = self.config
        if not c.eval_every:
            return None
        reference, tokenizer = self.starting_policy()
        reference.requires_grad_(False)
        gold, proxy = make_reward_predictor(self.task.gold_reward), self.reward_model()
        seed = derived_seed(c.seed, "heldout-probe")
        if self.task.is_dialogue:
            from rlhf_gym.pipeline.dialogue import evaluate_conversations, play_conversations

            openings = self.conversation_openings("test", c.probe_prompts)

            def measure(policy: PreTrainedModel) -> dict[str, float]:
                played = play_conversations(
                    policy, reference, tokenizer, self.task, openings, split="test",
                    max_new_tokens=c.max_new_tokens, seed=seed, temperature=c.temperature,
                )  # fmt: skip
                return evaluate_conversations(played, proxy)

        else:
            from rlhf_gym.evaluation import evaluate_policy

            prompts = self.task.prompts("test")[: c.probe_prompts]

            def measure(policy: PreTrainedModel) -> dict[str, float]:
                result, _ = evaluate_policy(
                    policy, reference, tokenizer, prompts, gold, proxy, samples_per_prompt=1,
                    max_new_tokens=c.max_new_tokens, seed=seed, temperature=c.temperature,
                    progress_bar=False,
                )  # fmt: skip
                return result.as_dict()

        return HeldOutProbe(measure, every=c.eval_every)

    def conversation_openings(self, split: str, count: int) -> list[str]:
        """``count`` openings of a dialogue task's ``split``, cycling through them (a dialogue
        has few openings; its variety is in the user's secrets)."""
        openings = self.task.prompts(split)
        return [openings[i % len(openings)] for i in range(count)]

    def conversation_records(self) -> list[dict[str, Any]]:
        """A dialogue run's simulated preferences as TRL's conversational records, in the order
        of :meth:`pairs`."""
        from rlhf_gym.preferences.io import read_json_lines

        return self.load("preferences", lambda p: read_json_lines(p / "conversations.jsonl"))

    def agent_policy(self, agent: str) -> PreTrainedModel:
        """The policy ``agent`` trained."""
        from rlhf_gym.models import load_model

        return self.load(agent_stage(agent), lambda p: load_model(str(p / "policy")))

    def curve(self, agent: str) -> list[dict[str, float]]:
        """``agent``'s training curve: points with ``kl``, ``proxy`` and ``gold``."""
        return self.load(agent_stage(agent), lambda p: json.loads((p / "curve.json").read_text()))

    def heldout_curve(self, agent: str) -> list[dict[str, float]]:
        """``agent``'s held-out probes (``eval_every``): points with ``iteration``, ``kl``,
        ``proxy`` and ``gold``; empty when probing was off."""

        def read(path: Path) -> list[dict[str, float]]:
            file = path / "heldout_curve.json"
            return json.loads(file.read_text()) if file.is_file() else []

        return self.load(agent_stage(agent), read)
