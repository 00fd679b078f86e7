"""StepTemplates: a step's template per contact is what spinning its texts with the contact's
seed and compiling them gives; a step that chooses nothing is compiled once and never spun."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dripd.render import StepTemplates, compile_template, spin

FIELDS = {"firstName": "Ann", "company": "Acme"}


def seed_of(email: str, step_id: int = 7) -> str:
    return f"{email}\x00{step_id}"


def test_a_merge_tag_fallback_is_no_choice_the_step_is_compiled_once() -> None:
    templates = StepTemplates()
    asked: list[str] = []

    def seed() -> str:
        asked.append("x")
        return "x"

    first = templates.get(7, "{{firstName|Hi}}, about {{company}}", "<p>{{firstName|there}}</p>", None, seed)
    second = templates.get(7, "{{firstName|Hi}}, about {{company}}", "<p>{{firstName|there}}</p>", None, seed)
    assert first is second and asked == []
    assert first.render(FIELDS).subject == "Ann, about Acme"
    assert first.render({}) == compile_template("{{firstName|Hi}}, about {{company}}",
                                                "<p>{{firstName|there}}</p>").render({})


def test_escapes_are_resolved_on_the_fixed_path_as_spin_resolves_them() -> None:
    template = StepTemplates().get(1, r"\{not|spun\}", r"<p>a \| b</p>", r"t \{x\}", lambda: "s")
    rendered = template.render({})
    assert (rendered.subject, rendered.html, rendered.text) == ("{not|spun}", "<p>a | b</p>", "t {x}")


@settings(max_examples=200, deadline=None)
@given(st.emails(), st.sampled_from([
    ("{Hi|Hello} {{firstName|there}}", "<p>{Quick|Short} note for {{company}}</p>", None),
    ("Plain subject", "<p>{A|B|C}</p>", "text {x|y}"),
    ("{{firstName|Hi}}", "<p>{{company|your team}}</p>", "no choice \\| here"),
]))
def test_each_contact_gets_its_own_spin(email: str, texts: tuple[str, str, str | None]) -> None:
    subject, body, text = texts
    seed = seed_of(email)
    ours = StepTemplates().get(7, subject, body, text, lambda: seed).render(FIELDS)
    expected = compile_template(spin(subject, seed), spin(body, seed),
                                None if text is None else spin(text, seed)).render(FIELDS)
    assert ours == expected


def test_every_option_is_reached_across_contacts() -> None:
    templates = StepTemplates()
    subjects = {templates.get(3, "{Hi|Hello|Hey}", "<p>b</p>", None, lambda i=i: seed_of(f"c{i}@x.org", 3))
                .render({}).subject for i in range(100)}
    assert subjects == {"Hi", "Hello", "Hey"}
