"""What every benchmark result records about where and how it ran, and the one way to write it.

Every file in ``benchmarks/results/`` starts with the same keys, then the benchmark's own::

    benchmark  the script's name ("env_throughput")
    command    the exact command line ("python benchmarks/env_throughput.py --repeats 5")
    date       when the result was written, UTC, ISO 8601
    machine    machine_info(): CPU, cores, torch threads, Python / torch / transformers versions
               (plus any the benchmark adds, e.g. trl)
    load       {"before": [1, 5, 15 min], "after": [1, 5, 15 min]}: the load averages when the
               measurement started and when it ended (before is null where it was not recorded)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

HEADER_KEYS = ("benchmark", "command", "date", "machine", "load")


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPU, cores, torch threads and versions, plus ``extra`` fields (other versions)."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        **extra,
    }


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages now: take one before measuring."""
    return list(os.getloadavg())


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that ran this script, quoted so that it can be pasted back into a shell."""
    return shlex.join([Path(sys.executable).name, *(sys.argv if argv is None else argv)])


def write_result(
    path: Path,
    results: dict[str, Any],
    *,
    load_before: Sequence[float] | None,
    argv: Sequence[str] | None = None,
    **machine_extra: Any,
) -> dict[str, Any]:
    """Write the header (HEADER_KEYS) and then ``results`` as JSON to ``path``; return it all.

    ``argv`` defaults to ``sys.argv``; ``machine_extra`` goes into ``machine``.
    """
    clash = sorted(set(HEADER_KEYS) & set(results))
    if clash:
        raise ValueError(f"result keys {clash} are reserved for the header {HEADER_KEYS}")
    argv = list(sys.argv if argv is None else argv)
    record = {
        "benchmark": Path(argv[0]).stem,
        "command": command_line(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(**machine_extra),
        "load": {
            "before": None if load_before is None else list(load_before),
            "after": load_average(),
        },
        **results,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=float) + "\n", encoding="utf-8")
    return record
