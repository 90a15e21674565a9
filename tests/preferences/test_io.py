import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_gym.preferences import (
    PreferencePair,
    from_dataset,
    load_preferences,
    read_jsonl,
    to_dataset,
    write_jsonl,
)

text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())


@st.composite
def pairs(draw):
    chosen = draw(text)
    rejected = draw(text.filter(lambda s: s != chosen))
    margin = draw(st.none() | st.floats(0, 10))
    return PreferencePair(draw(st.text(max_size=20)), chosen, rejected, margin)


@settings(max_examples=30, deadline=None)
@given(st.lists(pairs(), max_size=5))
def test_jsonl_round_trip_keeps_any_text(tmp_path_factory, items):
    path = tmp_path_factory.mktemp("io") / "prefs.jsonl"
    assert write_jsonl(path, items) == len(items)
    assert read_jsonl(path) == items


def test_dataset_round_trip_uses_trl_columns():
    items = [PreferencePair("p", "a", "b", 1.0), PreferencePair("q", "c", "d", 0.0)]
    dataset = to_dataset(items)
    assert dataset.column_names == ["prompt", "chosen", "rejected", "margin"]
    assert from_dataset(dataset) == items
    assert to_dataset([PreferencePair("p", "a", "b")]).column_names == [
        "prompt",
        "chosen",
        "rejected",
    ]


def test_saved_dataset_directory_and_jsonl_both_load(tmp_path):
    items = [PreferencePair("p", "a", "b")]
    to_dataset(items).save_to_disk(str(tmp_path / "ds"))
    write_jsonl(tmp_path / "p.jsonl", items)
    assert load_preferences(tmp_path / "ds") == items
    assert load_preferences(tmp_path / "p.jsonl") == items
    with pytest.raises(FileNotFoundError, match="no preference data"):
        load_preferences(tmp_path / "missing.jsonl")


def test_dataset_missing_column_is_named():
    from datasets import Dataset

    dataset = Dataset.from_dict({"prompt": ["p"], "chosen": ["a"], "response": ["b"]})
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['rejected'\]"):
        from_dataset(dataset)


def test_bad_lines_are_reported_with_their_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3 is not valid JSON"):
        read_jsonl(path)
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "a"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: chosen equals rejected"):
        read_jsonl(path)


def test_failed_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "prefs.jsonl"
    old = [PreferencePair("p", "old", "older")]
    write_jsonl(path, old)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_jsonl(path, [PreferencePair("p", "new", "newer")])
    assert read_jsonl(path) == old
    assert os.listdir(tmp_path) == ["prefs.jsonl"]  # no temp file left behind


def test_writing_something_else_than_pairs_raises_before_touching_the_file(tmp_path):
    path = tmp_path / "prefs.jsonl"
    with pytest.raises(TypeError, match="expected PreferencePair, got dict"):
        write_jsonl(path, [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert not path.exists()
