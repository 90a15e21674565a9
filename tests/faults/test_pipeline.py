"""``rlhf-gym run`` under faults: killed mid-stage, two runs on one directory, outputs cut or
deleted, inputs rewritten, bad settings (issue 11, items 2-6 and 12)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest

from rlhf_gym.cli import main
from rlhf_gym.pipeline.config import RunConfig
from rlhf_gym.pipeline.run import Pipeline
from rlhf_gym.pipeline.stages import StageError

from .conftest import TINY_RUN, assert_one_line_error, command, environment, flags

LONG_AGENT = {**TINY_RUN, "iterations": 40}  # an agent stage long enough to be caught running


def run_in_process(out, log=None, force=(), **settings):
    config = RunConfig(output_dir=str(out), **{**TINY_RUN, **settings})
    return Pipeline(config, log=log or (lambda _: None)).run(force)


def metrics(out) -> dict:
    """The report's metrics without wall-clock speeds, which no two runs share."""
    result = json.loads((out / "report" / "metrics.json").read_text())
    for agent in result["agents"].values():
        agent.pop("episodes_per_second")
    return result


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    run_in_process(out)
    return out


@pytest.fixture
def copy_of(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "run")


def test_sigkill_mid_stage_then_resume_redoes_only_that_stage_with_identical_metrics(tmp_path):
    """Items 6 and the resume guarantee: while a run is in its agent stage, a second run on the
    directory is refused naming the first's pid and deletes nothing; SIGKILL the first, and the
    rerun redoes only the killed stage (and those after it) with the metrics of a clean run."""
    out = tmp_path / "killed"
    process = subprocess.Popen(
        command("run", "--output-dir", str(out), *flags(LONG_AGENT)),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment(),
    )  # fmt: skip
    try:
        for line in process.stdout:
            if "agent-token-ppo: running" in line:
                break
        else:
            pytest.fail(f"the run ended before its agent stage (exit {process.wait()})")
        with pytest.raises(StageError, match=rf"another run \(pid {process.pid}\) is using"):
            run_in_process(out, **LONG_AGENT)
        assert (out / "agent-token-ppo.partial").is_dir()  # the live stage was left alone
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (out / "agent-token-ppo").exists()  # killed: not marked finished
    logs: list[str] = []
    run_in_process(out, log=logs.append, **LONG_AGENT)
    skipped = [line.split()[1].rstrip(":") for line in logs if "skipped" in line]
    assert skipped == ["sft", "preferences", "reward"]
    assert any("interrupted here; redoing" in line for line in logs)
    reference = tmp_path / "clean"
    run_in_process(reference, **LONG_AGENT)
    assert metrics(out) == metrics(reference)


def test_pairs_cut_at_a_line_boundary_are_refused_before_training_on_them(copy_of):
    """Item 3: 2 of the pairs left, ``--force reward`` must not train on them."""
    pairs = copy_of / "preferences" / "pairs.jsonl"
    pairs.write_text("".join(pairs.read_text().splitlines(keepends=True)[:2]))
    with pytest.raises(StageError, match=r"stage 'preferences'.*pairs\.jsonl.*--force preferences"):
        run_in_process(copy_of, force=("reward",))
    assert (copy_of / "reward" / "DONE.json").is_file()  # refused before deleting anything


def test_a_deleted_reward_model_file_is_noticed_by_a_plain_rerun(copy_of):
    """Item 3: the weights gone, the stages that use them must not be skipped as finished."""
    (copy_of / "reward" / "model" / "model.safetensors").unlink()
    with pytest.raises(StageError, match=r"stage 'reward'.*model\.safetensors is missing.*--force"):
        run_in_process(copy_of)


def test_human_labels_rewritten_in_place_are_not_trained_on_silently(tmp_path):
    """Item 2: same path, new content: the rerun must not skip the stages they feed."""
    labels = tmp_path / "labels.jsonl"
    rows = [
        {"prompt": f"p{i % 3}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)
    ]
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"human_labels": str(labels), "sft": False}
    run_in_process(tmp_path / "run", **settings)
    labels.write_text(
        "".join(
            json.dumps({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) + "\n" for r in rows
        )
    )
    with pytest.raises(
        StageError, match=r"stage 'preferences'.*other settings.*--force preferences"
    ):
        run_in_process(tmp_path / "run", **settings)
    run_in_process(tmp_path / "run", force=("preferences",), **settings)
    stored = (tmp_path / "run" / "preferences" / "pairs.jsonl").read_text()
    assert json.loads(stored.splitlines()[0])["chosen"] == "bad 0"


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--kl-coef", "inf"], ["kl_coef must be a finite number"]),  # item 4
        (["--learning-rate", "nan"], ["learning_rate must be a finite number"]),
        (["--eval-prompts", "0"], ["eval_prompts must be positive"]),  # item 5
        (["--eval-prompts", "-5"], ["eval_prompts must be positive"]),
        (["--threads", "-1"], ["threads must be positive"]),  # item 12
        (["--learning-rate", "-1"], ["learning_rate must be positive"]),
        (["--num-mini-batches", "3"], ["batch_size must be divisible", "got 4"]),
        (["--freeze-layers", "5"], ["freeze_layers=5 exceeds the 2 layers"]),
        (["--agent", "sb3-ppo", "--temperature", "0.7"], ["the SB3 agents sample at 1"]),
    ],
)
def test_bad_settings_fail_in_one_line_before_any_stage_touches_a_finished_run(
    copy_of, capsys, extra, fragments
):
    """Items 4, 5 and 12: refused up front, even with ``--force agent``, which used to delete
    the finished agent before its settings were checked."""
    before = (copy_of / "agent-token-ppo" / "DONE.json").read_bytes()
    started = time.perf_counter()
    code = main(["run", "--output-dir", str(copy_of), *flags(TINY_RUN), "--force", "agent", *extra])
    assert code == 2 and time.perf_counter() - started < 5
    assert_one_line_error(CapturedRun(code, capsys.readouterr()), *fragments)
    assert (copy_of / "agent-token-ppo" / "DONE.json").read_bytes() == before


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ({"batch_size": "16"}, ["batch_size must be int, got '16'"]),
        ({"kl_coef": None}, ["kl_coef must be float, got None"]),
    ],
)
def test_wrong_types_in_a_config_file_are_one_line_errors(tmp_path, capsys, config, fragments):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    code = main(["run", "--output-dir", str(tmp_path / "run"), "--config", str(path)])
    assert_one_line_error(CapturedRun(code, capsys.readouterr()), *fragments)
    assert not (tmp_path / "run").exists()


def test_a_human_labels_line_of_the_wrong_type_is_a_one_line_error_naming_it(tmp_path, capsys):
    labels = tmp_path / "labels.jsonl"
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"prompt": 5, "chosen": "a", "rejected": "b"},
    ]
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code = main(["run", "--output-dir", str(tmp_path / "run"), "--human-labels", str(labels)])
    assert_one_line_error(
        CapturedRun(code, capsys.readouterr()), "labels.jsonl:2: prompt must be a string"
    )
    assert not (tmp_path / "run" / "sft").exists()  # found before the first stage


@pytest.mark.parametrize(
    "damage",
    [
        lambda marker: [1, 2],
        lambda marker: {**marker, "summary": 5},  # the right fingerprint, a broken summary
        lambda marker: {key: v for key, v in marker.items() if key != "summary"},
    ],
)
def test_a_valid_json_but_wrong_done_marker_is_a_corrupt_stage_error(copy_of, capsys, damage):
    """Item 12: used to be a traceback (``'list' object has no attribute 'get'``...)."""
    path = copy_of / "reward" / "DONE.json"
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    code = main(["run", "--output-dir", str(copy_of), *flags(TINY_RUN)])
    assert_one_line_error(
        CapturedRun(code, capsys.readouterr()), "stage 'reward'", "is corrupt", "--force reward"
    )


class CapturedRun(subprocess.CompletedProcess):
    """An in-process ``main`` call shaped like a finished subprocess, for the shared checks."""

    def __init__(self, code: int, captured) -> None:
        super().__init__([], code, captured.out, captured.err)
