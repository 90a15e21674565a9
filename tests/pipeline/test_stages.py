import fcntl
import json
import os
import shutil

import pytest

from rlhf_gym.pipeline.stages import DONE_FILE, Stage, StageError, StageRunner, dependents


def make_stages(calls, fail_at=None, fingerprint="v1"):
    def runner(name):
        def run(directory):
            calls.append(name)
            if name == fail_at:
                raise KeyboardInterrupt
            (directory / "out.txt").write_text(name)
            return {"name": name}

        return run

    return [
        Stage("a", runner("a"), fingerprint=fingerprint),
        Stage("b", runner("b"), depends_on=("a",)),
        Stage("c", runner("c"), depends_on=("b",)),
        Stage("d", runner("d")),
    ]


def test_runs_all_then_skips_finished(tmp_path):
    calls = []
    summaries = StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    assert calls == ["a", "b", "c", "d"]
    assert summaries["c"] == {"name": "c"}
    assert (tmp_path / "c" / "out.txt").read_text() == "c"
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    assert calls == ["a", "b", "c", "d"]


def test_force_redoes_the_stage_and_its_dependents_only(tmp_path):
    calls = []
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    calls.clear()
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run(force=["b"])
    assert calls == ["b", "c"]
    assert dependents(make_stages([]), {"a"}) == {"a", "b", "c"}


def test_interrupted_run_resumes_without_redoing_finished_stages(tmp_path):
    calls, messages = [], []
    with pytest.raises(KeyboardInterrupt):
        StageRunner(tmp_path, make_stages(calls, fail_at="b"), log=messages.append).run()
    assert (tmp_path / "a" / DONE_FILE).exists()
    assert (tmp_path / "b.partial").exists() and not (tmp_path / "b").exists()
    calls.clear()
    StageRunner(tmp_path, make_stages(calls), log=messages.append).run()
    assert calls == ["b", "c", "d"]
    assert any("interrupted" in m for m in messages)
    assert not (tmp_path / "b.partial").exists()


def test_a_stage_that_runs_makes_its_dependents_run(tmp_path):
    calls = []
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    shutil.rmtree(tmp_path / "b")  # e.g. a new stage, or one deleted by hand
    calls.clear()
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    assert calls == ["b", "c"]


def test_corrupt_output_gets_a_clear_message(tmp_path):
    StageRunner(tmp_path, make_stages([]), log=lambda _: None).run()
    (tmp_path / "b" / DONE_FILE).write_text("{not json")
    with pytest.raises(StageError, match=r"stage 'b'.*is corrupt or incomplete.*--force b"):
        StageRunner(tmp_path, make_stages([]), log=lambda _: None).run()
    for valid_json_but_wrong in ("[1, 2]", '{"summary": 5}', '{"stage": "b"}'):
        (tmp_path / "b" / DONE_FILE).write_text(valid_json_but_wrong)
        with pytest.raises(StageError, match=r"stage 'b'.*is corrupt or incomplete.*--force b"):
            StageRunner(tmp_path, make_stages([]), log=lambda _: None).run()
    (tmp_path / "b" / DONE_FILE).unlink()
    with pytest.raises(StageError, match="--force b"):
        StageRunner(tmp_path, make_stages([]), log=lambda _: None).run()


def test_changed_settings_are_refused(tmp_path):
    StageRunner(tmp_path, make_stages([]), log=lambda _: None).run()
    with pytest.raises(StageError, match=r"other settings.*--force a"):
        StageRunner(tmp_path, make_stages([], fingerprint="v2"), log=lambda _: None).run()
    marker = json.loads((tmp_path / "a" / DONE_FILE).read_text())
    assert marker["fingerprint"] == "v1"  # nothing was lost


def test_a_setting_added_since_a_stage_finished_counts_at_its_default(tmp_path):
    """A run finished before a setting existed resumes, unless the setting is now set otherwise."""
    old = json.dumps({"lr": 0.1})
    StageRunner(tmp_path, make_stages([], fingerprint=old), log=lambda _: None).run()
    defaults = {"lr": 0.5, "probes": None}
    calls = []
    at_default = json.dumps({"lr": 0.1, "probes": None})
    runner = StageRunner(
        tmp_path, make_stages(calls, fingerprint=at_default), lambda _: None, defaults
    )
    runner.run()
    assert calls == []  # nothing redone
    changed = json.dumps({"lr": 0.1, "probes": 4})
    with pytest.raises(StageError, match="was made with other settings"):
        StageRunner(tmp_path, make_stages([], fingerprint=changed), lambda _: None, defaults).run()
    unknown = json.dumps({"lr": 0.1, "other": 1})  # added, but not a known setting
    with pytest.raises(StageError, match="was made with other settings"):
        StageRunner(tmp_path, make_stages([], fingerprint=unknown), lambda _: None, defaults).run()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown stage"):
        StageRunner(tmp_path, make_stages([]), log=lambda _: None).run(force=["zzz"])
    with pytest.raises(ValueError, match="not earlier stages"):
        StageRunner(tmp_path, [Stage("x", lambda d: {}, depends_on=("y",))])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda path: path.write_text(""), "out.txt differs"),  # cut to nothing
        (lambda path: path.write_text("x"), "out.txt differs"),  # same size, other content
        (lambda path: path.unlink(), "out.txt is missing"),
    ],
)
def test_a_finished_stage_whose_output_changed_is_refused(tmp_path, damage, message):
    calls = []
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    damage(tmp_path / "a" / "out.txt")
    with pytest.raises(StageError, match=rf"stage 'a'.*{message}.*--force a"):
        StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run(force=("a",))
    assert (tmp_path / "a" / "out.txt").read_text() == "a"


def test_a_second_run_on_the_same_directory_is_refused_naming_the_holder(tmp_path):
    holder = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    os.write(holder, b"4242")
    fcntl.flock(holder, fcntl.LOCK_EX)  # another run owns the directory
    calls = []
    try:
        with pytest.raises(StageError, match=r"another run \(pid 4242\) is using"):
            StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()
        assert calls == []  # nothing ran, nothing was deleted
    finally:
        os.close(holder)
    StageRunner(tmp_path, make_stages(calls), log=lambda _: None).run()  # released: it runs
    assert calls == ["a", "b", "c", "d"]
    assert (tmp_path / ".lock").read_text() == str(os.getpid())


def _stages_in_two_processes(out, log_dir):
    from rlhf_gym.distributed import DataParallel

    processes = DataParallel()
    rank = processes.rank

    def stage(name):
        def run(directory):
            with open(log_dir / f"{name}.log", "a") as log:  # which ranks ran it, and where
                log.write(f"{rank} {directory.parent == out}\n")
            # a later stage reads an earlier one's output: it must be in place on every rank
            upstream = {"b": "a", "c": "b"}.get(name)
            seen = (out / upstream / "out.txt").read_text() if upstream else ""
            (directory / "out.txt").write_text(name + seen)
            return {"name": name, "rank": rank}

        return run

    stages = [
        Stage("a", stage("a"), data_parallel=True),
        Stage("b", stage("b"), depends_on=("a",)),
        Stage("c", stage("c"), depends_on=("b",), data_parallel=True),
    ]
    summaries = StageRunner(out, stages, log=lambda _: None, processes=processes).run()
    (log_dir / f"summaries{rank}.json").write_text(json.dumps(summaries))


def test_data_parallel_stages_run_everywhere_and_the_rest_on_rank_zero(
    tmp_path, launch_data_parallel
):
    out, logs = tmp_path / "run", tmp_path / "logs"
    logs.mkdir()
    launch_data_parallel(_stages_in_two_processes, out, logs)
    ran = {name: sorted((logs / f"{name}.log").read_text().split("\n")[:-1]) for name in "abc"}
    # rank 0 writes into the stage's directory, rank 1 into a scratch directory elsewhere
    assert ran == {"a": ["0 True", "1 False"], "b": ["0 True"], "c": ["0 True", "1 False"]}
    assert (out / "c" / "out.txt").read_text() == "cba"
    for rank in range(2):  # every process returns rank 0's summaries
        summaries = json.loads((logs / f"summaries{rank}.json").read_text())
        assert summaries == {n: {"name": n, "rank": 0} for n in "abc"}
    assert not list(out.glob("*.partial"))

    launch_data_parallel(_stages_in_two_processes, out, logs)  # all finished: skipped
    assert sorted((logs / "a.log").read_text().split("\n")[:-1]) == ["0 True", "1 False"]


def test_a_stage_made_before_trainer_settings_were_added_or_retired_is_current(tmp_path):
    old = json.dumps({"seed": 0, "trainer": {"lr": 1, "device": "cpu", "epochs": 3}})
    new = json.dumps({"seed": 0, "trainer": {"lr": 1, "train_epochs": 3, "mixed_precision": "no"}})
    defaults = {"trainer": {"mixed_precision": "no"}}
    retired = {"trainer": {"device": None, "epochs": "train_epochs"}}

    def runner(fingerprint):
        stage = Stage("a", lambda directory: {}, fingerprint=fingerprint)
        return StageRunner(tmp_path, [stage], lambda _: None, defaults, retired)

    runner(old).run()
    calls = []
    current = runner(new)
    current.log = calls.append
    current.run()
    assert calls == [f"[1/1] a: done earlier, skipped ({tmp_path / 'a'})"]
    changes = (
        new.replace('"lr": 1', '"lr": 2'),
        new.replace('"no"', '"bf16"'),
        new.replace("3", "4"),
    )
    for fingerprint in changes:  # a real change is refused
        with pytest.raises(StageError, match="made with other settings"):
            runner(fingerprint).run()
    with pytest.raises(StageError, match="made with other settings"):  # not retired: refused
        StageRunner(tmp_path, [Stage("a", lambda d: {}, fingerprint=new)], lambda _: None,
                    defaults).run()  # fmt: skip
