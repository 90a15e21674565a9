"""Shared fixtures: the tiny preset's tokenizer and model are built once per session."""

from __future__ import annotations

import pytest
import torch

import rlhf_gym  # noqa: F401  (registers the envs)
from rlhf_gym.models import load_model, load_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return load_tokenizer("tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    return load_model("tiny", tiny_tokenizer)


@pytest.fixture(autouse=True)
def _single_thread_torch():
    # Tiny models run faster on one thread, and tests then leave the second core to pytest-xdist.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
