"""A preference store shared by every labeler: the terminal one, a web page, simulations.

A store is a directory of three append-only JSONL files:

* ``comparisons.jsonl``: the queue, one ``{"id", "prompt", "a", "b"}`` per line. The id is a
  hash of the content, so adding the same comparison twice is a no-op.
* ``labels.jsonl``: one ``{"id", "choice", "labeler", "time", "order"}`` per line (plus
  ``"seconds"`` when the labeler's time on it was measured). ``choice`` is ``"a"``, ``"b"``,
  ``"tie"`` or ``"skip"``, always about the stored ``a`` and ``b``; ``order`` is how they were
  shown: ``"ab"`` (``a`` first, or on the left) or ``"ba"``. An undo is a line
  ``{"id", "labeler", "time", "undo": true}``: it takes back that labeler's latest label of
  that comparison, so their label before it (if any) stands again.
* ``leases.jsonl``: one ``{"id", "holder", "expires"}`` per line. A labeling session *leases*
  a comparison before showing it, so two sessions never show the same one while the lease
  lives (``expires`` is a wall-clock time; a session that dies leaves a lease that simply runs
  out). The latest lease line of a comparison is its lease; ``expires`` 0 releases it.

Every append is a single ``write`` on a file opened with ``O_APPEND``, under an exclusive
``flock``, so several labelers (processes, threads of a server, several servers) can share a
store on a local disk; a crash loses at most the line being written. Before appending, a tail
cut by such a crash (bytes after the last newline) is moved to ``<file>.cut`` with a warning,
so the next line never glues onto it. Reading skips a line that is not valid JSON with a
warning naming it, and keeps the rest.

A comparison is done once ``labels_per_comparison`` labelers have labeled it (a skip counts: it
is that labeler's answer), and no labeler is handed one they labeled already. Labels are never
overwritten: a labeler's latest choice replaces only that labeler's earlier one, and when
labelers disagree every label is kept, each one a pair in :meth:`pairs`, and :meth:`conflicts`
lists them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rlhf_gym.preferences.io import write_jsonl
from rlhf_gym.preferences.pair import Comparison, PreferencePair

CHOICES = ("a", "b", "tie", "skip")
ORDERS = ("ab", "ba")
"""How a comparison was shown: ``"ab"`` puts ``a`` first (left), ``"ba"`` puts ``b`` first."""

_Standing = dict[str, dict[str, list[dict]]]
"""Label records still standing, by comparison id, then labeler (latest last)."""


def comparison_id(comparison: Comparison) -> str:
    """A stable id from the content: the same prompt and responses always get the same id."""
    digest = hashlib.sha1("\0".join((comparison.prompt, comparison.a, comparison.b)).encode())
    return digest.hexdigest()[:16]


class PreferenceStore:
    """A labeling queue, its leases and its labels, in ``directory`` (created on first write).

    ``labels_per_comparison`` is how many labelers each comparison goes to (2 or more give
    agreement statistics); ``clock`` gives wall-clock seconds for leases and labels (tests pass
    their own).
    """

    def __init__(
        self,
        directory: str | Path,
        clock: Callable[[], float] = time.time,
        labels_per_comparison: int = 1,
    ) -> None:
        if isinstance(labels_per_comparison, bool) or not (
            isinstance(labels_per_comparison, int) and labels_per_comparison >= 1
        ):
            raise ValueError(
                f"labels_per_comparison must be an integer >= 1, got {labels_per_comparison!r}"
            )
        self.directory = Path(directory)
        self.comparisons_path = self.directory / "comparisons.jsonl"
        self.labels_path = self.directory / "labels.jsonl"
        self.leases_path = self.directory / "leases.jsonl"
        self.clock = clock
        self.labels_per_comparison = labels_per_comparison

    def add(self, comparisons: Iterable[Comparison]) -> int:
        """Queue comparisons not already in the store; return how many were new."""
        with _locked(self.comparisons_path) as fd:
            known = {r["id"] for r in _read(self.comparisons_path)}
            records = []
            for comparison in comparisons:
                cid = comparison_id(comparison)
                if cid not in known:
                    known.add(cid)
                    records.append({"id": cid, **vars(comparison)})
            _append(fd, self.comparisons_path, records)
        return len(records)

    def record(
        self,
        cid: str,
        choice: str,
        labeler: str = "human",
        *,
        order: str = "ab",
        seconds: float | None = None,
    ) -> None:
        """Append one label: ``choice`` (``"a"``, ``"b"``, ``"tie"`` or ``"skip"``) about the
        stored ``a`` and ``b``, shown in ``order``, after ``seconds`` of the labeler's time."""
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
        if cid not in self.comparisons():
            raise KeyError(f"no comparison with id {cid!r} in {self.comparisons_path}")
        record = {
            "id": cid,
            "choice": choice,
            "labeler": labeler,
            "time": self.clock(),
            "order": order,
        }
        if seconds is not None:
            record["seconds"] = seconds
        with _locked(self.labels_path) as fd:
            _append(fd, self.labels_path, [record])

    def undo(self, labeler: str) -> str | None:
        """Take back ``labeler``'s latest label still standing; return its comparison id, or
        None when they have none. Each undo goes one label further back."""
        with _locked(self.labels_path) as fd:
            _, labeled = _replay(_read(self.labels_path))
            if not labeled.get(labeler):
                return None
            cid = labeled[labeler][-1]
            record = {"id": cid, "labeler": labeler, "time": self.clock(), "undo": True}
            _append(fd, self.labels_path, [record])
        return cid

    def lease(
        self,
        holder: str,
        seconds: float = 600.0,
        labeler: str | None = None,
        prefer: str | None = None,
    ) -> tuple[str, Comparison] | None:
        """Lease a pending comparison (of ``labeler``'s, when given) that no other holder has a
        live lease on, for ``seconds``; None when there is none. ``holder`` names one labeling
        session. It gets ``prefer`` if that one is free, else its own most recent live lease
        back (a reloaded page resumes), else the first free one in queue order."""
        if not seconds > 0:
            raise ValueError(f"a lease lasts a positive number of seconds, got {seconds!r}")
        with _locked(self.leases_path) as fd:
            now, live, pending = self.clock(), self._live_leases(), dict(self.pending(labeler))
            cid = _pick(list(pending), live, holder, prefer)
            if cid is None:
                return None
            _append(fd, self.leases_path, [{"id": cid, "holder": holder, "expires": now + seconds}])
        return cid, pending[cid]

    def release(self, cid: str, holder: str) -> None:
        """Give back ``holder``'s lease on ``cid`` (a no-op if it holds none)."""
        with _locked(self.leases_path) as fd:
            if self._live_leases().get(cid) == holder:
                _append(fd, self.leases_path, [{"id": cid, "holder": holder, "expires": 0}])

    def lease_holder(self, cid: str) -> str | None:
        """Who holds a live lease on ``cid``, or None."""
        return self._live_leases().get(cid)

    def _live_leases(self) -> dict[str, str]:
        """The holder of each comparison's unexpired lease, least recently leased first."""
        latest: dict[str, dict] = {}
        for r in _read(self.leases_path):
            latest.pop(r["id"], None)  # re-inserted: the order is that of the latest lines
            latest[r["id"]] = r
        now = self.clock()
        return {cid: r["holder"] for cid, r in latest.items() if r["expires"] > now}

    def comparisons(self) -> dict[str, Comparison]:
        """Every queued comparison by id, in the order added."""
        return {
            r["id"]: Comparison(r["prompt"], r["a"], r["b"]) for r in _read(self.comparisons_path)
        }

    def labels(self) -> dict[str, dict[str, str]]:
        """For each labeled comparison id, each labeler's latest choice not undone."""
        standing, _ = _replay(_read(self.labels_path))
        return {
            cid: {labeler: records[-1]["choice"] for labeler, records in by_labeler.items()}
            for cid, by_labeler in standing.items()
        }

    def conflicts(self) -> dict[str, dict[str, str]]:
        """The comparisons whose labelers chose differently (skips aside), with every choice."""
        return {
            cid: choices
            for cid, choices in self.labels().items()
            if len(set(choices.values()) - {"skip"}) > 1
        }

    def pending(self, labeler: str | None = None) -> list[tuple[str, Comparison]]:
        """Comparisons with fewer than ``labels_per_comparison`` labelers, in queue order (where
        a labeler resumes); for a ``labeler``, only those they have not labeled."""
        labels = self.labels()
        return [
            (cid, c)
            for cid, c in self.comparisons().items()
            if len(labels.get(cid, {})) < self.labels_per_comparison
            and labeler not in labels.get(cid, {})
        ]

    def pairs(self) -> list[PreferencePair]:
        """One preference pair per labeler's choice (ties and skips left out): labels that
        disagree are all kept, as Bradley–Terry expects of several noisy labelers."""
        comparisons = self.comparisons()
        pairs = []
        for cid, choices in self.labels().items():
            c = comparisons.get(cid)
            if c is None:
                continue
            for choice in choices.values():
                if choice in ("a", "b"):
                    chosen, rejected = (c.a, c.b) if choice == "a" else (c.b, c.a)
                    pairs.append(PreferencePair(c.prompt, chosen, rejected))
        return pairs

    def export_jsonl(self, path: str | Path) -> int:
        """Write the labeled pairs as TRL-style JSONL (atomically); return the count."""
        return write_jsonl(path, self.pairs())


def _pick(pending: list[str], live: dict[str, str], holder: str, prefer: str | None) -> str | None:
    """The comparison ``holder`` leases next among ``pending`` ids, given the ``live`` leases."""
    if prefer in pending and live.get(prefer, holder) == holder:
        return prefer
    own = [cid for cid, h in live.items() if h == holder and cid in pending]
    if own:
        return own[-1]
    return next((cid for cid in pending if cid not in live), None)


def _replay(records: Iterable[dict]) -> tuple[_Standing, dict[str, list[str]]]:
    """Label lines in file order, undos applied: the labels still standing by comparison id and
    labeler (latest last), and each labeler's labeled ids (latest last, one per standing label)."""
    standing: _Standing = {}
    labeled: dict[str, list[str]] = {}
    for r in records:
        stack = standing.setdefault(r["id"], {}).setdefault(r["labeler"], [])
        ids = labeled.setdefault(r["labeler"], [])
        if not r.get("undo"):
            stack.append(r)
            ids.append(r["id"])
        elif stack:
            stack.pop()
            del ids[len(ids) - 1 - ids[::-1].index(r["id"])]  # that id's latest entry
    standing = {
        cid: {labeler: stack for labeler, stack in by_labeler.items() if stack}
        for cid, by_labeler in standing.items()
    }
    return {cid: by_labeler for cid, by_labeler in standing.items() if by_labeler}, labeled


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    """An append-mode descriptor of ``path`` under an exclusive ``flock`` among processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _append(fd: int, path: Path, records: list[dict]) -> None:
    """Append ``records`` in one write, after repairing a cut tail (the caller holds the lock)."""
    if not records:
        return
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    _quarantine_cut_tail(fd, path)
    os.write(fd, data)


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
