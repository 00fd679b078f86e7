"""Config types are strict (issue 21.6): nothing is coerced, every broken key is reported in one
run, and the rules read as TOML advice rather than pydantic's phrasing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dripd.config_load import problems_of
from dripd.errors import ConfigError
from tests.unit.test_config import box, parse


def messages(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return [problem.message for problem in problems_of(info.value)]


@pytest.mark.parametrize(
    ("mailbox", "expected"),
    [
        ({"hourly_cap": "10"}, "mailboxes[0].hourly_cap: must be an integer (no quotes, not true/false)"),
        ({"hourly_cap": True}, "mailboxes[0].hourly_cap: must be an integer (no quotes, not true/false)"),
        ({"jitter_seconds": "5"}, "mailboxes[0].jitter_seconds: must be a number (no quotes)"),
        ({"warmup_start": "2026-11-01"},
         "mailboxes[0].warmup_start: must be a TOML date such as 2026-11-01 (no quotes, no time)"),
        ({"warmup_start": dt.datetime(2026, 11, 1, 8, 0)},
         "mailboxes[0].warmup_start: must be a TOML date such as 2026-11-01 (no quotes, no time)"),
        ({"warmup": [[7, "10"]]}, "mailboxes[0].warmup[0][1]: must be an integer (no quotes, not true/false)"),
        ({"name": 5}, "mailboxes[0].name: must be a string (in quotes)"),
        ({"maildir": {"path": 5}}, "mailboxes[0].maildir.path: must be a path (a non-empty string)"),
        ({"transport": "smtp", "smtp": {"host": "h", "port": "587"}},
         "mailboxes[0].smtp.port: must be an integer (no quotes, not true/false)"),
    ],
)
def test_types_are_not_coerced(mailbox: dict[str, Any], expected: str) -> None:
    assert expected in messages({"mailboxes": [box(**mailbox)]})


def test_a_bad_path_reads_as_a_rule() -> None:
    assert messages({"mailboxes": [box()], "daemon": {"state_dir": 5}}) == [
        "daemon.state_dir: must be a path (a non-empty string)"]


def test_booleans_and_literals_read_plainly() -> None:
    found = messages({"mailboxes": [box()], "daemon": {"resend_uncertain": "yes", "log_level": "loud"}})
    assert "daemon.resend_uncertain: must be true or false (no quotes)" in found
    assert "daemon.log_level: must be one of 'debug', 'info', 'warning' or 'error'" in found


def test_every_error_is_reported_in_one_run() -> None:
    data = {
        "daemon": {"state_dir": 5, "queue_limit": "9"},
        "mailboxes": [box(hourly_cap="10"), box(id="b", daily_cap=True, maildir={"path": "x", "mode": 1})],
        "api": {"max_concurrent_requests": 0},
    }
    assert messages(data) == [
        "daemon.state_dir: must be a path (a non-empty string)",
        "daemon.queue_limit: must be an integer (no quotes, not true/false)",
        "mailboxes[0].hourly_cap: must be an integer (no quotes, not true/false)",
        "mailboxes[1].daily_cap: must be an integer (no quotes, not true/false)",
        "api.max_concurrent_requests: must be a positive integer",
        "mailboxes[1].maildir.mode: unknown key",  # a plugin table of a broken mailbox, same run
    ]


def test_a_broken_mailbox_still_has_its_plugin_table_checked() -> None:
    data = {"mailboxes": [box(hourly_cap="10", transport="smtp", smtp={"host": "h", "port": "587"})]}
    assert messages(data) == ["mailboxes[0].hourly_cap: must be an integer (no quotes, not true/false)",
                              "mailboxes[0].smtp.port: must be an integer (no quotes, not true/false)"]


def test_plugin_tables_of_good_mailboxes_are_reported_with_the_core_errors() -> None:
    data = {"daemon": {"queue_limit": "9"}, "mailboxes": [box(maildir={"path": "x", "mode": 1})]}
    assert messages(data) == ["daemon.queue_limit: must be an integer (no quotes, not true/false)",
                              "mailboxes[0].maildir.mode: unknown key"]


def test_proper_toml_types_still_pass() -> None:
    config = parse({"mailboxes": [box(hourly_cap=10, jitter_seconds=5, warmup=[[7, 10]],
                                      warmup_start=dt.date(2026, 11, 1))]})
    mailbox = config.mailboxes[0]
    assert (mailbox.hourly_cap, mailbox.jitter_seconds, mailbox.warmup) == (10, 5.0, [(7, 10)])
