"""Task lookup, and that a new task is one new module."""

from __future__ import annotations

import sys

import gymnasium as gym
import pytest
from gymnasium.envs.registration import registry

import rlhf_gym.tasks
from rlhf_gym.registration import register_envs
from rlhf_gym.tasks import Task, get_task, registered_tasks

NEW_TASK_MODULE = """
from rlhf_gym.tasks.base import Task

TASK = Task(
    name="shortsentiment",
    env_name="ShortSentiment",
    version=1,
    description="A test task reusing the sentiment prompts with a shorter budget.",
    prompts_resource="sentiment_prompts.txt",
    gold_reward="vader",
    default_reward="vader",
    max_new_tokens=5,
)
"""


def test_get_task_by_name_and_instance():
    task = get_task("sentiment")
    assert task is registered_tasks()["sentiment"]
    assert get_task(task) is task


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'poems'; available tasks: \[.*'sentiment'"):
        get_task("poems")


@pytest.fixture
def extra_task_module(tmp_path, monkeypatch):
    """A task module dropped into the tasks package's search path; cleaned up afterwards."""
    (tmp_path / "shortsentiment.py").write_text(NEW_TASK_MODULE)
    monkeypatch.setattr(rlhf_gym.tasks, "__path__", [*rlhf_gym.tasks.__path__, str(tmp_path)])
    registered_tasks.cache_clear()
    yield "rlhf_gym/ShortSentiment-v1"
    registry.pop("rlhf_gym/ShortSentiment-v1", None)
    sys.modules.pop("rlhf_gym.tasks.shortsentiment", None)
    registered_tasks.cache_clear()


def test_a_new_task_is_one_new_module(extra_task_module, tiny_tokenizer):
    assert isinstance(registered_tasks()["shortsentiment"], Task)
    assert extra_task_module in register_envs()
    env = gym.make(extra_task_module, tokenizer=tiny_tokenizer).unwrapped
    assert env.max_new_tokens == 5 and env.task.name == "shortsentiment"
