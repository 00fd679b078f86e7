"""Re-verification checks with a scripted resolver (no network): syntax, MX/A, offline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import dns.exception
import dns.resolver

from dripd_smtp.verify import Verdict, check_syntax, verify


class FakeResolver:
    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    async def resolve(self, qname: str, rdtype: str, **kwargs: Any) -> Any:
        self.asked.append((qname, rdtype))
        answer = self.answers.get((qname, rdtype), dns.resolver.NoAnswer())
        if isinstance(answer, BaseException):
            raise answer
        return answer


def mx(*pairs: tuple[int, str]) -> list[Any]:
    return [SimpleNamespace(preference=p, exchange=h) for p, h in pairs]


def test_syntax() -> None:
    assert check_syntax("bob@example.org")[0].ok is True
    assert check_syntax("Bob@Example.ORG")[1] == "Bob@example.org"
    for bad in ("bob", "bob@", "@example.org", "bob@@example.org", "bob@exa mple.org", "bob@example..org"):
        assert check_syntax(bad)[0].ok is False, bad


async def test_mx_records_best_first() -> None:
    resolver = FakeResolver({("example.org", "MX"): mx((20, "mx2.example.org."), (10, "mx1.example.org."))})
    result = await verify("bob@example.org", resolver=resolver)
    assert result.verdict is Verdict.VALID
    assert [c.name for c in result.checks] == ["syntax", "domain"]
    assert result.checks[1].detail == "MX mx1.example.org, mx2.example.org"


async def test_a_record_without_mx_is_enough() -> None:
    resolver = FakeResolver({("example.org", "A"): ["192.0.2.1"]})
    result = await verify("bob@example.org", resolver=resolver)
    assert result.verdict is Verdict.VALID and "A record" in result.checks[1].detail


async def test_missing_domain_and_null_mx_are_invalid() -> None:
    gone = await verify("bob@nowhere.example", resolver=FakeResolver({("nowhere.example", "MX"): dns.resolver.NXDOMAIN()}))
    assert gone.verdict is Verdict.INVALID and "does not exist" in gone.checks[1].detail
    null = await verify("bob@example.org", resolver=FakeResolver({("example.org", "MX"): mx((0, "."))}))
    assert null.verdict is Verdict.INVALID and "null MX" in null.checks[1].detail
    bare = await verify("bob@example.org", resolver=FakeResolver({}))
    assert bare.verdict is Verdict.INVALID and "no MX, A or AAAA" in bare.checks[1].detail


async def test_offline_is_a_clear_unknown_not_a_failure() -> None:
    for fault in (dns.resolver.NoNameservers(), dns.exception.Timeout(), OSError("network unreachable")):
        result = await verify("bob@example.org", resolver=FakeResolver({("example.org", "MX"): fault}))
        assert result.verdict is Verdict.UNKNOWN
        assert result.checks[1].ok is None and "cannot resolve" in result.checks[1].detail


async def test_bad_syntax_stops_before_dns() -> None:
    resolver = FakeResolver({})
    result = await verify("not an address", resolver=resolver)
    assert result.verdict is Verdict.INVALID and len(result.checks) == 1 and resolver.asked == []
