import io
import json
import select
import subprocess
import sys

import httpx
import pytest

from rlhf_gym.cli import main
from rlhf_gym.commands.label import access_token, label_loop, page_address
from rlhf_gym.preferences import (
    Comparison,
    PreferencePair,
    PreferenceStore,
    load_preferences,
    read_jsonl,
)

COMPARISONS = [Comparison(f"prompt {i}", f"A{i}", f"B{i}") for i in range(4)]


def make_store(tmp_path):
    store = PreferenceStore(tmp_path / "store")
    store.add(COMPARISONS)
    return store


def test_answers_are_recorded_and_bad_answers_asked_again(tmp_path):
    store = make_store(tmp_path)
    out = io.StringIO()
    made = label_loop(store, io.StringIO("a\nzzz\nB\ns\nq\n"), out)
    assert made == 3
    text = out.getvalue()
    assert "prompt: prompt 0" in text and "A: A0" in text and "B: B0" in text
    assert "unknown answer 'zzz'" in text
    assert store.pairs() == [
        PreferencePair("prompt 0", "A0", "B0"),
        PreferencePair("prompt 1", "B1", "A1"),
    ]
    assert [c for _, c in store.pending()] == [COMPARISONS[3]]


def test_a_new_session_resumes_where_the_last_one_stopped(tmp_path):
    store = make_store(tmp_path)
    label_loop(store, io.StringIO("a\n"), io.StringIO())  # end of input after one answer
    out = io.StringIO()
    label_loop(PreferenceStore(store.directory), io.StringIO("b\nb\nb\n"), out)
    assert "[2/4] prompt: prompt 1" in out.getvalue()
    assert "prompt: prompt 0" not in out.getvalue()
    assert len(store.pairs()) == 4 and not store.pending()


def test_command_exports_labels_and_says_when_there_is_nothing_to_do(tmp_path, capsys):
    store = make_store(tmp_path)
    label_loop(store, io.StringIO("a\nb\n"), io.StringIO())
    target = tmp_path / "pairs.jsonl"
    assert main(["label", "--store", str(store.directory), "--export", str(target)]) == 0
    assert read_jsonl(target) == store.pairs()
    assert main(["label", "--store", str(tmp_path / "empty")]) == 0
    assert "nothing to label" in capsys.readouterr().out


def test_collect_queues_policy_samples_then_labels_from_stdin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("b\nq\n"))
    argv = ["label", "--store", str(tmp_path), "--collect", "2", "--model", "tiny", "--k", "2"]
    assert main(argv) == 0
    store = PreferenceStore(tmp_path)
    assert len(store.comparisons()) == 2  # one pair per prompt
    assert len(store.pairs()) == 1 and len(store.pending()) == 1
    assert "queued 2 new comparisons" in capsys.readouterr().out


def test_bad_paths_and_models_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    assert main(["label", "--store", str(tmp_path / "afile")]) == 2
    assert "is a file; a store is a directory" in capsys.readouterr().err
    store = str(tmp_path / "store")
    assert main(["label", "--store", store, "--export", str(tmp_path / "adir")]) == 2
    assert "is a directory; give the path of a file" in capsys.readouterr().err
    missing = str(tmp_path / "no-such-model")
    assert main(["label", "--store", store, "--collect", "1", "--model", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlhf-gym label: error:") and "Traceback" not in err


def test_a_comparison_leased_by_another_session_is_not_shown_and_quitting_releases(tmp_path):
    store = make_store(tmp_path)
    second = list(store.comparisons())[1]
    store.lease("someone else")  # holds comparison 0
    out = io.StringIO()
    label_loop(store, io.StringIO("q\n"), out)
    assert "prompt: prompt 1" in out.getvalue() and "prompt: prompt 0" not in out.getvalue()
    assert store.lease("third")[0] == second  # quitting gave comparison 1 back at once


def test_control_characters_in_completions_are_escaped_on_screen(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add([Comparison("p\u202eq", "clear\x1b[2Jscreen", "two\nlines\r\x07")])
    out = io.StringIO()
    label_loop(store, io.StringIO("q\n"), out)
    text = out.getvalue()
    assert "p\\u202eq" in text and "clear\\x1b[2Jscreen" in text
    assert "B: two\n     lines\\x0d\\x07" in text
    assert not any(ch in text for ch in "\x1b\u202e\r\x07")


def test_each_terminal_labeler_gets_every_comparison_once_when_two_labels_are_wanted(tmp_path):
    store = PreferenceStore(tmp_path, labels_per_comparison=2)
    store.add(COMPARISONS)
    assert label_loop(store, io.StringIO("a\n" * 9), io.StringIO(), labeler="ann") == 4
    assert label_loop(store, io.StringIO("b\n" * 9), io.StringIO(), labeler="bob") == 4
    assert all(by == {"ann": "a", "bob": "b"} for by in store.labels().values())
    records = [json.loads(line) for line in store.labels_path.read_text().splitlines()]
    assert {r["order"] for r in records} == {"ab"}  # A, the stored a, is always shown first


def test_export_prints_the_labelers_agreement_and_with_a_gold_the_agreement_with_it(
    tmp_path, capsys
):
    store = PreferenceStore(tmp_path / "store", labels_per_comparison=2)
    store.add([Comparison("p", "good", "bad"), Comparison("p", "fine", "awful")])
    first, second = store.comparisons()
    store.record(first, "a", labeler="ann")
    store.record(first, "a", labeler="bob")
    store.record(second, "a", labeler="ann")
    store.record(second, "tie", labeler="bob")
    target = tmp_path / "pairs.jsonl"
    argv = ["label", "--store", str(store.directory), "--export", str(target)]
    assert main([*argv, "--gold", "vader"]) == 0
    out = capsys.readouterr().out
    assert f"wrote 3 pairs to {target}" in out  # bob's tie makes none
    assert "4 labels by 2 labeler(s): 3 a, 0 b, 1 tie, 0 skip" in out
    assert "labelers agree on 50% of 2 label pairs over 2 comparisons" in out
    assert "ann and bob: 50% of 2" in out
    assert "all: 100% of 3 pick the higher gold" in out  # VADER: good > bad, fine > awful
    assert load_preferences(target) == store.pairs()  # what `rlhf-gym run --human-labels` reads


def test_an_access_token_is_generated_beyond_loopback_and_the_address_carries_it():
    assert access_token("127.0.0.1", None) is None
    assert access_token("127.0.0.1", "mine") == "mine"
    generated = {access_token("0.0.0.0", None) for _ in range(2)}
    assert len(generated) == 2 and all(len(token) >= 32 for token in generated)
    assert page_address("::1", 80, "a b/c") == "http://[::1]:80/?token=a%20b%2Fc"
    assert page_address("127.0.0.1", 8000, None) == "http://127.0.0.1:8000/"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--labels-per-comparison", "0"], "labels_per_comparison must be an integer >= 1"),
        (["--web", "--lease-seconds", "0"], "positive number of seconds"),
        (["--web", "--port", "70000"], "--port must be in 0..65535, got 70000"),
        (["--web", "--task", "nope"], "unknown task 'nope'"),
    ],
)
def test_bad_web_and_store_settings_are_one_line_errors(tmp_path, capsys, extra, message):
    store = make_store(tmp_path)
    assert main(["label", "--store", str(store.directory), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlhf-gym label: error:") and message in err


def test_label_web_serves_the_page_with_its_token(tmp_path):
    store = make_store(tmp_path)
    argv = ["label", "--web", "--store", str(store.directory), "--port", "0", "--token", "t0k"]
    server = subprocess.Popen(
        [sys.executable, "-m", "rlhf_gym.cli", *argv], stderr=subprocess.PIPE, text=True
    )
    try:
        assert select.select([server.stderr], [], [], 60)[0], "the server printed no address"
        line = server.stderr.readline()
        address = line.split(": ", 1)[1].strip()
        assert address.startswith("http://127.0.0.1:") and address.endswith("/?token=t0k")
        base = address.split("?")[0]
        assert "Continue the start of a short review" in httpx.get(address).text  # the guideline
        assert httpx.get(base).status_code == 401
        shown = httpx.post(
            base + "api/next", json={"labeler": "ann"}, headers={"authorization": "Bearer t0k"}
        )
        assert shown.json()["comparison"]["prompt"] == "prompt 0"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_t_at_the_terminal_records_a_tie(tmp_path):
    store = make_store(tmp_path)
    out = io.StringIO()
    assert label_loop(store, io.StringIO("t\nq\n"), out) == 1
    assert "[a/b/t=tie/s=skip/q=quit]" in out.getvalue()
    assert store.labels() == {next(iter(store.comparisons())): {"human": "tie"}}
    assert store.pairs() == []  # a tie prefers neither
