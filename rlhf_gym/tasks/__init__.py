"""Tasks: one module each, found by scanning this package for a module-level ``TASK``."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from rlhf_gym.tasks.base import Task


@cache
def registered_tasks() -> dict[str, Task]:
    """Every task module's ``TASK``, by task name."""
    tasks: dict[str, Task] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        task = getattr(importlib.import_module(f"{__name__}.{info.name}"), "TASK", None)
        if isinstance(task, Task):
            tasks[task.name] = task
    return tasks


def get_task(task: str | Task) -> Task:
    """Look a task up by name (``"sentiment"``) or pass a :class:`Task` through."""
    if isinstance(task, Task):
        return task
    tasks = registered_tasks()
    if task not in tasks:
        raise ValueError(f"unknown task {task!r}; available tasks: {sorted(tasks)}")
    return tasks[task]


__all__ = ["Task", "get_task", "registered_tasks"]
