"""One mailbox's diagnosis: gather the DNS facts and the TLS probe (I/O), build a message as
the engine would, and hand everything to the pure verdicts."""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dripd import render
from dripd.config import MailboxConfig
from dripd.doctor import verdicts
from dripd.doctor.checks import Check, Status, worst
from dripd.doctor.config import DoctorConfig
from dripd.doctor.lookup import Asker, make_resolver
from dripd.doctor.tls_probe import probe_tls
from dripd.engagement import Engagement, MessageRef
from dripd.model import SequenceSettings


@dataclasses.dataclass(frozen=True)
class Report:
    mailbox_id: str
    domain: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        return worst(list(self.checks))

    def as_json(self) -> dict[str, Any]:
        return {"mailboxId": self.mailbox_id, "domain": self.domain, "status": self.status.value,
                "checks": [c.as_json() for c in self.checks]}


async def diagnose(mailbox: MailboxConfig, settings: DoctorConfig, sequences: Sequence[SequenceSettings],
                   engagement: Engagement, now: float) -> Report:
    """Every check for one mailbox's From domain."""
    domain = mailbox.address.rsplit("@", 1)[1].lower()
    asker = Asker(make_resolver(settings), settings.timeout_seconds)
    smtp = _smtp_table(mailbox)
    selectors = [mailbox.dkim_selector] if mailbox.dkim_selector else list(settings.dkim_selectors)
    questions = [(domain, "MX"), (domain, "A"), (f"_dmarc.{domain}", "TXT"),
                 (f"_dmarc.{verdicts.org_domain(domain)}", "TXT")]
    questions += [(f"{s}._domainkey.{domain}", "TXT") for s in selectors]
    relay = str(smtp["host"]) if smtp else None
    if relay and not _is_ip(relay):
        questions += [(relay, "A"), (relay, "AAAA")]
    await asker.ask_all(questions)
    await asker.spf_tree(domain)
    ips, ip_check = _sending_ips(settings, relay, asker)
    await asker.ask_all((verdicts.dnsbl_name(ip, zone), "A") for ip in ips if verdicts.listable(ip)
                        for zone in settings.dnsbls)
    facts = asker.facts
    spf_check, spf_ok = verdicts.spf_check(facts, domain, ips)
    dkim_check, dkim_ok = verdicts.dkim_check(facts, domain, selectors)
    probe = None
    if smtp:
        ca = smtp.get("ca_file")
        probe = await probe_tls(str(smtp["host"]), int(smtp.get("port", 587)), str(smtp.get("security", "starttls")),
                                Path(ca) if ca else None, settings.timeout_seconds)
    checks = [spf_check, dkim_check, *verdicts.dmarc_checks(facts, domain, spf_ok, dkim_ok),
              verdicts.mx_check(facts, domain), verdicts.tls_check(probe),
              verdicts.dnsbl_check(facts, ips, list(settings.dnsbls))]
    if ip_check is not None:
        checks.insert(0, ip_check)
    checks += verdicts.shape_checks(_shape(mailbox, domain, sequences, engagement, now))
    return Report(mailbox.id, domain, tuple(checks))


def _smtp_table(mailbox: MailboxConfig) -> dict[str, Any] | None:
    if mailbox.transport != "smtp":
        return None
    section = mailbox.plugin_section("smtp")
    return dict(section) if section and section.get("host") else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _sending_ips(settings: DoctorConfig, relay: str | None, asker: Asker) -> tuple[list[str], Check | None]:
    """The configured sending addresses, else the SMTP server's; a check when they cannot be read."""
    if settings.sending_ips:
        return list(settings.sending_ips), None
    if relay is None:
        return [], None
    if _is_ip(relay):
        return [relay], None
    found: list[str] = []
    errors = []
    for rdtype in ("A", "AAAA"):
        got = asker.facts.get((relay.lower().rstrip("."), rdtype))
        if got is None or not got.resolved:
            errors.append(f"{rdtype} {relay}")
        else:
            found += got.records
    if errors and not found:
        return [], Check("sending-host", Status.UNKNOWN, f"{verdicts.CANNOT_RESOLVE} {', '.join(errors)}")
    if not found:
        return [], Check("sending-host", Status.FAIL, f"the SMTP host {relay} has no address", "",
                         "check the host name in [mailboxes.smtp]")
    return found, None


def _shape(mailbox: MailboxConfig, domain: str, sequences: Sequence[SequenceSettings], engagement: Engagement,
           now: float) -> verdicts.Shape:
    """Headers of a message built exactly as the engine builds one for this mailbox."""
    message_id = render.make_message_id(mailbox.message_id_domain, "doctor." + render.unique_hex(8))
    recipient = "recipient@example.invalid"
    urls, one_click = engagement.list_unsubscribe(MessageRef(message_id, mailbox.id, 0, 0, 0, recipient), mailbox)
    envelope = render.Envelope(from_address=mailbox.address, from_name=mailbox.name, to_address=recipient,
                               message_id=message_id, date=now, list_unsubscribe=urls, one_click=one_click)
    data = render.build_message(envelope, render.Rendered("doctor", "<p>doctor</p>", "doctor", ()))
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    mine = [s for s in sequences if mailbox.id in (s.mailbox_id, *s.mailbox_ids)]
    tracked = [s for s in mine if s.track_opens or s.track_clicks]
    return verdicts.Shape(
        from_domain=domain, message_id=str(headers.get("Message-ID", "")), date=str(headers.get("Date", "")),
        list_unsubscribe=" ".join(str(headers.get("List-Unsubscribe", "")).split()),
        list_unsubscribe_post=str(headers.get("List-Unsubscribe-Post", "")),
        tracked=tuple(s.name for s in tracked),
        tracked_without_headers=tuple(s.name for s in tracked if not s.list_unsubscribe))
