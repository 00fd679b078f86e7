"""`dripctl doctor` against real servers: dnslib's DNS server process serving a test zone, an
aiosmtpd submission server offering STARTTLS, and (for the API and dripctl) the real daemon.

Every wait is bounded: DNS questions and the TLS probe carry the doctor's own timeout, and the
server processes must print their port within 30 s.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from dripd.config import MailboxConfig
from dripd.doctor.config import DoctorConfig
from dripd.doctor.run import Report, diagnose
from dripd.engagement import NoTracking
from dripd.model import SequenceSettings
from dripd.tracking.engagement import Tracking
from dripd.tracking.tokens import Signer
from tests.integration.daemon_process import DripdProcess, fast_mailbox
from tests.integration.doctor_servers import Server, dns_server, rsa_public_key_b64, starttls_server, txt
from tests.integration.servers import _self_signed, free_port

SENDING_IP = "192.0.2.10"  # TEST-NET-1: a public-looking address the blocklist is asked about


def _zone(key2048: str, key512: str) -> str:
    includes = " ".join(f"include:l{i}.loop.test" for i in range(11))
    lines = [
        # good.test: everything right, SPF through an include, strict DMARC.
        f'good.test. 60 IN TXT {txt("v=spf1 include:_spf.relay.test -all")}',
        f'_spf.relay.test. 60 IN TXT {txt("v=spf1 ip4:192.0.2.0/28 ip4:127.0.0.1 ~all")}',
        "good.test. 60 IN MX 10 mx.good.test.",
        "mx.good.test. 60 IN A 127.0.0.1",
        f'_dmarc.good.test. 60 IN TXT {txt("v=DMARC1; p=reject; adkim=s; aspf=s")}',
        f'sel1._domainkey.good.test. 60 IN TXT {txt("v=DKIM1; k=rsa; p=" + key2048)}',
        "99.2.0.192.bl.test. 60 IN A 127.0.0.2",  # someone else is listed; 192.0.2.10 is not
        # bad.test: +all, no DMARC, a 512-bit key under a common selector, a null MX.
        f'bad.test. 60 IN TXT {txt("v=spf1 ip4:198.51.100.1 +all")}',
        f'default._domainkey.bad.test. 60 IN TXT {txt("v=DKIM1; k=rsa; p=" + key512)}',
        "bad.test. 60 IN MX 0 .",
        # loop.test: eleven includes, over the 10-lookup limit.
        f'loop.test. 60 IN TXT {txt("v=spf1 " + includes + " -all")}',
        *(f'l{i}.loop.test. 60 IN TXT {txt("v=spf1 ip4:192.0.2.10 -all")}' for i in range(11)),
        "loop.test. 60 IN MX 10 mx.good.test.",
        f'_dmarc.loop.test. 60 IN TXT {txt("v=DMARC1; p=none")}',
        # nospf.test: an unrelated TXT only; DKIM absent.
        f'nospf.test. 60 IN TXT {txt("google-site-verification=abc")}',
        "nospf.test. 60 IN MX 10 mx.good.test.",
        f'_dmarc.nospf.test. 60 IN TXT {txt("v=DMARC1; p=quarantine")}',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def tls_files() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="dripd-doctor-tls-") as root:
        yield _self_signed(Path(root))


@pytest.fixture(scope="module")
def dns() -> Iterator[Server]:
    with dns_server(_zone(rsa_public_key_b64(2048), rsa_public_key_b64(512))) as server:
        yield server


@pytest.fixture(scope="module")
def submission(tls_files: tuple[Path, Path]) -> Iterator[Server]:
    with starttls_server(*tls_files) as server:
        yield server


def _settings(dns: Server, **overrides: Any) -> DoctorConfig:
    values: dict[str, Any] = {"nameservers": [f"127.0.0.1:{dns.port}"], "timeout_seconds": 3, "dnsbls": ["bl.test"],
                              "sending_ips": [SENDING_IP]}
    values.update(overrides)
    return DoctorConfig(**values)


def _mailbox(address: str, **extra: Any) -> MailboxConfig:
    return MailboxConfig(id="m", address=address, **extra)


def _by_name(report: Report) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


async def test_a_well_set_up_domain_passes_every_check(dns: Server, submission: Server, tls_files: tuple[Path, Path]
                                                       ) -> None:
    mailbox = _mailbox("alice@good.test", dkim_selector="sel1", transport="smtp",
                       smtp={"host": "127.0.0.1", "port": submission.port, "security": "starttls",
                             "ca_file": str(tls_files[0])})
    tracking = Tracking("https://t.good.test", Signer(b"k" * 32))
    tracked = SequenceSettings(name="Cold", mailbox_id="m", track_opens=True)
    report = await diagnose(mailbox, _settings(dns), [tracked], tracking, 1_700_000_000.0)
    checks = _by_name(report)
    assert {n: c.status.value for n, c in checks.items()} == {
        "spf": "pass", "dkim": "pass", "dmarc": "pass", "alignment": "pass", "mx": "pass", "tls": "pass",
        "dnsbl": "pass", "message-id": "pass", "date": "pass", "list-unsubscribe": "pass"}, report.as_json()
    assert "include:_spf.relay.test" in checks["spf"].record
    assert "2048-bit RSA" in checks["dkim"].summary
    assert "p=reject" in checks["dmarc"].record
    assert checks["tls"].summary.startswith("TLSv1.")
    assert "mx.good.test" in checks["mx"].summary
    assert report.status.value == "pass"


async def test_a_broken_domain_fails_with_what_to_change(dns: Server, submission: Server) -> None:
    mailbox = _mailbox("bob@bad.test", domain="elsewhere.example", transport="smtp",
                       smtp={"host": "127.0.0.1", "port": submission.port, "security": "none"})
    report = await diagnose(mailbox, _settings(dns), [], NoTracking(), 1_700_000_000.0)
    checks = _by_name(report)
    assert checks["spf"].status.value == "fail" and "+all" in checks["spf"].summary
    assert checks["spf"].fix and "+all" in checks["spf"].record
    assert checks["dkim"].status.value == "fail" and "512-bit" in checks["dkim"].summary
    assert checks["dmarc"].status.value == "fail" and "_dmarc.bad.test" in checks["dmarc"].fix
    assert checks["alignment"].status.value == "fail"
    assert checks["mx"].status.value == "fail" and "null MX" in checks["mx"].summary
    assert checks["tls"].status.value == "fail" and "offers STARTTLS" in checks["tls"].summary
    assert checks["message-id"].status.value == "fail"
    assert checks["list-unsubscribe"].status.value == "warn"
    assert report.status.value == "fail"


async def test_spf_lookup_limit_missing_records_and_an_untrusted_certificate(dns: Server, submission: Server) -> None:
    loop = await diagnose(_mailbox("c@loop.test"), _settings(dns), [], NoTracking(), 0.0)
    assert _by_name(loop)["spf"].status.value == "fail"
    assert "11 DNS lookups" in _by_name(loop)["spf"].summary  # one per include; ip4 costs none
    assert _by_name(loop)["tls"].status.value == "skip"  # Maildir: no submission server
    nospf = await diagnose(_mailbox("d@nospf.test", transport="smtp",
                                    smtp={"host": "127.0.0.1", "port": submission.port}),
                           _settings(dns, sending_ips=[]), [], NoTracking(), 0.0)
    checks = _by_name(nospf)
    assert checks["spf"].status.value == "fail" and "google-site-verification" in checks["spf"].record
    assert checks["dkim"].status.value == "fail" and "no DKIM key" in checks["dkim"].summary
    assert checks["tls"].status.value == "fail" and "certificate" in checks["tls"].summary  # no ca_file: untrusted
    assert checks["dnsbl"].status.value == "skip"  # 127.0.0.1 is nobody's business


async def test_implicit_tls_is_probed_like_port_465(dns: Server, tls_files: tuple[Path, Path]) -> None:
    with starttls_server(*tls_files, implicit=True) as smtps:
        smtp = {"host": "127.0.0.1", "port": smtps.port, "security": "tls", "ca_file": str(tls_files[0])}
        report = await diagnose(_mailbox("alice@good.test", transport="smtp", smtp=smtp), _settings(dns), [],
                                NoTracking(), 0.0)
        assert _by_name(report)["tls"].status.value == "pass", _by_name(report)["tls"]
        wrong = {**smtp, "security": "starttls"}  # STARTTLS against a TLS port: no greeting in clear
        report = await diagnose(_mailbox("alice@good.test", transport="smtp", smtp=wrong),
                                _settings(dns, timeout_seconds=1), [], NoTracking(), 0.0)
        assert _by_name(report)["tls"].status.value == "fail", _by_name(report)["tls"]


async def test_offline_says_cannot_resolve_and_never_passes(submission: Server) -> None:
    dead = DoctorConfig(nameservers=[f"127.0.0.1:{free_port()}"], timeout_seconds=1, dnsbls=["bl.test"],
                        sending_ips=[SENDING_IP])
    report = await diagnose(_mailbox("alice@good.test", dkim_selector="sel1"), dead, [], NoTracking(), 0.0)
    checks = _by_name(report)
    for name in ("spf", "dkim", "dmarc", "alignment", "mx", "dnsbl"):
        assert checks[name].status.value == "unknown", (name, checks[name])
    assert "cannot resolve" in checks["spf"].summary
    assert report.status.value == "unknown"


def test_api_and_dripctl(dns: Server, tmp_path: Path) -> None:
    mailboxes = [fast_mailbox(tmp_path, "sales", address="alice@good.test", dkim_selector="sel1"),
                 fast_mailbox(tmp_path, "bad", address="bob@bad.test")]
    process = DripdProcess(tmp_path, mailboxes=mailboxes, extra={"doctor": {
        "nameservers": [f"127.0.0.1:{dns.port}"], "timeout_seconds": 3, "dnsbls": ["bl.test"],
        "sending_ips": [SENDING_IP]}})
    process.start()
    try:
        with process.client() as api:
            body = api.get("/api/mailboxes/sales/doctor").json()
            assert body["mailboxId"] == "sales" and body["domain"] == "good.test"
            statuses = {c["name"]: c["status"] for c in body["checks"]}
            assert statuses["spf"] == "pass" and statuses["dkim"] == "pass" and statuses["tls"] == "skip"
            missing = api.get("/api/mailboxes/nope/doctor")
            assert missing.status_code == 404 and missing.json()["error"]["code"]
        good = process.dripctl("doctor", "sales")
        assert good.returncode == 0, good.stderr
        assert "PASS  spf" in good.stdout and "read: " in good.stdout
        every = process.dripctl("--json", "doctor")
        assert every.returncode == 1  # bad.test fails
        reports = json.loads(every.stdout)["reports"]
        assert [r["mailboxId"] for r in reports] == ["sales", "bad"] and reports[1]["status"] == "fail"
    finally:
        process.stop()
