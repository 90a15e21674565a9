import json
import multiprocessing
import tempfile
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_label_records_its_labeler_time_displayed_order_and_seconds(tmp_path):
    store = PreferenceStore(tmp_path, clock=Clock())
    store.add(COMPARISONS[:2])
    first, second = store.comparisons()
    store.record(first, "b", labeler="ann", order="ba", seconds=4.5)
    store.record(second, "a", labeler="bob")
    records = [json.loads(line) for line in store.labels_path.read_text().splitlines()]
    assert records == [
        {
            "id": first,
            "choice": "b",
            "labeler": "ann",
            "time": 1000.0,
            "order": "ba",
            "seconds": 4.5,
        },
        {"id": second, "choice": "a", "labeler": "bob", "time": 1000.0, "order": "ab"},
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "ab-"}, r"order must be one of \('ab', 'ba'\), got 'ab-'"),
        ({"seconds": -1.0}, "seconds must be finite and >= 0, got -1.0"),
        ({"seconds": float("inf")}, "seconds must be finite and >= 0, got inf"),
    ],
)
def test_a_bad_order_or_time_is_refused(tmp_path, kwargs, message):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:1])
    with pytest.raises(ValueError, match=message):
        store.record(next(iter(store.comparisons())), "a", **kwargs)
    assert not store.labels_path.exists()


def test_a_tie_is_an_answer_that_makes_no_pair_but_can_disagree(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS[:2])
    first, second = store.comparisons()
    store.record(first, "tie", labeler="ann")
    store.record(first, "a", labeler="bob")
    store.record(second, "tie", labeler="ann")
    assert store.pairs() == [PreferencePair("p1", "a1", "b1")]  # bob's only
    assert store.conflicts() == {first: {"ann": "tie", "bob": "a"}}
    assert not store.pending()  # a tie is an answer: both comparisons are done


def test_undo_takes_back_a_labelers_labels_one_at_a_time_latest_first(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add(COMPARISONS)
    ids = list(store.comparisons())
    store.record(ids[0], "a", labeler="ann")
    store.record(ids[1], "b", labeler="ann")
    store.record(ids[0], "b", labeler="ann")  # ann changed her mind on the first
    store.record(ids[2], "a", labeler="bob")
    assert store.undo("ann") == ids[0]
    assert store.labels()[ids[0]] == {"ann": "a"}  # her earlier answer stands again
    assert store.undo("ann") == ids[1]
    assert ids[1] not in store.labels() and [cid for cid, _ in store.pending()] == [ids[1]]
    assert store.undo("ann") == ids[0]
    assert store.undo("ann") is None and store.undo("cyd") is None
    assert store.labels() == {ids[2]: {"bob": "a"}}  # bob's label untouched
    assert len(store.labels_path.read_text().splitlines()) == 4 + 3  # append-only


def test_each_comparison_goes_to_n_different_labelers_one_at_a_time(tmp_path):
    clock = Clock()
    store = PreferenceStore(tmp_path, clock=clock, labels_per_comparison=2)
    store.add(COMPARISONS[:2])
    first, second = store.comparisons()
    assert store.lease("ann", labeler="ann")[0] == first
    assert store.lease("bob", labeler="bob")[0] == second  # first is ann's while she looks
    store.record(first, "a", labeler="ann")
    store.release(first, "ann")
    assert store.lease("ann", labeler="ann") is None  # she labeled the first; bob has the second
    assert store.lease("cyd", labeler="cyd")[0] == first  # its second labeler
    assert [cid for cid, _ in store.pending()] == [first, second]
    store.record(first, "b", labeler="cyd")
    assert [cid for cid, _ in store.pending()] == [second]
    assert [cid for cid, _ in store.pending("ann")] == [second]
    assert store.lease("ann", labeler="ann") is None  # bob still holds it...
    clock.now += 601  # ...until his lease runs out
    assert store.lease("ann", labeler="ann")[0] == second


def test_labels_per_comparison_must_be_a_positive_integer(tmp_path):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="labels_per_comparison must be an integer >= 1"):
            PreferenceStore(tmp_path, labels_per_comparison=bad)


def test_a_holder_gets_a_preferred_comparison_if_free_else_its_latest_lease(tmp_path):
    store = PreferenceStore(tmp_path, clock=Clock())
    store.add(COMPARISONS)
    ids = list(store.comparisons())
    assert store.lease("bob")[0] == ids[0]
    assert store.lease("ann", prefer=ids[2])[0] == ids[2]
    assert store.lease("ann", prefer=ids[0])[0] == ids[2]  # bob's: ann keeps her own
    assert store.lease("ann", prefer=ids[1])[0] == ids[1]
    assert store.lease("ann")[0] == ids[1]  # her most recent lease, not the first in the queue
    assert store.lease_holder(ids[0]) == "bob" and store.lease_holder(ids[2]) == "ann"


LABELERS = ("ann", "bob", "cyd", "dan")


def _record_everything(directory, labeler, barrier):
    store = PreferenceStore(directory)
    barrier.wait()  # every process starts writing at the same moment
    for cid in store.comparisons():
        store.record(cid, "a", labeler=labeler)


def _label_until_done(directory, labeler, barrier):
    store = PreferenceStore(directory, labels_per_comparison=2)
    barrier.wait()
    while store.pending(labeler):  # some may be leased to others for now: ask again
        leased = store.lease(labeler, 60.0, labeler=labeler)
        if leased is not None:
            store.record(leased[0], "b", labeler=labeler)
            store.release(leased[0], labeler)


def _run_at_once(target, directory):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(LABELERS))
    processes = [
        context.Process(target=target, args=(directory, name, barrier)) for name in LABELERS
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0] * len(LABELERS)


def _label_lines(store):
    return [json.loads(line) for line in store.labels_path.read_text().splitlines()]


def test_processes_recording_at_once_lose_and_duplicate_nothing(tmp_path):
    store = PreferenceStore(tmp_path)
    store.add([Comparison(f"p{i}", f"a{i}", f"b{i}") for i in range(50)])
    _run_at_once(_record_everything, tmp_path)
    written = Counter((r["id"], r["labeler"]) for r in _label_lines(store))
    expected = {(cid, name) for cid in store.comparisons() for name in LABELERS}
    assert set(written) == expected and set(written.values()) == {1}  # 200 lines, each once


def test_processes_leasing_at_once_give_each_comparison_to_n_labelers(tmp_path):
    store = PreferenceStore(tmp_path, labels_per_comparison=2)
    store.add([Comparison(f"p{i}", f"a{i}", f"b{i}") for i in range(40)])
    _run_at_once(_label_until_done, tmp_path)
    lines = _label_lines(store)
    assert len(lines) == 80  # 40 comparisons x 2 labelers: none lost, none labeled twice
    assert all(len(by) == 2 for by in store.labels().values()) and not store.pending()
    assert len({(r["id"], r["labeler"]) for r in lines}) == 80


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(("ann", "bob")), st.sampled_from((0, 1, 2, "undo"))),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(OPERATIONS)
def test_undo_behaves_like_popping_each_labelers_own_history(operations):
    """Against a model: each labeler's labels in a list; an undo drops the last of the list."""
    history: dict[str, list[tuple[str, str]]] = {"ann": [], "bob": []}
    with tempfile.TemporaryDirectory() as directory:
        store = PreferenceStore(directory)
        store.add(COMPARISONS)
        ids = list(store.comparisons())
        for number, (labeler, operation) in enumerate(operations):
            if operation == "undo":
                undone = store.undo(labeler)
                expected = history[labeler].pop()[0] if history[labeler] else None
                assert undone == expected
            else:
                choice = "ab"[number % 2]
                store.record(ids[operation], choice, labeler=labeler)
                history[labeler].append((ids[operation], choice))
        model: dict[str, dict[str, str]] = {}
        for labeler, labels in history.items():
            for cid, choice in labels:  # the latest label standing wins
                model.setdefault(cid, {})[labeler] = choice
        assert store.labels() == model
