"""Gymnasium registration: every env id of the package, by string entry points."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from rlhf_gym.tasks import registered_tasks

ENTRY_POINT = "rlhf_gym.envs.text_generation:TextGenerationEnv"
VECTOR_ENTRY_POINT = "rlhf_gym.envs.vector:TextGenerationVectorEnv"


def register_envs() -> list[str]:
    """Register ``rlhf_gym/TextGeneration-v0`` and one id per task module; return the ids.

    Safe to call more than once.
    """
    specs = [("rlhf_gym/TextGeneration-v0", {})]
    specs += [(task.env_id, {"task": task.name}) for task in registered_tasks().values()]
    for env_id, kwargs in specs:
        if env_id not in registry:
            register(
                id=env_id,
                entry_point=ENTRY_POINT,
                vector_entry_point=VECTOR_ENTRY_POINT,
                kwargs=kwargs,
            )
    return [env_id for env_id, _ in specs]
