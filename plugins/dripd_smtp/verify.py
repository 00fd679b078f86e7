"""Re-verification of an address before it leaves the suppression list (seed 000's "triple
check"): syntax (email-validator), the domain has MX or A/AAAA records (dnspython), and an
optional SMTP RCPT probe at the domain's best MX. Each check says True (passes), False (fails)
or None (cannot tell: offline, timeout, a 4xx), and why.

``dripctl contacts verify EMAIL`` prints each check (wiring lives with the API/CLI).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver
import email_validator
import trio

from dripd_smtp.outcome import enhanced_status


class Verdict(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Check:
    name: str  # "syntax" | "domain" | "smtp"
    ok: bool | None
    detail: str


@dataclass(frozen=True)
class Verification:
    email: str
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> Verdict:
        if any(c.ok is False for c in self.checks):
            return Verdict.INVALID
        if all(c.ok is True for c in self.checks):
            return Verdict.VALID
        return Verdict.UNKNOWN


class Resolver(Protocol):
    """What is asked of a DNS resolver (dnspython's ``dns.asyncresolver.Resolver``, or a test's)."""

    async def resolve(self, qname: str, rdtype: str, *, lifetime: float | None = None) -> Any: ...


def check_syntax(address: str) -> tuple[Check, str | None]:
    """RFC 5321/5322 syntax; returns the normalized address when it passes."""
    try:
        result = email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return Check("syntax", False, str(exc)), None
    return Check("syntax", True, "well-formed"), result.normalized


async def mail_hosts(domain: str, resolver: Resolver | None = None, timeout: float = 5.0) -> tuple[Check, list[str]]:
    """Whether ``domain`` can receive mail, and its MX hosts best first (the domain itself when
    it has only A/AAAA records, RFC 5321 5.1)."""
    if resolver is None:
        resolver = dns.asyncresolver.Resolver()  # the system's nameservers
    try:
        with trio.fail_after(timeout):
            try:
                answer = await resolver.resolve(domain, "MX", lifetime=timeout)
                records = sorted(answer, key=lambda r: r.preference)
                hosts = [str(r.exchange).rstrip(".") for r in records]
                if hosts == [""] or hosts == []:
                    return Check("domain", False, f"{domain} publishes a null MX: it accepts no mail"), []
                return Check("domain", True, f"MX {', '.join(hosts[:3])}"), hosts
            except dns.resolver.NoAnswer:
                pass
            for rdtype in ("A", "AAAA"):
                try:
                    await resolver.resolve(domain, rdtype, lifetime=timeout)
                    return Check("domain", True, f"no MX, but an {rdtype} record"), [domain]
                except dns.resolver.NoAnswer:
                    continue
            return Check("domain", False, f"{domain} has no MX, A or AAAA record"), []
    except dns.resolver.NXDOMAIN:
        return Check("domain", False, f"{domain} does not exist"), []
    except (dns.resolver.NoNameservers, dns.exception.Timeout, trio.TooSlowError, OSError) as exc:
        return Check("domain", None, f"cannot resolve {domain} (offline or DNS unreachable): {type(exc).__name__}"), []


async def probe_rcpt(address: str, host: str, *, port: int = 25, helo: str | None = None,
                     mail_from: str = "", timeout: float = 10.0) -> Check:
    """Ask ``host`` whether it would take mail for ``address`` (MAIL, RCPT, then QUIT: nothing
    is sent). Many servers accept every RCPT or greylist: a 250 is weaker evidence than a 550."""
    import aiosmtplib
    import trio_asyncio

    async def aio_probe() -> tuple[int, str]:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=timeout, start_tls=False, local_hostname=helo)
        try:
            await smtp.connect()
            await smtp.ehlo()
            response = await smtp.execute_command(b"MAIL", b"FROM:<" + mail_from.encode() + b">")
            if response.code != 250:
                return response.code, response.message
            response = await smtp.execute_command(b"RCPT", b"TO:<" + address.encode() + b">")
            return response.code, response.message
        finally:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()

    try:
        with trio.fail_after(timeout):
            code, text = await trio_asyncio.aio_as_trio(aio_probe)()
    except (trio.TooSlowError, OSError, aiosmtplib.SMTPException) as exc:
        return Check("smtp", None, f"{host}: no answer ({type(exc).__name__})")
    status = enhanced_status(text)
    reply = f"{code} {' '.join(text.split())}"[:200]
    if code in (250, 251):
        return Check("smtp", True, f"{host} accepts RCPT: {reply}")
    if 500 <= code < 600 and not (status or "").startswith("5.7"):
        return Check("smtp", False, f"{host} refuses the address: {reply}")
    return Check("smtp", None, f"{host} would not say: {reply}")  # 4xx, greylisting, policy blocks


async def verify(address: str, *, resolver: Resolver | None = None, probe: bool = False,
                 probe_port: int = 25, probe_host: str | None = None, mail_from: str = "",
                 timeout: float = 5.0) -> Verification:
    """Every check for ``address``; the later ones run only when the earlier ones pass."""
    syntax, normalized = check_syntax(address)
    if normalized is None:
        return Verification(address, (syntax,))
    domain = normalized.rsplit("@", 1)[1]
    domain_check, hosts = await mail_hosts(domain, resolver, timeout)
    checks = [syntax, domain_check]
    if probe:
        target = probe_host or (hosts[0] if hosts else None)
        if target is None:
            checks.append(Check("smtp", None, "skipped: no mail host to ask"))
        else:
            checks.append(await probe_rcpt(normalized, target, port=probe_port, mail_from=mail_from, timeout=timeout))
    return Verification(normalized, tuple(checks))
