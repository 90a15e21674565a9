"""What a task is: prompts with a held-out split, a gold score, and the env's defaults."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Task:
    """A text-generation task that the environment can be built from.

    A task module in ``rlhf_gym.tasks`` defines one module-level ``TASK`` and is registered as
    ``rlhf_gym/{env_name}-v{version}`` automatically.
    """

    name: str
    """Short lower-case name used on the command line (``"sentiment"``)."""
    env_name: str
    """Gymnasium id without namespace and version (``"Sentiment"``)."""
    version: int
    description: str
    prompts_resource: str
    """File under ``rlhf_gym/tasks/data`` with one prompt per line."""
    gold_reward: str
    """Name of the gold labeler (see ``rlhf_gym.rewards``) that defines what "better" means."""
    default_reward: str
    """Reward predictor the env uses when none is given."""
    max_new_tokens: int = 24
    max_prompt_tokens: int = 32
    reward_backbone: str | None = None
    """Trunk ``rlhf-gym run`` starts the reward model from by default (a ``--reward-backbone``
    value); None: the policy's own."""
    heldout_every: int = 5
    """Every ``heldout_every``-th prompt (1-based) belongs to the held-out ``test`` split."""
    user_simulator: str | None = None
    """A dialogue task's user simulator (a name of ``rlhf_gym.dialogue``'s registry): its env
    is the multi-turn ``DialogueEnv``, its prompts are the user's opening messages. None: a
    single-turn task."""
    max_turns: int = 4
    """Dialogue tasks: the assistant turns a conversation may take."""
    max_user_tokens: int = 32
    """Dialogue tasks: the longest user turn the env appends, in tokens."""

    @property
    def env_id(self) -> str:
        return f"rlhf_gym/{self.env_name}-v{self.version}"

    @property
    def is_dialogue(self) -> bool:
        """The task is a conversation with a user simulator."""
        return self.user_simulator is not None

    @property
    def demonstrations_resource(self) -> str:
        """File under ``rlhf_gym/tasks/data`` with the demonstrations, one JSON record a line."""
        return self.prompts_resource.replace("_prompts.txt", "_demonstrations.jsonl")

    def split_of(self, index: int) -> str:
        """The split (``"train"`` or ``"test"``) of the ``index``-th prompt, counted from 0."""
        return "test" if (index + 1) % self.heldout_every == 0 else "train"

    @property
    def has_demonstrations(self) -> bool:
        """Whether the task ships SFT demonstrations."""
        return files("rlhf_gym.tasks").joinpath("data", self.demonstrations_resource).is_file()

    def demonstrations(self) -> list[dict[str, str]]:
        """The task's SFT demonstrations (``{"prompt", "completion"}`` records), shipped next to
        its prompts as ``<prompts file stem>_demonstrations.jsonl``."""
        name = self.demonstrations_resource
        resource = files("rlhf_gym.tasks").joinpath("data", name)
        if not self.has_demonstrations:
            raise FileNotFoundError(
                f"task {self.name!r} ships no demonstrations ({name}); run with --no-sft"
            )
        lines = resource.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def prompts(self, split: str = "train") -> list[str]:
        """The prompts of one split: ``"train"``, ``"test"`` (held out) or ``"all"``."""
        every = _read_prompts(self.prompts_resource)
        if split == "all":
            return list(every)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {(*SPLITS, 'all')}")
        return [p for i, p in enumerate(every) if self.split_of(i) == split]


@cache
def _read_prompts(resource: str) -> tuple[str, ...]:
    text = files("rlhf_gym.tasks").joinpath("data", resource).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def write_task_data(
    task: Task, prompts: Sequence[str], demonstrations: Sequence[Mapping[str, str]]
) -> None:
    """Write a task's generated prompts and demonstrations to the files the package ships."""
    data = Path(__file__).parent / "data"
    (data / task.prompts_resource).write_text("".join(f"{p}\n" for p in prompts), encoding="utf-8")
    records = "".join(json.dumps(dict(record)) + "\n" for record in demonstrations)
    (data / task.demonstrations_resource).write_text(records, encoding="utf-8")
