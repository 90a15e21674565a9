"""Shared fixtures: the tiny preset's tokenizer and model are built once per session."""

from __future__ import annotations

import pytest
import torch

import rlhf_gym  # noqa: F401  (registers the envs)
from rlhf_gym.models import load_model, load_tokenizer

# Tiny models run fastest on one thread, and a second thread only contends with other work.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return load_tokenizer("tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    return load_model("tiny", tiny_tokenizer)


@pytest.fixture
def installed_plugins(monkeypatch):
    """Pretend packages registered entry points: ``installed_plugins[group] = [EntryPoint...]``.

    Every registry (reward predictors, agents) reads entry points through ``rlhf_gym.plugins``.
    """
    import rlhf_gym.plugins

    plugins: dict[str, list] = {}
    monkeypatch.setattr(rlhf_gym.plugins, "entry_points", lambda *, group: plugins.get(group, []))
    return plugins


@pytest.fixture
def launch_data_parallel():
    """Run ``function(*args)`` in ``num_processes`` forked CPU processes joined in one gloo
    group (accelerate's ``debug_launcher``), as ``accelerate launch`` would; returns when all
    have finished and raises if one failed. Results come back through files."""
    from accelerate import debug_launcher
    from accelerate.state import AcceleratorState

    def launch(function, *args, num_processes: int = 2) -> None:
        def fresh(*inner_args):
            # A fork inherits this process's single-process accelerate state: start clean.
            AcceleratorState._reset_state(reset_partial_state=True)
            function(*inner_args)

        # Without it accelerate gives each CPU worker (cores / processes) threads, which
        # oversubscribes a small shared machine.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OMP_NUM_THREADS", "1")
            debug_launcher(fresh, args=args, num_processes=num_processes)

    return launch
