import math

import pytest

from rlhf_gym.preferences import PreferencePair


def test_round_trip_through_dict_keeps_every_field():
    pair = PreferencePair("p", "good", "bad", margin=0.5)
    assert PreferencePair.from_dict(pair.to_dict()) == pair
    assert "margin" not in PreferencePair("p", "good", "bad").to_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chosen": "", "rejected": "b"}, "chosen is empty"),
        ({"chosen": "a", "rejected": "   "}, "rejected is empty"),
        ({"chosen": "same", "rejected": "same"}, "chosen equals rejected"),
        ({"chosen": "a", "rejected": "b", "margin": -1.0}, "margin must be finite and >= 0"),
        ({"chosen": "a", "rejected": "b", "margin": math.nan}, "margin must be finite"),
    ],
)
def test_bad_values_raise_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreferencePair("prompt", **kwargs)


@pytest.mark.parametrize("field", ["prompt", "chosen", "rejected"])
def test_non_string_text_raises_type_error(field):
    values = {"prompt": "p", "chosen": "a", "rejected": "b", field: 3}
    with pytest.raises(TypeError, match=f"{field} must be a string"):
        PreferencePair(**values)


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"line 7 lacks column\(s\) \['rejected'\]"):
        PreferencePair.from_dict({"prompt": "p", "chosen": "a"}, "line 7")


def test_errors_from_records_say_where():
    with pytest.raises(ValueError, match="row 3: chosen equals rejected"):
        PreferencePair.from_dict({"prompt": "p", "chosen": "x", "rejected": "x"}, "row 3")
    with pytest.raises(ValueError, match="row 0 is a list, expected a JSON object"):
        PreferencePair.from_dict(["p", "a", "b"], "row 0")
    with pytest.raises(ValueError, match="line 2: prompt must be a string, got int: 5"):
        PreferencePair.from_dict({"prompt": 5, "chosen": "a", "rejected": "b"}, "line 2")
