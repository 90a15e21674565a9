"""Resumable stages: each writes into its own directory, which appears only when it is finished.

A stage runs in ``<out>/<name>.partial`` and is renamed to ``<out>/<name>`` with a ``DONE.json``
marker at the end, so an interrupted run leaves no half-written stage behind: the next run finds
the ``.partial`` directory, says so, and redoes only that stage. A finished stage is skipped
unless forced; a stage that runs (forced or not) makes every stage that depends on it run too.
The marker records every output file's size and SHA-256; a finished stage whose files no longer
match (cut, deleted, rewritten) is refused with the command that redoes it.

Under a data-parallel launcher (``accelerate launch``, ``torchrun``) every process runs the
runner: rank 0 decides what to run, holds the lock and writes every stage's directory; a
``data_parallel`` stage runs in all processes (its trainer shares the batch among them), each
other process writing into a scratch directory it then deletes; any other stage runs on rank 0
while the others wait.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlhf_gym.distributed import DataParallel

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
    data_parallel: bool = False
    """Runs in every data-parallel process (a trainer that shares its batch among them)
    rather than on rank 0 alone."""


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
        retired: Mapping[str, Any] | None = None,
        processes: DataParallel | None = None,
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
        self.retired = dict(retired or {})
        """Settings an older fingerprint may hold that the current one lacks: ``None`` for one
        that no longer changes the output, its new name for one renamed (the values must be
        equal), or a mapping of those inside a nested object of settings."""
        """Settings a (JSON object) fingerprint may lack: a stage finished before a setting
        existed counts as made with that setting's default."""
        self.processes = processes
        """The data-parallel group this runner is one process of; None: a single process."""
        self.is_main = processes is None or processes.is_main_process

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
        if not self.is_main:  # rank 0 holds the lock and decides
            return self._run_unlocked(force)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.output_dir / LOCK_FILE):
            return self._run_unlocked(force)

    def _run_unlocked(self, force: Sequence[str]) -> dict[str, dict[str, Any]]:
        done: set[str] = set()
        if self.is_main:
            redo = dependents(self.stages, set(force))
            done = self._finished_and_current(redo)  # verified before anything is deleted
            for name in [s.name for s in self.stages if s.name in redo]:
                shutil.rmtree(self.path(name), ignore_errors=True)
        if self.processes is not None:
            done = self.processes.gather_objects(done)[0]  # rank 0's plan
        for position, stage in enumerate(self.stages, start=1):
            header = f"[{position}/{len(self.stages)}] {stage.name}"
            if stage.name in done:
                self._say(f"{header}: done earlier, skipped ({self.path(stage.name)})")
                continue
            if self.is_main:  # stale: its inputs change
                shutil.rmtree(self.path(stage.name), ignore_errors=True)
            self._run_stage(stage, header)
        return {stage.name: self.summary(stage.name) for stage in self.stages}

    def _say(self, line: str) -> None:
        if self.is_main:
            self.log(line)

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
        if not _same_settings(recorded, stage.fingerprint, self.defaults, self.retired):
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
        if not self.is_main:
            self._run_elsewhere(stage)
            return
        staging = self.output_dir / f"{stage.name}.partial"
        if staging.exists():
            self.log(f"{header}: an earlier run was interrupted here; redoing this stage")
            shutil.rmtree(staging)
        staging.mkdir()
        self.log(f"{header}: running")
        started = time.perf_counter()
        summary = stage.run(staging)
        seconds = time.perf_counter() - started
        self._wait()  # the other processes' share of a data-parallel stage is done too
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
        self._wait()  # the stage's directory is in place for every process to read

    def _run_elsewhere(self, stage: Stage) -> None:
        """A process other than rank 0: its share of a data-parallel stage, in a scratch
        directory; then wait until rank 0 has put the stage's directory in place."""
        if stage.data_parallel:
            with tempfile.TemporaryDirectory(prefix=f"{stage.name}-") as scratch:
                stage.run(Path(scratch))
        self._wait()
        self._wait()

    def _wait(self) -> None:
        if self.processes is not None:
            self.processes.wait()


def _same_settings(
    recorded: Any, current: str, defaults: Mapping[str, Any], retired: Mapping[str, Any]
) -> bool:
    """Whether a recorded fingerprint matches the current one: equal, or JSON objects that
    differ only by settings added since (each at its default) and settings retired since."""
    if recorded == current:
        return True
    try:
        old, new = json.loads(recorded), json.loads(current)
    except (TypeError, ValueError):
        return False
    return _compatible(old, new, defaults, retired)


def _compatible(
    old: Any, new: Any, defaults: Mapping[str, Any], retired: Mapping[str, Any]
) -> bool:
    """``_same_settings`` on parsed values, nested objects (e.g. a trainer's settings) checked
    against their own entries of ``defaults`` and ``retired``."""
    if old == new:
        return True
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return False
    gone, added = set(old) - set(new), set(new) - set(old)
    renamed = {k: retired[k] for k in gone if isinstance(retired.get(k), str)}
    if any(k not in renamed and retired.get(k, ...) is not None for k in gone):
        return False
    if any(new.get(name, ...) != old[k] for k, name in renamed.items()):
        return False
    added -= set(renamed.values())
    if any(k not in defaults or new[k] != defaults[k] for k in added):
        return False
    return all(
        _compatible(old[k], new[k], _inner(defaults, k), _inner(retired, k))
        for k in set(old) & set(new)
    )


def _inner(settings: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = settings.get(key)
    return value if isinstance(value, dict) else {}


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
