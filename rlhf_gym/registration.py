"""Gymnasium registration: every env id of the package, by string entry points."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from rlhf_gym.tasks import Task, registered_tasks

ENTRY_POINT = "rlhf_gym.envs.text_generation:TextGenerationEnv"
VECTOR_ENTRY_POINT = "rlhf_gym.envs.vector:TextGenerationVectorEnv"
DIALOGUE_ENTRY_POINT = "rlhf_gym.envs.dialogue:DialogueEnv"
DIALOGUE_VECTOR_ENTRY_POINT = "rlhf_gym.envs.vector:DialogueVectorEnv"

TEXT_ENV = (ENTRY_POINT, VECTOR_ENTRY_POINT)
DIALOGUE_ENV = (DIALOGUE_ENTRY_POINT, DIALOGUE_VECTOR_ENTRY_POINT)
"""``(entry_point, vector_entry_point)`` of the single-turn and of the dialogue envs."""


def register_envs() -> list[str]:
    """Register ``rlhf_gym/TextGeneration-v0``, ``rlhf_gym/Dialogue-v0`` and one id per task
    module (a dialogue task's with the dialogue env); return the ids.

    Safe to call more than once.
    """
    specs = [
        ("rlhf_gym/TextGeneration-v0", TEXT_ENV, {}),
        ("rlhf_gym/Dialogue-v0", DIALOGUE_ENV, {}),
    ]
    specs += [_task_spec(task) for task in registered_tasks().values()]
    for env_id, (entry_point, vector_entry_point), kwargs in specs:
        if env_id not in registry:
            register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=vector_entry_point,
                kwargs=kwargs,
            )
    return [env_id for env_id, _, _ in specs]


def _task_spec(task: Task) -> tuple[str, tuple[str, str], dict[str, str]]:
    return task.env_id, DIALOGUE_ENV if task.is_dialogue else TEXT_ENV, {"task": task.name}
