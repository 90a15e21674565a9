"""The fault suite: each test reproduces one failure found by trying the tools as a careful user
and an adversary would (issue 11), from the outside where it can: real subprocesses of the
``rlhf-gym`` command, killed or racing; files cut as a crash cuts them; a real server and raw
sockets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

TINY_RUN = {
    "model": "tiny",
    "agent": "token-ppo",
    "sft_epochs": 1,
    "preference_prompts": 4,
    "completions_per_prompt": 2,
    "reward_epochs": 1,
    "iterations": 1,
    "batch_size": 4,
    "eval_prompts": 2,
    "eval_samples_per_prompt": 1,
    "max_new_tokens": 4,
}
"""The smallest whole run: a few seconds of stages."""


def flags(settings: dict[str, object]) -> list[str]:
    return [
        arg
        for name, value in settings.items()
        for arg in (f"--{name.replace('_', '-')}", str(value))
    ]


def command(*args: str) -> list[str]:
    """The ``rlhf-gym`` command line for ``args``, in this interpreter."""
    return [sys.executable, "-m", "rlhf_gym.cli", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def rlhf_gym(
    args: Sequence[str], stdin: str = "", cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``rlhf-gym args`` to the end."""
    return subprocess.run(
        command(*args), input=stdin, capture_output=True, text=True, timeout=timeout,
        env=environment(), cwd=cwd,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A non-zero exit with one ``error:`` line naming the fault, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def tiny_run_flags() -> list[str]:
    return flags(TINY_RUN)
