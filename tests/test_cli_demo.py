"""`rlhf-gym demo`: a few random-agent episodes printed with their rewards."""

from __future__ import annotations

import ast
import re

import pytest

from rlhf_gym.cli import main
from rlhf_gym.rewards import make_reward_predictor
from rlhf_gym.tasks import get_task

EPISODE = re.compile(
    r"\[(\d+)\] reward=([+-]\d\.\d{3}) eos=(True|False)\n"
    r"    prompt:     (.*)\n"
    r"    completion: (.*)\n"
)


def _demo(capsys, *args: str) -> list[tuple[str, ...]]:
    assert main(["demo", *args]) == 0
    out = capsys.readouterr().out
    episodes = EPISODE.findall(out)
    assert "".join(m.group(0) for m in EPISODE.finditer(out)) == out  # nothing else printed
    return episodes


def test_demo_prints_scored_episodes(capsys):
    episodes = _demo(capsys, "--episodes", "3", "--seed", "0")
    assert [e[0] for e in episodes] == ["0", "1", "2"]
    train = set(get_task("sentiment").prompts("train"))
    default_reward = make_reward_predictor(get_task("sentiment").default_reward)
    for _, reward, _, prompt, completion in episodes:
        assert prompt in train
        # The printed reward is the task's reward of the printed completion (no EOS penalty).
        expected = float(default_reward([prompt], [ast.literal_eval(completion)])[0])
        assert float(reward) == pytest.approx(expected, abs=2e-3)


def test_demo_is_deterministic_under_a_seed(capsys):
    first = _demo(capsys, "--episodes", "2", "--seed", "5")
    assert _demo(capsys, "--episodes", "2", "--seed", "5") == first
    assert _demo(capsys, "--episodes", "2", "--seed", "6") != first


def test_demo_rejects_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
