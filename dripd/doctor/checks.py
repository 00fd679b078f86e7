"""The doctor's vocabulary: one check's verdict, and the DNS facts the verdicts are read from. Pure.

A verdict never guesses: when a fact could not be read (DNS unreachable, a timeout) the check
says ``unknown`` ("cannot resolve"), never ``pass``.
"""

from __future__ import annotations

import dataclasses
import enum


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"  # the facts could not be read: offline, DNS unreachable, a timeout
    SKIP = "skip"  # does not apply to this mailbox (e.g. no submission server for Maildir)


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's verdict: what was read (``record``) and what to change (``fix``, '' when nothing)."""

    name: str
    status: Status
    summary: str
    record: str = ""
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "summary": self.summary,
                "record": self.record, "fix": self.fix}


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one DNS question got: records (as text), or that the name/type has none, or an error.

    ``error`` set means the question could not be answered at all (cannot resolve); an empty
    ``records`` without an error means the DNS said there is nothing (NXDOMAIN or no data).
    """

    records: tuple[str, ...] = ()
    error: str | None = None
    nxdomain: bool = False

    @property
    def resolved(self) -> bool:
        return self.error is None


# Facts gathered by the I/O side, keyed by (lower-case name without the trailing dot, rdtype).
Facts = dict[tuple[str, str], Answer]

UNASKED = Answer(error="not looked up")


def answer(facts: Facts, name: str, rdtype: str) -> Answer:
    """The fact for a question; a question never asked counts as unresolvable, never as empty."""
    return facts.get((name.lower().rstrip("."), rdtype), UNASKED)


def txt_starting(facts: Facts, name: str, prefix: str) -> tuple[Answer, list[str]]:
    """The TXT answer for ``name`` and its records that start with ``prefix`` (case-insensitive)."""
    got = answer(facts, name, "TXT")
    wanted = prefix.lower()
    return got, [r for r in got.records if r.strip().lower().startswith(wanted)]


def worst(checks: list[Check]) -> Status:
    """The report's overall status: fail over unknown over warn over pass."""
    order = [Status.FAIL, Status.UNKNOWN, Status.WARN, Status.PASS]
    present = {c.status for c in checks}
    return next((s for s in order if s in present), Status.PASS)
