"""The step form's variants part (which rows become variants, what an empty field means, the
round trip from a stored step to the form and back) and the inbox's filters and page links."""

from __future__ import annotations

from dripd.console.pages_inbox import _api_filters, _page_url
from dripd.console.pages_sequence import step_body, step_summary
from dripd.console.step_form import form_values, stored_values
from dripd.variants import MAX_VARIANTS

EMAIL = {"type": "email", "subject": "Hi", "body": "<p>x</p>"}


def test_filled_rows_become_variants_and_empty_fields_use_the_steps_own() -> None:
    form = {**EMAIL, "variant-0-name": "A", "variant-1-name": " B ", "variant-1-weight": "2",
            "variant-1-subject": "Other", "variant-2-name": "", "variant-3-body": "<p>only a body</p>",
            "autoWinnerAfter": "100", "autoWinnerMetric": "opened"}
    assert step_body(form) == {**EMAIL, "variants": [
        {"name": "A"}, {"name": "B", "weight": 2, "subject": "Other"}, {"body": "<p>only a body</p>"}],
        "autoWinner": {"after": 100, "metric": "opened"}}


def test_a_removed_row_or_no_rows_sends_the_step_without_variants() -> None:
    form = {**EMAIL, "variant-0-name": "A", "variant-1-name": "B", "variant-1-remove": "on"}
    assert step_body(form) == {**EMAIL, "variants": [{"name": "A"}]}  # the API refuses one variant, naming it
    assert step_body(EMAIL) == EMAIL


def test_bad_numbers_go_to_the_api_as_typed_so_it_names_them() -> None:
    body = step_body({**EMAIL, "variant-0-name": "A", "variant-0-weight": "lots", "variant-1-name": "B",
                      "autoWinnerAfter": "soon"})
    assert body["variants"][0]["weight"] == "lots" and body["autoWinner"]["after"] == "soon"


def test_text_part_and_a_new_thread_are_kept() -> None:
    assert step_body({**EMAIL, "text": "plain", "newThread": "on"}) == {**EMAIL, "text": "plain", "thread": False}


def test_a_stored_step_round_trips_through_the_form() -> None:
    stored = {**EMAIL, "index": 0, "id": 7, "text": "plain", "thread": False, "autoWinner": {"after": 5, "metric": "clicked"},
              "variants": [{"name": "A", "weight": 1}, {"name": "B", "weight": 3, "body": "<p>b</p>"}]}
    values = stored_values(stored)
    rows = values["variant_rows"]
    assert len(rows) == 3 and [r["saved"] for r in rows] == [True, True, False]  # one empty row to add a third
    posted = {k: v for k, v in values.items() if isinstance(v, str)}
    for row in rows:
        posted.update({f"variant-{row['index']}-{name}": row[name] for name in ("name", "weight", "subject", "body", "text")})
    assert step_body(posted) == {**EMAIL, "text": "plain", "thread": False,
                                 "variants": [{"name": "A", "weight": 1}, {"name": "B", "weight": 3, "body": "<p>b</p>"}],
                                 "autoWinner": {"after": 5, "metric": "clicked"}}
    assert "A/B: A, B" in step_summary(stored)


def test_the_form_offers_rows_up_to_the_limit() -> None:
    assert len(form_values({})["variant_rows"]) == 2
    full = {f"variant-{i}-name": f"V{i}" for i in range(MAX_VARIANTS)}
    assert len(form_values(full)["variant_rows"]) == MAX_VARIANTS


def test_inbox_filters_go_to_the_api_as_typed_and_pages_keep_them() -> None:
    filters = {"mailbox": "sales", "sequence": "7", "category": "", "state": "unread"}
    assert _api_filters(filters) == {"mailbox": "sales", "sequence": "7", "unread": "true"}
    assert _api_filters({**filters, "state": "read", "sequence": "x"})["sequence"] == "x"  # the API names it
    assert _page_url(filters, 2) == "/app/inbox?mailbox=sales&sequence=7&state=unread&page=2"
    assert _page_url({k: "" for k in filters}, 1) == "/app/inbox"
    assert _page_url({**filters, "mailbox": "a&b"}, 1).startswith("/app/inbox?mailbox=a%26b&")
