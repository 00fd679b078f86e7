"""dripd.store.rows.json_value: json.loads, with the empty object and list made without it and
other text read by the decoder's C scanner. It reads exactly what ``json.loads`` reads: values
the store wrote, text with whitespace around it, and garbage."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripd.store.rows import json_value


@pytest.mark.parametrize("text", [
    "{}", "[]", '{"timezone": "Europe/Paris"}', '[[1, "<a@b>", "Hi", "sent", 2, null]]',
    " {}", "{ }", "[ ]", "null", '"{}"',
])
def test_same_value_as_json_loads(text: str) -> None:
    assert json_value(text) == json.loads(text)
    assert type(json_value(text)) is type(json.loads(text))


def test_each_empty_value_is_a_new_one() -> None:
    first, second = json_value("{}"), json_value("{}")
    first["timezone"] = "UTC"  # a caller may fill what it got
    assert second == {} and json_value("{}") == {}
    assert json_value("[]") is not json_value("[]")


def test_bad_json_fails_as_json_loads_does() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_value("{")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(_JSON, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\r\n"]))
def test_reads_what_json_loads_reads(value: Any, before: str, after: str) -> None:
    for text in (json.dumps(value), before + json.dumps(value, ensure_ascii=False) + after):
        assert json_value(text) == json.loads(text) == value


def test_a_new_value_each_call() -> None:
    first, second = json_value('{"a": [1]}'), json_value('{"a": [1]}')
    assert first == second and first is not second and first["a"] is not second["a"]
    assert json_value("{}") is not json_value("{}")


def test_the_constants_json_loads_takes() -> None:
    assert math.isnan(json_value("NaN")) and json_value("-Infinity") == -math.inf


@pytest.mark.parametrize("text", ["", "   ", '{"a": 1}{', '{"a": 1} x', "[1,", "nan", "{'a': 1}"])
def test_garbage_raises_as_json_loads_does(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        json_value(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)
