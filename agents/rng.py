"""Random-number state shared by the native agents: seeding the global generators from one seed
and saving / restoring their states, so a resumed run continues bit for bit."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from rlhf_gym.seeding import derived_seed


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators, each from its own stream of
    ``seed``: torch's and numpy's legacy generators are both MT19937, and seeded with the same
    integer they would produce the same numbers."""
    random.seed(derived_seed(seed, "python-global"))
    np.random.seed(derived_seed(seed, "numpy-global"))
    torch.manual_seed(derived_seed(seed, "torch-global"))


def rng_state() -> dict[str, Any]:
    """The states of python's, numpy's, torch's (and CUDA's) global generators."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_from_state(bit_generator_state: dict[str, Any]) -> np.random.Generator:
    """A numpy generator that continues exactly from a saved ``bit_generator.state``."""
    generator = np.random.Generator(np.random.PCG64())
    generator.bit_generator.state = bit_generator_state
    return generator
