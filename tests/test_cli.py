"""The command line starts without the heavy libraries: help and argument errors are instant."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from rlhf_gym.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in ("torch", "transformers", "stable_baselines3") if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["run", "--help"], ["label", "--help"], ["serve-reward", "-h"]])
def test_help_imports_neither_torch_nor_transformers(argv):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "usage: rlhf-gym" in result.stdout
