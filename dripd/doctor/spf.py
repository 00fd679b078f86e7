"""SPF (RFC 7208), pure: parse a record, list the DNS questions evaluating it needs, and decide
from the gathered facts whether a sending IP is authorised, counting DNS lookups on the way.

What the doctor does not model: macros (a mechanism with ``%{`` cannot be evaluated without the
envelope: it is reported, never treated as a match) and ``ptr`` (deprecated by RFC 7208 5.5; it
counts as a lookup and is reported).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from dripd.doctor.checks import Answer, Facts, answer, txt_starting

LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: more DNS-querying terms than this is a permerror
_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_LOOKUP_MECHANISMS = {"include", "a", "mx", "ptr", "exists"}
_TERM_RE = re.compile(r"^([+?~-]?)([a-z][a-z0-9_.-]*)(?:([:=])(.*?))?(/\d+)?(//\d+)?$", re.I)


class SpfSyntaxError(ValueError):
    """The record does not parse (RFC 7208 permerror)."""


@dataclasses.dataclass(frozen=True)
class Term:
    qualifier: str  # "+", "-", "~", "?"
    name: str  # mechanism or modifier name, lower case
    value: str  # the domain-spec or address, '' when absent
    cidr4: int | None = None
    cidr6: int | None = None
    modifier: bool = False

    @property
    def text(self) -> str:
        body = self.name + (("=" if self.modifier else ":") + self.value if self.value else "")
        return ("" if self.qualifier == "+" else self.qualifier) + body


def parse(record: str) -> list[Term]:
    """The terms of a ``v=spf1`` record; raises SpfSyntaxError naming the bad term."""
    parts = record.split()
    if not parts or parts[0].lower() != "v=spf1":
        raise SpfSyntaxError("the record does not start with v=spf1")
    terms = []
    for raw in parts[1:]:
        match = _TERM_RE.match(raw)
        if not match:
            raise SpfSyntaxError(f"term {raw!r} does not parse")
        qualifier, name, sep, value, cidr, cidr6 = match.groups()
        name = name.lower()
        if sep == "=":
            if qualifier:
                raise SpfSyntaxError(f"modifier {raw!r} cannot take a qualifier")
            terms.append(Term("+", name, value or "", modifier=True))
            continue
        if name not in _MECHANISMS:
            raise SpfSyntaxError(f"unknown mechanism {name!r} in {raw!r}")
        if name in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network((value or "") + (cidr or ""), strict=False)
            except ValueError:
                raise SpfSyntaxError(f"{raw!r} is not a valid {name} network") from None
            if (network.version == 4) != (name == "ip4"):
                raise SpfSyntaxError(f"{raw!r}: address family does not match {name}")
        if name in ("include", "exists") and not value:
            raise SpfSyntaxError(f"{name} needs a domain in {raw!r}")
        terms.append(Term(qualifier or "+", name, value or "", _cidr(cidr), _cidr(cidr6)))
    names = [t.name for t in terms if t.modifier]
    for once in ("redirect", "exp"):
        if names.count(once) > 1:
            raise SpfSyntaxError(f"{once}= appears more than once")
    return terms


def _cidr(text: str | None) -> int | None:
    return int(text.strip("/")) if text else None


def spf_records(facts: Facts, domain: str) -> tuple[Answer, list[str]]:
    """The TXT answer of ``domain`` and its ``v=spf1`` records (RFC 7208 4.5: exactly one is valid)."""
    got, found = txt_starting(facts, domain, "v=spf1")
    return got, [r for r in found if r.split()[0].lower() == "v=spf1"]


def questions(record: str, domain: str) -> list[tuple[str, str]]:
    """The DNS questions one record's own terms ask (includes/redirects are records of their own)."""
    try:
        terms = parse(record)
    except SpfSyntaxError:
        return []
    asked: list[tuple[str, str]] = []
    for term in terms:
        target = (term.value or domain).lower().rstrip(".")
        if "%{" in target:
            continue
        if term.name in ("include", "redirect"):
            asked.append((target, "TXT"))
        elif term.name in ("a", "exists"):
            asked += [(target, "A"), (target, "AAAA")]
        elif term.name == "mx":
            asked.append((target, "MX"))
    return asked


@dataclasses.dataclass
class Evaluation:
    """check_host()'s outcome for one IP, and what was counted on the way."""

    result: str = "neutral"  # pass fail softfail neutral none permerror temperror
    lookups: int = 0
    void_lookups: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    unresolved: list[str] = dataclasses.field(default_factory=list)


_QUALIFIER_RESULT = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


def evaluate(facts: Facts, domain: str, ip: str | None) -> Evaluation:
    """RFC 7208 check_host() over the facts; with ``ip`` None, only walk and count lookups."""
    state = Evaluation()
    address = ipaddress.ip_address(ip) if ip else None
    state.result = _check_host(facts, domain.lower().rstrip("."), address, state, depth=0)
    if state.lookups > LOOKUP_LIMIT:
        state.result = "permerror"
        state.problems.append(f"{state.lookups} DNS lookups, over the limit of {LOOKUP_LIMIT}")
    return state


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _check_host(facts: Facts, domain: str, ip: _Address | None, state: Evaluation, depth: int) -> str:
    if depth > LOOKUP_LIMIT:
        return "permerror"  # an include loop: the lookup count has already gone over the limit
    got, records = spf_records(facts, domain)
    if not got.resolved:
        state.unresolved.append(f"TXT {domain}")
        return "temperror"
    if not records:
        return "none"
    if len(records) > 1:
        state.problems.append(f"{domain} publishes {len(records)} v=spf1 records (exactly one is allowed)")
        return "permerror"
    try:
        terms = parse(records[0])
    except SpfSyntaxError as exc:
        state.problems.append(f"{domain}: {exc}")
        return "permerror"
    outcome: str | None = None
    for term in (t for t in terms if not t.modifier):
        if term.name in _LOOKUP_MECHANISMS:
            state.lookups += 1
        if term.name == "ptr":
            state.problems.append(f"{domain}: ptr is deprecated (RFC 7208 5.5) and slow; use ip4/ip6 or include")
        matched = _matches(facts, domain, term, ip, state, depth)
        if matched is None:
            outcome = outcome or "temperror"
            continue
        if matched and outcome is None:
            outcome = _QUALIFIER_RESULT[term.qualifier]
            if ip is not None:
                return outcome
    if outcome is not None and ip is not None:
        return outcome
    redirect = next((t for t in terms if t.modifier and t.name == "redirect"), None)
    if redirect is not None and not any(t.name == "all" for t in terms if not t.modifier):
        state.lookups += 1
        result = _check_host(facts, redirect.value.lower().rstrip("."), ip, state, depth + 1)
        return "permerror" if result == "none" else result
    return outcome or "neutral"


def _matches(facts: Facts, domain: str, term: Term, ip: _Address | None, state: Evaluation, depth: int
             ) -> bool | None:
    """Whether one mechanism matches ``ip``; None when it cannot be told (unresolved, macros)."""
    if term.name == "all":
        return True
    if term.name in ("ip4", "ip6"):
        if ip is None:
            return False
        network = ipaddress.ip_network(term.value + (f"/{term.cidr4}" if term.cidr4 is not None else ""), strict=False)
        return ip.version == network.version and ip in network
    target = (term.value or domain).lower().rstrip(".")
    if "%{" in target:
        state.problems.append(f"{domain}: {term.text} uses macros; the doctor cannot evaluate it")
        return None
    if term.name == "include":
        result = _check_host(facts, target, ip, state, depth + 1)
        if result in ("temperror",):
            return None
        if result in ("none", "permerror"):
            state.problems.append(f"include:{target} has no usable SPF record ({result})")
            return None if ip is None else False
        return result == "pass"
    if term.name == "ptr":
        return False  # needs the reverse zone of the connecting IP: never claimed as a match
    if term.name == "exists":
        got = answer(facts, target, "A")
        if not _note_void(got, f"A {target}", state):
            return None
        return bool(got.records)
    hosts = [target]
    if term.name == "mx":
        got = answer(facts, target, "MX")
        if not _note_void(got, f"MX {target}", state):
            return None
        hosts = [r.split()[-1].lower().rstrip(".") for r in got.records]
    addresses: list[str] = []
    for host in hosts:
        for rdtype in ("A", "AAAA"):
            got = answer(facts, host, rdtype)
            if not got.resolved:
                state.unresolved.append(f"{rdtype} {host}")
                return None
            addresses += got.records
    if not addresses:
        state.void_lookups += 1
    if ip is None:
        return False
    for text in addresses:
        cidr = term.cidr4 if ip.version == 4 else term.cidr6
        network = ipaddress.ip_network(text + (f"/{cidr}" if cidr is not None else ""), strict=False)
        if network.version == ip.version and ip in network:
            return True
    return False


def _note_void(got: Answer, question: str, state: Evaluation) -> bool:
    """False when the question went unanswered (recorded); counts a void lookup when empty."""
    if not got.resolved:
        state.unresolved.append(question)
        return False
    if not got.records:
        state.void_lookups += 1
    return True
