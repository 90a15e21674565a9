"""Reading and writing preference data: JSONL files and Hugging Face ``datasets``.

Both use TRL's ``prompt`` / ``chosen`` / ``rejected`` columns (plus an optional ``margin``), so
existing preference data loads unchanged. Writes are atomic: a failed write leaves the old file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlhf_gym.preferences.pair import COLUMNS, PreferencePair

if TYPE_CHECKING:
    from datasets import Dataset


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, pairs: Iterable[PreferencePair]) -> int:
    """Write pairs as JSON lines (atomically); return how many were written."""
    return write_json_lines(path, (_checked(pair).to_dict() for pair in pairs))


def read_jsonl(path: str | Path) -> list[PreferencePair]:
    """Read pairs from JSON lines; blank lines are skipped, errors name the line."""
    return [PreferencePair.from_dict(record, where) for where, record in _records(path)]


def write_json_lines(path: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write any JSON objects (e.g. TRL's conversational preference records) as JSON lines,
    atomically; return how many were written."""
    lines = [json.dumps(dict(record), ensure_ascii=False) for record in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; blank lines are skipped, errors name the line."""
    records = []
    for where, record in _records(path):
        if not isinstance(record, dict):
            raise ValueError(f"{where} is a {type(record).__name__}, expected a JSON object")
        records.append(record)
    return records


def _records(path: str | Path) -> Iterator[tuple[str, Any]]:
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where} is not valid JSON: {err.msg}") from err


def to_dataset(pairs: Iterable[PreferencePair]) -> Dataset:
    """A ``datasets.Dataset`` with TRL's columns (and ``margin`` when every pair has one)."""
    from datasets import Dataset

    pairs = [_checked(pair) for pair in pairs]
    columns: dict[str, list[Any]] = {name: [getattr(p, name) for p in pairs] for name in COLUMNS}
    if pairs and all(p.margin is not None for p in pairs):
        columns["margin"] = [p.margin for p in pairs]
    return Dataset.from_dict(columns)


def from_dataset(dataset: Any) -> list[PreferencePair]:
    """Pairs from a ``datasets.Dataset`` (or any sequence of records) with TRL's columns."""
    names = getattr(dataset, "column_names", None)
    if names is not None:
        missing = [name for name in COLUMNS if name not in names]
        if missing:
            raise ValueError(f"dataset lacks column(s) {missing}; it has {list(names)}")
    return [PreferencePair.from_dict(row, f"row {i}") for i, row in enumerate(dataset)]


def load_preferences(source: str | Path | Any) -> list[PreferencePair]:
    """Pairs from a ``.jsonl`` path, a directory written by ``Dataset.save_to_disk``, or a
    ``datasets.Dataset`` / list of records."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            from datasets import load_from_disk

            return from_dataset(load_from_disk(str(path)))
        if not path.is_file():
            raise FileNotFoundError(f"no preference data at {path}")
        return read_jsonl(path)
    return from_dataset(source)


def _checked(pair: Any) -> PreferencePair:
    if not isinstance(pair, PreferencePair):
        raise TypeError(f"expected PreferencePair, got {type(pair).__name__}: {pair!r}")
    return pair
