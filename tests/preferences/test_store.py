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


def test_a_labelers_latest_label_wins_but_other_labelers_labels_are_kept(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:2])
    first, second = store.comparisons()
    store.record(first, "a")
    store.record(first, "b")  # the same labeler changed their mind
    assert store.pairs() == [PreferencePair("p1", "b1", "a1")]
    assert store.conflicts() == {}
    store.record(first, "a", labeler="ann")  # another labeler disagrees: both kept
    store.record(second, "b", labeler="ann")
    store.record(second, "skip", labeler="bob")  # a skip is no disagreement
    assert store.labels() == {
        first: {"human": "b", "ann": "a"},
        second: {"ann": "b", "bob": "skip"},
    }
    assert store.conflicts() == {first: {"human": "b", "ann": "a"}}
    assert store.pairs() == [
        PreferencePair("p1", "b1", "a1"),
        PreferencePair("p1", "a1", "b1"),
        PreferencePair("p2", "b2", "a2"),
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_leased_comparison_goes_to_no_other_session_until_it_expires(tmp_path):
    clock = Clock()
    store = PreferenceStore(tmp_path, clock=clock)
    store.add(COMPARISONS)
    ids = list(store.comparisons())
    assert store.lease("ann", seconds=60)[0] == ids[0]
    assert store.lease("bob", seconds=60)[0] == ids[1]  # not ann's
    assert store.lease("ann", seconds=60)[0] == ids[0]  # ann asks again: her own lease back
    store.record(ids[1], "a", labeler="bob")
    assert store.lease("bob", seconds=60)[0] == ids[2]
    assert store.lease("cyd", seconds=60) is None  # everything pending is leased
    clock.now += 61  # ann's and bob's leases run out
    assert store.lease("cyd", seconds=60)[0] == ids[0]


def test_a_released_lease_is_free_at_once_and_only_its_holder_can_release_it(tmp_path):
    store = PreferenceStore(tmp_path, clock=Clock())
    store.add(COMPARISONS[:1])
    (cid,) = store.comparisons()
    store.lease("ann")
    store.release(cid, "bob")  # not bob's to give back
    assert store.lease("bob") is None
    store.release(cid, "ann")
    assert store.lease("bob")[0] == cid


def test_a_lease_must_last_a_positive_time(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:1])
    for seconds in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="positive number of seconds"):
            store.lease("ann", seconds)


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
    assert store.labels() == {cid: {"human": "a"}}
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
    assert store.labels() == {first: {"human": "a"}, second: {"human": "a"}}  # both lines
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
        assert store.labels() == {ids[0]: {"human": "a"}, ids[1]: {"human": "b"}}
