"""stable-baselines3 plug-in: a causal-LM actor-critic policy, KL control and NLPO masks.

``MaskableCausalLMPolicy`` and ``TopPMaskWrapper`` need ``sb3-contrib``; like the other names
they are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CausalLMPolicy": "agents.sb3.policy",
    "KLPenaltyCallback": "agents.sb3.kl_callback",
    "ReferenceModel": "agents.sb3.reference",
    "MaskableCausalLMPolicy": "agents.sb3.maskable",
    "TopPMaskWrapper": "agents.sb3.maskable",
    "top_p_mask": "agents.sb3.maskable",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents.sb3' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
