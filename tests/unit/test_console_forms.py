"""The console's pure helpers: form -> API body, step names, pasted addresses, sessions."""

from __future__ import annotations

import csv
import io

from dripd.console.pages_people import pasted_csv
from dripd.console.pages_sequence import step_body, step_summary
from dripd.console.sessions import IDLE_SECONDS, SessionStore, same_secret


def test_a_wait_form_becomes_the_api_unit_it_names() -> None:
    assert step_body({"type": "wait", "wait": "2", "unit": "hours"}) == {"type": "wait", "waitHours": 2.0}
    assert step_body({"type": "wait", "wait": "soon", "unit": "days"}) == {"type": "wait", "waitDays": "soon"}
    assert step_body({"type": "email", "subject": "Hi", "body": "x"}) == {"type": "email", "subject": "Hi", "body": "x"}
    assert step_body({"type": "conditional", "condition": "if_opened"}) == {"type": "conditional",
                                                                            "condition": "if_opened"}


def test_step_summaries_read_like_the_steps() -> None:
    assert step_summary({"type": "wait", "waitDays": 1}) == "wait 1 day"
    assert step_summary({"type": "wait", "waitMinutes": 90}) == "wait 90 minutes"
    assert step_summary({"type": "email", "subject": ""}) == "(threaded: Re: the first subject)"


def test_pasted_addresses_become_a_csv_with_quoting() -> None:
    data = pasted_csv("ada@example.org, Ada\n\n  grace@example.org\nx@example.org, Smith, Jr.\n")
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows == [["email", "firstName"], ["ada@example.org", "Ada"], ["grace@example.org", ""],
                    ["x@example.org", "Smith, Jr."]]


def test_sessions_expire_when_idle_and_csrf_compares_exactly() -> None:
    now = [1000.0]
    store = SessionStore(lambda: now[0])
    session = store.open("digest")
    assert store.get(session.id) is session
    now[0] += IDLE_SECONDS - 1
    assert store.get(session.id) is session  # use keeps it alive
    now[0] += IDLE_SECONDS + 1
    assert store.get(session.id) is None
    assert same_secret(session.csrf, session.csrf) and not same_secret("", session.csrf)
    assert not same_secret(None, session.csrf) and not same_secret(session.csrf[:-1], session.csrf)
