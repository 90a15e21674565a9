import io

from rlhf_gym.cli import main
from rlhf_gym.commands.label import label_loop
from rlhf_gym.preferences import Comparison, PreferencePair, PreferenceStore, read_jsonl

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
