"""PreferencePair: one pairwise choice, the unit that reward models learn from, and the
Comparison a labeler is asked about."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

COLUMNS = ("prompt", "chosen", "rejected")
"""TRL's column names for preference data; ``margin`` is optional."""


@dataclass(frozen=True)
class PreferencePair:
    """A prompt, the response that was preferred and the one that was not.

    ``margin`` (optional, >= 0) says how strongly ``chosen`` won; the Bradley–Terry loss can
    demand that the reward gap exceed it.
    """

    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None

    def __post_init__(self) -> None:
        for name in COLUMNS:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string, got {type(value).__name__}: {value!r}")
        for name in ("chosen", "rejected"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} is empty for prompt {self.prompt!r}")
        if self.chosen == self.rejected:
            raise ValueError(f"chosen equals rejected ({self.chosen!r}): the pair says nothing")
        if self.margin is not None:
            if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)):
                raise TypeError(f"margin must be a number or None, got {self.margin!r}")
            if not math.isfinite(self.margin) or self.margin < 0:
                raise ValueError(f"margin must be finite and >= 0, got {self.margin!r}")

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {name: getattr(self, name) for name in COLUMNS}
        if self.margin is not None:
            record["margin"] = self.margin
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str = "record") -> PreferencePair:
        """Build a pair from a mapping with TRL's columns; ``where`` names it in errors.

        A record is data, so anything wrong with it (wrong types included) is a ``ValueError``.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"{where} is a {type(record).__name__}, expected a JSON object")
        missing = [name for name in COLUMNS if name not in record]
        if missing:
            raise ValueError(f"{where} lacks column(s) {missing}; expected {list(COLUMNS)}")
        try:
            return cls(*(record[name] for name in COLUMNS), margin=record.get("margin"))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from err


@dataclass(frozen=True)
class Comparison:
    """Two responses to one prompt, waiting for a label (``a`` and ``b`` in display order)."""

    prompt: str
    a: str
    b: str
