"""One way every config checks its values (``RunConfig``, the trainers' configs, TokenPPO's):
an error names the field, what it must be, and what it got."""

from __future__ import annotations

import math
from typing import Any


def require(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise ``ValueError("{name} must be {expected}, got {value!r}")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def require_positive(config: Any, *names: str) -> None:
    """Each named field is a finite number > 0 (or None, where None means a default)."""
    for name in names:
        value = getattr(config, name)
        if value is not None:
            require(name, value, _is_finite(value) and value > 0, "positive")


def require_non_negative(config: Any, *names: str) -> None:
    """Each named field is a finite number >= 0 (or None)."""
    for name in names:
        value = getattr(config, name)
        if value is not None:
            require(name, value, _is_finite(value) and value >= 0, ">= 0")


def require_in(config: Any, name: str, low: float, high: float, high_open: bool = False) -> None:
    """The field lies in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    value = getattr(config, name)
    inside = _is_finite(value) and low <= value and (value < high if high_open else value <= high)
    require(name, value, inside, f"in [{low:g}, {high:g}{')' if high_open else ']'}")


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
