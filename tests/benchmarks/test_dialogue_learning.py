"""benchmarks/dialogue_learning.py end to end on the tiny preset: it runs the dialogue pipeline,
then collects the held-out games, curves (with curve.png) and wall times into one result file;
run again on the same directory it only collects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SMALL = [
    "--model", "tiny", "--iterations", "2", "--batch-size", "4", "--eval-every", "1",
    "--probe-prompts", "4", "--eval-samples-per-prompt", "4", "--preference-prompts", "4",
    "--completions-per-prompt", "3", "--max-new-tokens", "4",
]  # fmt: skip


def _run(tmp_path: Path) -> dict:
    command = [
        sys.executable, str(ROOT / "benchmarks" / "dialogue_learning.py"), *SMALL,
        "--output-dir", str(tmp_path / "run"), "--results", str(tmp_path / "results"),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)
    return json.loads((tmp_path / "results" / "result.json").read_text())


def test_the_result_holds_both_policies_games_curves_and_times(tmp_path):
    result = _run(tmp_path)
    played = {k: p for k, p in result["evaluation"]["policies"].items() if "best-of" not in k}
    assert set(played) == {"before (reference)", "after (token-ppo)"}
    assert all(p["num_samples"] == 4 and 0 <= p["success_rate"] <= 1 for p in played.values())
    success = result["success"]
    for name, p in played.items():
        low, high = success[name]["ci95"]
        assert success[name]["games"] == 4 and low <= p["success_rate"] <= high
    assert 0 < success["after (token-ppo)"]["fisher_p_vs_reference"] <= 1
    assert [p["iteration"] for p in result["heldout_curve"]] == [0, 1, 2]
    assert len(result["training_curve"]) == 2
    seconds = result["stage_seconds"]
    assert 0 < result["agent_training_seconds"] <= seconds["agent-token-ppo"]
    assert result["command"].split()[1].endswith("dialogue_learning.py")
    assert all((tmp_path / "results" / f).is_file() for f in ("report.md", "curve.png"))
    # a second call resumes the finished run: the same figures, nothing trained again
    again = _run(tmp_path)
    assert again["stage_seconds"] == seconds and again["evaluation"] == result["evaluation"]
