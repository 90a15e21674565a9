"""A preference store shared by every labeler: the terminal one, a future web page, simulations.

A store is a directory of two append-only JSONL files:

* ``comparisons.jsonl``: the queue, one ``{"id", "prompt", "a", "b"}`` per line. The id is a
  hash of the content, so adding the same comparison twice is a no-op.
* ``labels.jsonl``: one ``{"id", "choice", "labeler", "time"}`` per line, ``choice`` being
  ``"a"``, ``"b"`` or ``"skip"``.

Every label is appended with a single ``write`` on a file opened with ``O_APPEND``, under an
exclusive ``flock``, so several labelers (processes) can share a store on a local disk; a crash
loses at most the line being written. Before appending, a tail cut by such a crash (bytes after
the last newline) is moved to ``<file>.cut`` with a warning, so the next line never glues onto
it. Reading skips a line that is not valid JSON with a warning naming it, and keeps the rest.
A comparison with any label is done, so a labeler resumes at the first one without. When a
comparison has several labels, the latest wins.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from rlhf_gym.preferences.collection import Comparison
from rlhf_gym.preferences.io import write_jsonl
from rlhf_gym.preferences.pair import PreferencePair

CHOICES = ("a", "b", "skip")


def comparison_id(comparison: Comparison) -> str:
    """A stable id from the content: the same prompt and responses always get the same id."""
    digest = hashlib.sha1("\0".join((comparison.prompt, comparison.a, comparison.b)).encode())
    return digest.hexdigest()[:16]


class PreferenceStore:
    """A labeling queue and its labels, in ``directory`` (created on first write)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.comparisons_path = self.directory / "comparisons.jsonl"
        self.labels_path = self.directory / "labels.jsonl"

    def add(self, comparisons: Iterable[Comparison]) -> int:
        """Queue comparisons not already in the store; return how many were new."""
        known = set(self.comparisons())
        records = []
        for comparison in comparisons:
            cid = comparison_id(comparison)
            if cid not in known:
                known.add(cid)
                records.append({"id": cid, **vars(comparison)})
        _append(self.comparisons_path, records)
        return len(records)

    def record(self, cid: str, choice: str, labeler: str = "human") -> None:
        """Append one label; ``choice`` is ``"a"``, ``"b"`` or ``"skip"``."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
        if cid not in self.comparisons():
            raise KeyError(f"no comparison with id {cid!r} in {self.comparisons_path}")
        record = {"id": cid, "choice": choice, "labeler": labeler, "time": time.time()}
        _append(self.labels_path, [record])

    def comparisons(self) -> dict[str, Comparison]:
        """Every queued comparison by id, in the order added."""
        return {
            r["id"]: Comparison(r["prompt"], r["a"], r["b"]) for r in _read(self.comparisons_path)
        }

    def labels(self) -> dict[str, str]:
        """The latest choice for each labeled comparison id."""
        return {r["id"]: r["choice"] for r in _read(self.labels_path)}

    def pending(self) -> list[tuple[str, Comparison]]:
        """Comparisons without a label yet, in queue order: where a labeler resumes."""
        done = self.labels()
        return [(cid, c) for cid, c in self.comparisons().items() if cid not in done]

    def pairs(self) -> list[PreferencePair]:
        """The labeled comparisons as preference pairs (skips left out)."""
        comparisons = self.comparisons()
        pairs = []
        for cid, choice in self.labels().items():
            c = comparisons.get(cid)
            if c is None or choice == "skip":
                continue
            chosen, rejected = (c.a, c.b) if choice == "a" else (c.b, c.a)
            pairs.append(PreferencePair(c.prompt, chosen, rejected))
        return pairs

    def export_jsonl(self, path: str | Path) -> int:
        """Write the labeled pairs as TRL-style JSONL (atomically); return the count."""
        return write_jsonl(path, self.pairs())


def _append(path: Path, records: list[dict]) -> None:
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # repair and append as one step among processes
        _quarantine_cut_tail(fd, path)
        os.write(fd, data)
    finally:
        os.close(fd)  # releases the lock


def _quarantine_cut_tail(fd: int, path: Path) -> None:
    """Move the bytes after the last newline (a line cut by a crash) to ``<path>.cut``."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = size
    while start > 0 and b"\n" not in os.pread(fd, 1, start - 1):
        start -= 1
    tail = os.pread(fd, size - start, start)
    side = path.with_name(path.name + ".cut")
    with open(side, "ab") as file:
        file.write(tail + b"\n")
    os.ftruncate(fd, start)
    warnings.warn(
        f"{path} ended in a line cut by a crash ({len(tail)} bytes); moved it to {side}",
        stacklevel=3,
    )


def _read(path: Path) -> Iterator[dict]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.endswith("\n"):
                return  # a line cut by a crash mid-write: ignore it
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    warnings.warn(
                        f"{path}:{number} is not valid JSON ({err.msg}); skipped", stacklevel=3
                    )
