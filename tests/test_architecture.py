"""The layers of docs/architecture.md, enforced: each part imports only from the layers below
it (imports inside functions included), so the dependency graph stays one-way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UTILITIES = {"seeding", "validation", "lazy", "plugins", "distributed"}
ALLOWED = {
    "tasks": set(),
    "models": set(),
    "dialogue": set(),
    "rewards": {"dialogue", "models"},
    "preferences": {"models", "rewards"},
    "training": {"models", "preferences", "rewards"},
    "envs": {"dialogue", "models", "rewards", "tasks"},
    "registration": {"tasks"},
    "evaluation": {"models", "rewards", "training"},
    "agents": {"dialogue", "envs", "models", "rewards"},
    "pipeline": {
        "agents", "dialogue", "envs", "evaluation", "models", "preferences", "rewards", "tasks",
        "training",
    },
    "bench": {
        "agents", "dialogue", "envs", "evaluation", "models", "pipeline", "preferences",
        "rewards", "tasks", "training",
    },
    "commands": {"bench", "models", "pipeline", "preferences", "rewards", "tasks"},
    "cli": {"commands"},
    "__main__": {"cli"},
    "__init__": {"envs", "registration", "rewards", "tasks"},
}  # fmt: skip
"""What each part may import besides the utilities (``seeding``, ``validation``...)."""


def part_of(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("").parts
    return "agents" if relative[0] == "agents" else relative[1]


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module == "agents" or module.startswith("agents."):
                parts.add("agents")
            elif module.startswith("rlhf_gym."):
                parts.add(module.split(".")[1])
    return parts


def test_every_part_imports_only_from_the_layers_below():
    sources = [*(ROOT / "rlhf_gym").rglob("*.py"), *(ROOT / "agents").rglob("*.py")]
    violations = []
    for path in sources:
        part = part_of(path)
        if part in UTILITIES:
            assert imported_parts(path) <= UTILITIES, path
            continue
        assert part in ALLOWED, f"{path}: a new part; give it a layer in docs/architecture.md"
        extra = imported_parts(path) - ALLOWED[part] - UTILITIES - {part}
        violations += [f"{path.relative_to(ROOT)} imports {sorted(extra)}"] if extra else []
    assert not violations, violations
