"""The doctor's DNS I/O: ask dnspython the questions the verdicts need and keep every answer
(records, "nothing there", or the reason it could not be answered) as ``Facts``."""

from __future__ import annotations

from collections.abc import Iterable

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import trio

from dripd.doctor import spf
from dripd.doctor.checks import Answer, Facts
from dripd.doctor.config import DoctorConfig, split_nameserver

_MAX_ROUNDS = 12  # include chains deeper than the 10-lookup limit are already a failure
_PARALLEL = 16


def make_resolver(settings: DoctorConfig) -> dns.asyncresolver.Resolver:
    """The configured nameservers, or the system's when none are given."""
    if not settings.nameservers:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)  # no resolv.conf: every answer is an error
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*split_nameserver(n)) for n in settings.nameservers]
    resolver.lifetime = settings.timeout_seconds
    resolver.timeout = settings.timeout_seconds
    return resolver


class Asker:
    """Asks each question once and stores the answer in ``facts``."""

    def __init__(self, resolver: dns.asyncresolver.Resolver, timeout: float) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.facts: Facts = {}
        self._limit = trio.CapacityLimiter(_PARALLEL)

    async def ask_all(self, questions: Iterable[tuple[str, str]]) -> None:
        todo = {(n.lower().rstrip("."), t) for n, t in questions} - set(self.facts)
        async with trio.open_nursery() as nursery:
            for name, rdtype in sorted(todo):
                nursery.start_soon(self._ask, name, rdtype)

    async def _ask(self, name: str, rdtype: str) -> None:
        async with self._limit:
            self.facts[(name, rdtype)] = await self._resolve(name, rdtype)

    async def _resolve(self, name: str, rdtype: str) -> Answer:
        if not self.resolver.nameservers:
            return Answer(error="no nameserver configured (offline?)")
        try:
            with trio.fail_after(self.timeout + 1):
                result = await self.resolver.resolve(name, rdtype, lifetime=self.timeout, search=False)
        except dns.resolver.NXDOMAIN:
            return Answer(nxdomain=True)
        except dns.resolver.NoAnswer:
            return Answer()
        except (dns.exception.Timeout, trio.TooSlowError):
            return Answer(error="timed out (DNS unreachable?)")
        except dns.resolver.NoNameservers:
            return Answer(error="no nameserver answered (SERVFAIL or refused)")
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return Answer(error=f"{type(exc).__name__}: {exc}")
        return Answer(records=tuple(_text(rdtype, r) for r in result))

    async def spf_tree(self, domain: str) -> None:
        """The SPF record of ``domain`` and everything its includes, redirects, a and mx name."""
        pending = [(domain, "TXT")]
        for _ in range(_MAX_ROUNDS):
            await self.ask_all(pending)
            pending = []
            for (name, rdtype), got in list(self.facts.items()):
                if rdtype == "TXT":
                    for record in [r for r in got.records if r.lower().startswith("v=spf1")]:
                        pending += [q for q in spf.questions(record, name) if q not in self.facts]
                elif rdtype == "MX":
                    for record in got.records:
                        host = record.split()[-1].rstrip(".")
                        pending += [q for q in ((host, "A"), (host, "AAAA")) if host and q not in self.facts]
            if not pending:
                return


def _text(rdtype: str, rdata: object) -> str:
    if rdtype == "TXT":
        strings = getattr(rdata, "strings", ())
        return b"".join(strings).decode("utf-8", "replace")
    if rdtype == "MX":
        exchange = str(getattr(rdata, "exchange"))
        return f"{getattr(rdata, 'preference')} {exchange.rstrip('.') or '.'}"  # "." is RFC 7505's null MX
    return str(rdata)
