"""The preference store and ``rlhf-gym label`` under faults: a crash-cut file, a bad line in the
middle, two labelers at once, hostile text and bad paths (issue 11, items 1, 7, 12 and 13)."""

from __future__ import annotations

import io
import json
import subprocess

import pytest

from rlhf_gym.cli import main
from rlhf_gym.preferences import Comparison, PreferenceStore, read_jsonl

from .conftest import assert_one_line_error, command, environment

COMPARISONS = [
    Comparison(f"prompt {i}", f"first answer {i}", f"second answer {i}") for i in range(60)
]


@pytest.fixture
def store(tmp_path):
    store = PreferenceStore(tmp_path / "store")
    store.add(COMPARISONS)
    return store


def label(store, answers: str, monkeypatch, *extra: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(answers))
    return main(["label", "--store", str(store.directory), *extra])


def test_a_crash_cut_store_takes_new_labels_and_still_exports(store, monkeypatch, tmp_path, capsys):
    """Item 1, the issue's repro: ``truncate -s -30 labels.jsonl; printf 'a\\nb\\n' | label``."""
    label(store, "a\nb\nb\n", monkeypatch)
    with open(store.labels_path, "rb+") as file:
        file.truncate(store.labels_path.stat().st_size - 30)
    with pytest.warns(UserWarning, match="cut by a crash"):
        assert label(store, "a\nb\n", monkeypatch) == 0
    assert (
        main(["label", "--store", str(store.directory), "--export", str(tmp_path / "out.jsonl")])
        == 0
    )
    assert (
        len(read_jsonl(tmp_path / "out.jsonl")) == 4
    )  # 2 whole + 2 new; the cut one is kept aside
    assert [json.loads(line) for line in store.labels_path.read_text().splitlines()]
    assert (store.directory / "labels.jsonl.cut").read_text().startswith('{"id": ')


def test_a_bad_line_in_the_middle_loses_only_that_line(store, monkeypatch, tmp_path):
    label(store, "a\nb\n", monkeypatch)
    with open(store.labels_path, "a") as file:
        file.write("garbage from a disk error\n")
    export = ["label", "--store", str(store.directory), "--export", str(tmp_path / "o.jsonl")]
    with pytest.warns(UserWarning, match=r"labels\.jsonl:3 is not valid JSON"):
        label(store, "a\n", monkeypatch)
        assert main(export) == 0
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 3


def test_two_labelers_at_once_never_label_the_same_comparison(store):
    """Item 7: two ``rlhf-gym label`` processes on one store, answering as fast as they can;
    with leases each comparison is labeled exactly once, and every label names its labeler."""
    processes = [
        subprocess.Popen(
            command("label", "--store", str(store.directory), "--labeler", name),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environment(),
        )
        for name in ("ann", "bob")
    ]
    for process in processes:
        process.stdin.write("a\n" * len(COMPARISONS))
        process.stdin.close()
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    records = [json.loads(line) for line in store.labels_path.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(store.comparisons())  # each once
    assert {r["labeler"] for r in records} <= {"ann", "bob"} and store.conflicts() == {}
    assert not store.pending()


def test_conflicting_labels_after_a_lease_ran_out_are_kept(store):
    """Item 7: when two labelers did label one comparison, neither label is overwritten."""
    cid = next(iter(store.comparisons()))
    store.record(cid, "a", labeler="ann")
    store.record(cid, "b", labeler="bob")
    assert store.conflicts() == {cid: {"ann": "a", "bob": "b"}}
    assert len(store.pairs()) == 2


def test_control_characters_cannot_drive_the_labelers_terminal(tmp_path, monkeypatch, capsys):
    """Item 13: escape sequences, bidi overrides and a carriage return stay visible text."""
    store = PreferenceStore(tmp_path)
    store.add([Comparison("hi", "\x1b]0;pwned\x07\x1b[2Jok", "fine\u202eenif\rX")])
    label(store, "q\n", monkeypatch)
    screen = capsys.readouterr().out
    assert "\\x1b]0;pwned\\x07\\x1b[2Jok" in screen and "fine\\u202eenif\\x0dX" in screen
    assert not set(screen) & {"\x1b", "\x07", "\u202e", "\r"}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--store", "{file}"], ["is a file; a store is a directory"]),
        (["--store", "{dir}/s", "--export", "{dir}"], ["is a directory; give the path of a file"]),
        (
            ["--store", "{dir}/s", "--collect", "1", "--model", "{dir}/no-model"],
            ["could not load model", "no-model': no such directory"],
        ),
        (["--store", "{dir}/s", "--lease-seconds", "0"], ["positive number of seconds"]),
    ],
)
def test_bad_label_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys, args, fragments):
    """Item 12."""
    (tmp_path / "file").write_text("")
    PreferenceStore(tmp_path / "s").add(COMPARISONS[:1])
    monkeypatch.setattr("sys.stdin", io.StringIO("a\n"))
    code = main(["label", *(a.format(file=tmp_path / "file", dir=tmp_path) for a in args)])
    captured = capsys.readouterr()
    assert_one_line_error(
        subprocess.CompletedProcess([], code, captured.out, captured.err), *fragments
    )
