"""dripctl's parser and output helpers, without a daemon: every argument has help, --json is
accepted after any subcommand, times are shown relative to the daemon's clock."""

from __future__ import annotations

import argparse

from dripd.ctl import seqfile
from dripd.ctl.cmd_sequences import STATUSES
from dripd.ctl.main import _parser
from dripd.ctl.output import cell, relative
from dripd.ctl.runner import in_flag_names
from dripd.model import EnrollmentStatus


def _walk(parser: argparse.ArgumentParser, path: str = "dripctl") -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _walk(sub, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            out.append((path, action))
    return out


def test_every_argument_and_option_has_help() -> None:
    missing = [f"{path} {action.dest}" for path, action in _walk(_parser()) if not action.help]
    assert missing == []
    helps = {(path, action.dest): action.help for path, action in _walk(_parser())}
    assert "milliseconds" in str(helps[("dripctl steps add", "ms")]) and "seed" not in str(helps[("dripctl steps add", "ms")])
    assert "days" in str(helps[("dripctl steps add", "days")])


def test_json_is_accepted_after_any_subcommand() -> None:
    parser = _parser()
    assert parser.parse_args(["sequences", "list", "--json"]).json is True
    assert parser.parse_args(["--json", "sequences", "list"]).json is True
    assert parser.parse_args(["sequences", "list"]).json is False
    assert parser.parse_args(["steps", "add", "s", "--type", "wait", "--days", "1", "--json"]).json is True


def test_errors_name_the_flags_the_user_typed() -> None:
    assert in_flag_names("waitDays: give waitDays, waitHours or delayMs") == "--days: give --days, --hours or --ms"
    assert in_flag_names("subject: must not be longer than 998 characters") == "--subject: must not be longer than 998 characters"
    assert in_flag_names("name: the subject is fine") == "name: the subject is fine"


def test_relative_times_against_the_daemon_clock() -> None:
    now = "2026-12-03T12:42:00Z"
    assert relative("2026-12-03T12:48:00Z", now) == "in 6 min (12:48 UTC)"
    assert relative("2026-12-03T12:42:20Z", now) == "now (12:42 UTC)"
    assert relative("2026-12-03T14:12:00Z", now) == "in 1 h 30 min (14:12 UTC)"
    assert relative("2026-12-05T12:42:00Z", now) == "in 2 days (Sat 05 Dec 12:42 UTC)"
    assert relative("2026-12-03T12:30:00Z", now) == "12 min ago (12:30 UTC)"
    assert relative(None, now) == "-"


def test_tables_show_pairs_not_json_and_steps_read_like_words() -> None:
    assert cell({"tier": "gold", "seats": 3}) == "tier=gold, seats=3"
    assert cell(["a", "b"]) == "a, b"
    steps = [{"type": "email", "subject": "Hi {{firstName}}"}, {"type": "wait", "waitDays": 1},
             {"type": "email", "subject": ""}, {"type": "delay", "delayMs": 200}, {"type": "wait", "waitHours": 1.5}]
    first = seqfile.first_subject(steps)
    assert [seqfile.describe(s, first) for s in steps] == [
        "email 'Hi {{firstName}}'", "wait 1 day", "email 'Re: Hi {{firstName}}' (threaded reply)", "wait 200 ms",
        "wait 1.5 hours"]
    assert seqfile.describe({"type": "email", "subject": "", "thread": False}) == "email ''"


def test_dripctl_knows_every_enrollment_status() -> None:
    assert STATUSES == tuple(status.value for status in EnrollmentStatus)


def test_days_read_as_days() -> None:
    now = "2026-12-03T03:33:00Z"
    assert relative("2026-12-05T03:33:00Z", now) == "in 2 days (Sat 05 Dec 03:33 UTC)"
    assert relative("2026-12-04T09:33:00Z", now) == "in 1.2 days (Fri 04 Dec 09:33 UTC)"
    assert relative("2026-12-04T03:40:00Z", now) == "in 1 day (Fri 04 Dec 03:40 UTC)"
