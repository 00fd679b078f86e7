"""``json_value`` (the store's JSON columns, read on the send path) reads exactly what
``json.loads`` reads: values the store wrote, text with whitespace around it, and garbage."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripd.store.rows import json_value

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
