"""Resumable stages: each writes into its own directory, which appears only when it is finished.

A stage runs in ``<out>/<name>.partial`` and is renamed to ``<out>/<name>`` with a ``DONE.json``
marker at the end, so an interrupted run leaves no half-written stage behind: the next run finds
the ``.partial`` directory, says so, and redoes only that stage. A finished stage is skipped
unless forced; a stage that runs (forced or not) makes every stage that depends on it run too.
The marker records every output file's size and SHA-256; a finished stage whose files no longer
match (cut, deleted, rewritten) is refused with the command that redoes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGES = ("sft", "preferences", "reward", "agent", "evaluate", "report")
"""The stages of ``rlhf-gym run``; with several agents there is one ``agent-<name>`` each."""
DONE_FILE = "DONE.json"
LOCK_FILE = ".lock"
"""Held (``flock``) by the run that owns the output directory; it holds that process's pid."""


def agent_stage(agent: str) -> str:
    """The stage that trains ``agent`` (``"agent-token-ppo"``...)."""
    return f"agent-{agent}"


class StageError(RuntimeError):
    """A stage's output is missing, corrupt or stale; the message says what to do."""


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Path], dict[str, Any]]
    """Writes the stage's files into the given directory; returns a JSON-able summary."""
    depends_on: tuple[str, ...] = ()
    fingerprint: str = ""
    """What the stage's output depends on (its settings); a change needs ``--force``."""


def dependents(stages: Sequence[Stage], roots: set[str]) -> set[str]:
    """``roots`` and every stage that depends on one of them, directly or not."""
    closed = set(roots)
    for stage in stages:  # stages are in dependency order, so one pass suffices
        if closed & set(stage.depends_on):
            closed.add(stage.name)
    return closed


class StageRunner:
    """Runs stages in order into ``output_dir``, skipping finished ones."""

    def __init__(
        self,
        output_dir: str | Path,
        stages: Sequence[Stage],
        log: Callable[[str], None] = print,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        names = [stage.name for stage in stages]
        for stage in stages:
            unknown = [d for d in stage.depends_on if d not in names[: names.index(stage.name)]]
            if unknown:
                raise ValueError(f"stage {stage.name!r} depends on {unknown}, not earlier stages")
        self.output_dir = Path(output_dir)
        self.stages = list(stages)
        self.log = log
        self.defaults = json.loads(json.dumps(dict(defaults or {})))
        """Settings a (JSON object) fingerprint may lack: a stage finished before a setting
        existed counts as made with that setting's default."""

    def path(self, name: str) -> Path:
        return self.output_dir / name

    def summary(self, name: str) -> dict[str, Any]:
        """The summary a finished stage returned; raises :class:`StageError` if unreadable."""
        return self._marker(name)["summary"]

    def seconds(self, name: str) -> float:
        """The wall time a finished stage took."""
        return float(self._marker(name)["seconds"])

    def run(self, force: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(force) - {s.name for s in self.stages})
        if unknown:
            raise ValueError(
                f"unknown stage(s) {unknown}; stages are {[s.name for s in self.stages]}"
            )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.output_dir / LOCK_FILE):
            return self._run_unlocked(force)

    def _run_unlocked(self, force: Sequence[str]) -> dict[str, dict[str, Any]]:
        redo = dependents(self.stages, set(force))
        done = self._finished_and_current(redo)  # verified before anything is deleted
        for name in [s.name for s in self.stages if s.name in redo]:
            shutil.rmtree(self.path(name), ignore_errors=True)
        for position, stage in enumerate(self.stages, start=1):
            header = f"[{position}/{len(self.stages)}] {stage.name}"
            if stage.name in done:
                self.log(f"{header}: done earlier, skipped ({self.path(stage.name)})")
                continue
            shutil.rmtree(self.path(stage.name), ignore_errors=True)  # stale: its inputs change
            self._run_stage(stage, header)
        return {stage.name: self.summary(stage.name) for stage in self.stages}

    def _finished_and_current(self, redo: set[str]) -> set[str]:
        """The stages this run skips: finished, verified, not forced, and with no input that
        will be made anew. A finished stage whose settings or files changed raises here, before
        the run deletes or spends anything."""
        will_run, done = set(redo), set()
        for stage in self.stages:
            if stage.name in will_run or will_run & set(stage.depends_on):
                will_run.add(stage.name)
            elif self._is_done(stage):
                done.add(stage.name)
            else:
                will_run.add(stage.name)
        return done

    def _is_done(self, stage: Stage) -> bool:
        if not self.path(stage.name).exists():
            return False
        marker = self._marker(stage.name)
        recorded = marker.get("fingerprint")
        if not _same_settings(recorded, stage.fingerprint, self.defaults):
            raise StageError(
                f"stage {stage.name!r} in {self.path(stage.name)} was made with other settings "
                f"({recorded!r}, now {stage.fingerprint!r}); rerun with --force {stage.name} "
                "to redo it, or choose another output directory"
            )
        changed = _changed_files(self.path(stage.name), marker.get("files"))
        if changed:
            raise StageError(
                f"the output of stage {stage.name!r} in {self.path(stage.name)} changed since "
                f"it finished ({', '.join(changed)}); rerun with --force {stage.name} to redo it"
            )
        return True

    def _marker(self, name: str) -> dict[str, Any]:
        marker = self.path(name) / DONE_FILE
        try:
            content = json.loads(marker.read_text(encoding="utf-8"))
            if not isinstance(content, dict) or not isinstance(content.get("summary"), dict):
                raise TypeError("the marker needs a JSON object with a 'summary' object")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StageError(
                f"the output of stage {name!r} in {self.path(name)} is corrupt or incomplete "
                f"({type(err).__name__}: {err}); rerun with --force {name} to redo it"
            ) from err
        return content

    def _run_stage(self, stage: Stage, header: str) -> None:
        staging = self.output_dir / f"{stage.name}.partial"
        if staging.exists():
            self.log(f"{header}: an earlier run was interrupted here; redoing this stage")
            shutil.rmtree(staging)
        staging.mkdir()
        self.log(f"{header}: running")
        started = time.perf_counter()
        summary = stage.run(staging)
        seconds = time.perf_counter() - started
        marker = {
            "stage": stage.name,
            "fingerprint": stage.fingerprint,
            "seconds": seconds,
            "summary": summary,
            "files": _manifest(staging),
        }
        (staging / DONE_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        staging.rename(self.path(stage.name))
        self.log(f"{header}: finished in {seconds:.1f} s")


def _same_settings(recorded: Any, current: str, defaults: Mapping[str, Any]) -> bool:
    """Whether a recorded fingerprint matches the current one: equal, or JSON objects that
    differ only by settings added since, each at its default."""
    if recorded == current:
        return True
    try:
        old, new = json.loads(recorded), json.loads(current)
    except (TypeError, ValueError):
        return False
    if not (isinstance(old, dict) and isinstance(new, dict)) or not set(old) <= set(new):
        return False
    added = set(new) - set(old)
    return all(old[k] == new[k] for k in old) and all(
        k in defaults and new[k] == defaults[k] for k in added
    )


def _manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file under ``directory`` (the marker itself excluded)."""
    return {
        str(path.relative_to(directory)): {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != DONE_FILE
    }


def _changed_files(directory: Path, recorded: dict[str, dict[str, Any]] | None) -> list[str]:
    """Recorded files that are missing, or whose size or content differs."""
    if recorded is None:  # a marker written before manifests existed: nothing to check
        return []
    changed = []
    for name, expected in recorded.items():
        path = directory / name
        if not path.is_file():
            changed.append(f"{name} is missing")
        elif path.stat().st_size != expected["size"] or _sha256(path) != expected["sha256"]:
            changed.append(f"{name} differs")
    return changed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """One run per output directory: a second one stops, naming the process that holds it.
    (The kernel drops an ``flock`` when its process dies, so a killed run leaves no stale lock.)"""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StageError(
                f"another run (pid {holder}) is using {path.parent}; wait for it to finish or "
                "choose another output directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
