import json

import pytest

from rlhf_gym.preferences import Comparison, PreferencePair, PreferenceStore, read_jsonl

COMPARISONS = [
    Comparison("p1", "a1", "b1"),
    Comparison("p2", "a2", "b2"),
    Comparison("p3", "a3", "b3"),
]


def test_adding_is_idempotent_and_keeps_order(tmp_path):
    store = PreferenceStore(tmp_path / "store")
    assert store.add(COMPARISONS) == 3
    assert store.add(COMPARISONS[:2]) == 0
    assert list(store.comparisons().values()) == COMPARISONS


def test_labels_resume_from_a_new_store_object_and_become_pairs(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS)
    ids = list(store.comparisons())
    store.record(ids[0], "b")
    store.record(ids[1], "skip")
    reopened = PreferenceStore(tmp_path)  # another process, a web page...
    assert [c for _, c in reopened.pending()] == [COMPARISONS[2]]
    reopened.record(ids[2], "a", labeler="web")
    assert reopened.pairs() == [PreferencePair("p1", "b1", "a1"), PreferencePair("p3", "a3", "b3")]
    assert reopened.export_jsonl(tmp_path / "out.jsonl") == 2
    assert read_jsonl(tmp_path / "out.jsonl") == reopened.pairs()


def test_latest_label_wins(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:1])
    (cid,) = store.comparisons()
    store.record(cid, "a")
    store.record(cid, "b")
    assert store.pairs() == [PreferencePair("p1", "b1", "a1")]


def test_bad_choice_and_unknown_id_raise(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:1])
    (cid,) = store.comparisons()
    with pytest.raises(ValueError, match=r"choice must be one of .* got 'c'"):
        store.record(cid, "c")
    with pytest.raises(KeyError, match="no comparison with id 'nope'"):
        store.record("nope", "a")


def test_a_line_cut_by_a_crash_is_ignored(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:2])
    cid = next(iter(store.comparisons()))
    store.record(cid, "a")
    with open(store.labels_path, "a") as file:
        file.write('{"id": "')  # the crash
    assert store.labels() == {cid: "a"}
    assert len(store.pending()) == 1


def test_a_label_after_a_crash_cut_line_is_not_glued_onto_it(tmp_path):
    """The issue's repro: the last line cut short, then one more label."""
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:2])
    first, second = list(store.comparisons())
    store.record(first, "a")
    store.record(second, "b")
    with open(store.labels_path, "rb+") as file:  # `truncate -s -30`
        file.truncate(store.labels_path.stat().st_size - 30)
    with pytest.warns(UserWarning, match="cut by a crash"):
        store.record(second, "a")
    assert store.labels() == {first: "a", second: "a"}  # the complete line and the new one
    lines = store.labels_path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    cut = (tmp_path / "labels.jsonl.cut").read_text()
    assert cut.startswith('{"id": "' + second) and cut.endswith("\n")  # kept, not lost


def test_a_bad_line_in_the_middle_is_skipped_with_its_line_number(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:3])
    ids = list(store.comparisons())
    store.record(ids[0], "a")
    with open(store.labels_path, "a") as file:
        file.write("{not json}\n")
    store.record(ids[1], "b")
    with pytest.warns(UserWarning, match=r"labels\.jsonl:2 is not valid JSON"):
        assert store.labels() == {ids[0]: "a", ids[1]: "b"}
