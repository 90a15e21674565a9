"""Named extension points (reward predictors, agents): built-ins plus an entry-point group.

Built-ins are ``"module:attribute"`` strings, so naming one imports only its module; a
third-party package adds its own under the group in its packaging metadata, e.g.
``[project.entry-points."rlhf_gym.agents"] my-agent = "my_pkg.agent:MyAgent"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any


def load_object(target: str) -> Any:
    """The attribute named by a ``"module:attribute"`` string."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class Registry:
    """One extension point: its built-ins and its entry-point group (built-ins win a clash)."""

    kind: str
    """What it holds, for messages (``"agent"``)."""
    group: str
    builtins: Mapping[str, str]

    def names(self) -> list[str]:
        """Every registered name, sorted: built-ins and installed plug-ins."""
        return sorted(set(self.builtins) | {ep.name for ep in entry_points(group=self.group)})

    def find(self, name: str) -> Any | None:
        """The object registered as ``name``, or None."""
        if name in self.builtins:
            return load_object(self.builtins[name])
        found = [ep for ep in entry_points(group=self.group) if ep.name == name]
        return found[0].load() if found else None

    def get(self, name: str) -> Any:
        """The object registered as ``name``; an unknown name raises ``ValueError`` listing
        the known ones."""
        found = self.find(name)
        if found is None:
            raise ValueError(f"unknown {self.kind} {name!r}; expected one of {self.names()}")
        return found
