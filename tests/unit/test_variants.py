"""A/B variants: the choice (deterministic, weighted, pinned, auto-winner), the step's fields and
their checks, and the statistics that state how sure a difference is."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

from dripd.analytics import Funnel
from dripd.errors import ValidationError
from dripd.model import Step, StepType
from dripd.steps import check_step_list, step_from_fields, step_to_fields, with_variant
from dripd.variant_stats import compare, difference_interval, two_proportion_p, variant_report, wilson
from dripd.variants import AutoWinner, Tally, Variant, choose, seed_of, weighted_pick, winner

AB = (Variant("A"), Variant("B"))
names = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
emails = st.emails()


def _email(**extra: object) -> dict[str, object]:
    return {"type": "email", "subject": "Hello", "body": "<p>Hi</p>", **extra}


# -- the choice ----------------------------------------------------------------------------------


@given(emails, st.integers(1, 10**6))
def test_the_choice_is_a_function_of_address_and_step(email: str, step_id: int) -> None:
    seed = seed_of(email, step_id)
    assert choose(AB, seed) == choose(AB, seed) in ("A", "B")
    assert seed_of(email.upper(), step_id) == seed_of(email, step_id)


@given(emails, st.lists(st.integers(0, 50), min_size=2, max_size=5), st.lists(st.integers(0, 50), min_size=2,
                                                                               max_size=5), st.integers(0, 4))
def test_a_pinned_variant_never_switches(email: str, before: list[int], after: list[int], pick: int) -> None:
    # Whatever the weights were when it was pinned and whatever they are now (an edit), and
    # whatever the auto-winner says, a contact's pinned variant is the one it gets.
    old = tuple(Variant(chr(65 + i), w) for i, w in enumerate(before))
    new = tuple(Variant(chr(65 + i), w) for i, w in enumerate(after))
    pinned = old[pick % len(old)].name
    if not any(v.name == pinned for v in new):
        return
    tallies = {v.name: Tally(sent=100, replied=i) for i, v in enumerate(new)}
    assert choose(new, seed_of(email, 1), pinned=pinned, tallies=tallies, rule=AutoWinner(10)) == pinned


def test_a_pinned_variant_since_deleted_gives_way_to_a_fresh_choice() -> None:
    assert choose(AB, "s", pinned="Z") in ("A", "B")


def test_traffic_follows_the_weights() -> None:
    variants = (Variant("A", 1), Variant("B", 3), Variant("off", 0))
    counts = {"A": 0, "B": 0, "off": 0}
    for i in range(8000):
        counts[weighted_pick(variants, seed_of(f"c{i}@example.com", 4))] += 1
    assert counts["off"] == 0
    assert 0.22 < counts["A"] / 8000 < 0.28  # 1 in 4, within a wide margin of chance


def test_no_variants_no_choice() -> None:
    assert choose((), "seed") is None


def test_the_winner_waits_for_enough_sends_on_every_live_variant() -> None:
    rule = AutoWinner(after=100, metric="replied")
    assert winner(AB, {"A": Tally(100, replied=5), "B": Tally(99, replied=30)}, rule) is None
    assert winner(AB, {"A": Tally(100, replied=5), "B": Tally(100, replied=9)}, rule) == "B"
    assert winner(AB, {"A": Tally(100, replied=5), "B": Tally(100, replied=5)}, rule) is None  # a tie splits on
    assert winner(AB, {"A": Tally(100, opened=50), "B": Tally(100, opened=40)}, AutoWinner(100, "opened")) == "A"
    paused = (Variant("A"), Variant("B"), Variant("C", 0))  # a variant at weight 0 is out of the race
    assert winner(paused, {"A": Tally(100, replied=1), "B": Tally(100, replied=2)}, rule) == "B"
    assert winner(AB, {"A": Tally(500, replied=1)}, None) is None


@given(emails)
def test_once_won_every_new_contact_gets_the_winner(email: str) -> None:
    tallies = {"A": Tally(50, replied=1), "B": Tally(50, replied=6)}
    assert choose(AB, seed_of(email, 3), tallies=tallies, rule=AutoWinner(50)) == "B"


# -- the step's fields ---------------------------------------------------------------------------


def test_variants_parse_serialise_and_fall_back_to_the_step() -> None:
    fields = _email(variants=[{"weight": 2}, {"subject": "Quick question", "body": "<p>Short</p>"}],
                    autoWinner={"after": 200})
    step = step_from_fields(fields)
    assert [v.name for v in step.variants] == ["A", "B"]
    assert step.auto_winner == AutoWinner(200, "replied")
    again = step_from_fields(step_to_fields(step))
    assert again == step
    assert step_to_fields(step)["variants"] == [{"name": "A", "weight": 2},
                                                {"name": "B", "weight": 1, "subject": "Quick question",
                                                 "body": "<p>Short</p>"}]
    a, b = with_variant(step, "A"), with_variant(step, "B")
    assert (a.subject, a.body) == ("Hello", "<p>Hi</p>")
    assert (b.subject, b.body, b.id) == ("Quick question", "<p>Short</p>", step.id)
    assert with_variant(step, "gone") == step  # a pinned variant since deleted: the step's own


@pytest.mark.parametrize(("extra", "field", "words"), [
    ({"variants": [{"name": "A"}]}, "variants", "2 to 10"),
    ({"variants": "A,B"}, "variants", "list"),
    ({"variants": [{"name": "A"}, {"name": "A"}]}, "variants[1].name", "names two"),
    ({"variants": [{"name": "a b"}, {}]}, "variants[0].name", "letters"),
    ({"variants": [{"name": "A\n"}, {}]}, "variants[0].name", "letters"),
    ({"variants": [{"weight": -1}, {}]}, "variants[0].weight", "0 to 1000"),
    ({"variants": [{"weight": True}, {}]}, "variants[0].weight", "whole number"),
    ({"variants": [{"weight": 0}, {"weight": 0}]}, "variants", "above 0"),
    ({"variants": [{"subject": "a\nb"}, {}]}, "variants[0].subject", "line breaks"),
    ({"variants": [{"body": "  "}, {}]}, "variants[0].body", "empty"),
    ({"variants": [{}, {"body": "{Hi|Hey"}]}, "variants[1].body", "never closed"),
    ({"variants": [{}, {"colour": "red"}]}, "variants[1].colour", "not a variant field"),
    ({"autoWinner": {"after": 10}}, "autoWinner", "needs variants"),
    ({"variants": [{}, {}], "autoWinner": {"after": 0}}, "autoWinner.after", "1 to 1000000"),
    ({"variants": [{}, {}], "autoWinner": {"after": 5, "metric": "bounced"}}, "autoWinner.metric", "replied"),
])
def test_broken_variants_are_refused_naming_the_field(extra: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        step_from_fields(_email(**extra), where="steps[0]")
    assert caught.value.details["field"] == f"steps[0].{field}"
    assert words in caught.value.message


def test_only_a_threaded_follow_up_may_leave_a_variant_subject_empty() -> None:
    first = step_from_fields(_email(variants=[{}, {"subject": " "}]))
    with pytest.raises(ValidationError) as caught:
        check_step_list([first])
    assert caught.value.details["field"] == "steps[0].variants[1].subject"
    follow = step_from_fields(_email(subject="", variants=[{"subject": "Bump"}, {}]))
    check_step_list([step_from_fields(_email()), follow])  # "Re: Hello" and "Bump": both fine
    # The first email may leave its own subject empty when every variant brings one.
    check_step_list([step_from_fields(_email(subject="", variants=[{"subject": "x"}, {"subject": "y"}]))])


def test_a_step_without_variants_is_unchanged() -> None:
    step = step_from_fields(_email())
    assert step.variants == () and step.auto_winner is None
    assert "variants" not in step_to_fields(step)
    assert with_variant(step, None) is step
    assert Step(StepType.EMAIL, subject="Hello", body="<p>Hi</p>") == step


# -- the statistics ------------------------------------------------------------------------------


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775.
    lo, hi = wilson(81, 263) or (0, 0)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson(0, 10) or (1, 1)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    assert wilson(0, 0) is None


def test_difference_interval_matches_newcombe() -> None:
    # Newcombe (1998), table II, example (a): 56/70 - 48/80 -> 0.0524 to 0.3339 (method 10).
    lo, hi = difference_interval(56, 70, 48, 80) or (0, 0)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_two_proportion_test() -> None:
    # 60/500 against 40/500: z = 2.108, two-sided p = 0.035.
    p = two_proportion_p(60, 500, 40, 500)
    assert p is not None and math.isclose(p, 0.035, abs_tol=0.001)
    assert two_proportion_p(0, 50, 0, 50) == 1.0
    assert two_proportion_p(1, 0, 1, 5) is None


def test_every_variant_is_compared_with_the_leader() -> None:
    found = compare(["A", "B", "C"], {"A": (40, 500), "B": (60, 500), "C": (0, 0)}, "replied")
    assert [(c.variant, c.against) for c in found] == [("A", "B")]
    only = found[0]
    assert only.significant and only.difference == pytest.approx(-0.04)
    assert only.interval[0] < -0.04 < only.interval[1] < 0
    assert "A vs B (replied): -4.0 points" in only.summary() and "significant at 5 %" in only.summary()


def test_the_stats_block_keeps_deleted_variants_and_names_the_winner() -> None:
    funnels = {"A": Funnel(sent=100, opened=40, replied=2), "B": Funnel(sent=100, opened=30, replied=9),
               "old": Funnel(sent=10)}
    report = variant_report([{"name": "A", "weight": 1}, {"name": "B", "weight": 1}],
                            {"after": 100, "metric": "replied"}, funnels)
    assert report["winner"] == "B"
    rows = report["variants"]
    assert isinstance(rows, list)
    assert [(r["name"], r["deleted"]) for r in rows] == [("A", False), ("B", False), ("old", True)]
    assert rows[1]["intervals"]["replied"][0] < 0.09 < rows[1]["intervals"]["replied"][1]
    comparisons = report["comparisons"]
    assert isinstance(comparisons, dict)
    assert [c["variant"] for c in comparisons["replied"]] == ["A", "old"]
    assert [(c["variant"], c["against"]) for c in comparisons["opened"]] == [("B", "A"), ("old", "A")]
