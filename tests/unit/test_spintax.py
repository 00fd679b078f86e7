"""Spintax: the grammar, the determinism a contact relies on, and the check made at save."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from dripd.errors import ValidationError
from dripd.render import compile_template, spin, spintax_problem
from dripd.steps import step_from_fields


def test_one_option_of_each_group() -> None:
    seen = {spin("{Hi|Hello|Hey} there", f"a{i}@x.org|7") for i in range(200)}
    assert seen == {"Hi there", "Hello there", "Hey there"}


def test_nested_groups_pick_inside_the_chosen_option_only() -> None:
    seen = {spin("{Hi|{Dear|Hello} friend}", str(i)) for i in range(200)}
    assert seen == {"Hi", "Dear friend", "Hello friend"}


def test_merge_tags_and_their_fallbacks_are_not_spintax() -> None:
    source = "{Hi|Hello} {{firstName|there}}, {{company}}"
    outputs = {spin(source, str(i)) for i in range(50)}
    assert outputs == {"Hi {{firstName|there}}, {{company}}", "Hello {{firstName|there}}, {{company}}"}
    rendered = compile_template(spin(source, "x"), "<p>b</p>").render({"company": "Acme"})
    assert rendered.subject.endswith("there, Acme")


def test_braces_without_a_bar_stay_text_so_css_is_safe() -> None:
    css = "<style>p { margin: 0 } a{color:red}</style>{Hi|Hello}"
    out = spin(css, "s")
    assert out.startswith("<style>p { margin: 0 } a{color:red}</style>")
    assert out.endswith(("Hi", "Hello"))
    assert spin("a lone { brace", "s") == "a lone { brace"


def test_escapes_give_the_literal_characters() -> None:
    assert spin(r"\{not|spun\} and \| bar", "s") == "{not|spun} and | bar"


def test_a_group_left_open_is_refused_with_its_position() -> None:
    assert spintax_problem("Hello {Hi|Hey there") == "spintax group opened at position 6 is never closed"
    assert spintax_problem("{Hi|Hey} {{firstName|there}}") is None
    with pytest.raises(ValidationError) as refused:
        step_from_fields({"type": "email", "subject": "{Hi|Hey", "body": "<p>x</p>"}, where="steps[0]")
    assert refused.value.field == "steps[0].subject"
    assert "position 0" in refused.value.rule
    with pytest.raises(ValidationError) as refused:
        step_from_fields({"type": "email", "subject": "s", "body": "<p>{a|b</p>"}, where="steps[2]")
    assert refused.value.field == "steps[2].body"


words = st.text(alphabet="abc xyz", min_size=1, max_size=6)


@given(st.lists(st.lists(words, min_size=2, max_size=4), min_size=1, max_size=4), st.text(max_size=20))
def test_same_seed_same_text_and_every_word_comes_from_its_group(groups: list[list[str]], seed: str) -> None:
    source = " ".join("{" + "|".join(options) + "}" for options in groups)
    first = spin(source, seed)
    assert spin(source, seed) == first  # a retry, a preview, a restart: the same words
    assert "{" not in first and "|" not in first
    assert first in {" ".join(choice) for choice in _products(groups)}


def _products(groups: list[list[str]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for options in groups:
        out = [prefix + (option,) for prefix in out for option in options]
    return out
