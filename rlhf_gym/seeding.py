"""Independent random streams from one user seed.

One seed feeds many random consumers (which prompts are used, the display order of a pair, the
simulated labeler's coin, which prompts are held out, sampling, shuffling). If two of them drew
from ``np.random.default_rng(seed)`` they would draw the *same* numbers, and the correlation
between them becomes a signal a model can learn (a labeler whose coin equals the display-order
coin prefers whichever completion was sampled first). Each consumer therefore draws from its own
stream, named by its purpose: ``SeedSequence(seed, spawn_key=(hash(purpose),))``. Naming rather
than spawning by position means adding a consumer never changes another consumer's draws.
"""

from __future__ import annotations

import hashlib

import numpy as np


def seed_sequence(seed: int, purpose: str) -> np.random.SeedSequence:
    """The seed sequence of ``purpose``'s stream under the user ``seed``."""
    if not purpose:
        raise ValueError("a random stream needs a non-empty purpose name")
    key = int.from_bytes(hashlib.sha256(purpose.encode("utf-8")).digest()[:8], "little")
    return np.random.SeedSequence(int(seed), spawn_key=(key,))


def numpy_rng(seed: int, purpose: str) -> np.random.Generator:
    """A numpy ``Generator`` on ``purpose``'s own stream."""
    return np.random.default_rng(seed_sequence(seed, purpose))


def derived_seed(seed: int, purpose: str) -> int:
    """An integer seed (0 <= s < 2**32) for ``purpose``, for APIs that take an int
    (``torch.manual_seed``, ``env.reset(seed=...)``, SB3's ``seed``, whose legacy numpy
    seeding refuses 2**32 and above)."""
    return int(seed_sequence(seed, purpose).generate_state(1)[0])
