"""dripd.store.rows.json_value: json.loads, with the empty object and list made without it."""

from __future__ import annotations

import json

import pytest

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
