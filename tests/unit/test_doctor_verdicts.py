"""The doctor's pure verdicts: SPF parsing and counting, DKIM key sizes, blocklists, TLS, shape."""

from __future__ import annotations

import base64

import pytest

from dripd.doctor import dkim, spf, verdicts
from dripd.doctor.checks import Answer, Facts


def _facts(**txt: str) -> Facts:
    return {(name.replace("_", "."), "TXT"): Answer(records=(value,)) for name, value in txt.items()}


@pytest.mark.parametrize("record, problem", [
    ("v=spf1 ip4:300.1.1.1 -all", "not a valid ip4"),
    ("v=spf1 foo:bar -all", "unknown mechanism"),
    ("v=spf1 ip6:192.0.2.1 -all", "family"),
    ("v=spf1 include -all", "needs a domain"),
    ("v=spf1 redirect=a.test redirect=b.test", "more than once"),
    ("spf1 -all", "v=spf1"),
])
def test_bad_spf_records_name_the_term(record: str, problem: str) -> None:
    with pytest.raises(spf.SpfSyntaxError, match=problem):
        spf.parse(record)


def test_spf_evaluation_follows_includes_redirects_and_qualifiers() -> None:
    facts = _facts(a_test="v=spf1 include:b.test ~all", b_test="v=spf1 redirect=c.test", c_test="v=spf1 ip4:192.0.2.0/24 -all")
    assert spf.evaluate(facts, "a.test", "192.0.2.7").result == "pass"
    outside = spf.evaluate(facts, "a.test", "198.51.100.1")
    assert outside.result == "softfail" and outside.lookups == 2
    check, ok = verdicts.spf_check(facts, "a.test", ["198.51.100.1"])
    assert check.status.value == "fail" and ok is False and "198.51.100.1" in check.fix


def test_an_unanswered_include_is_unknown_not_pass() -> None:
    facts = _facts(a_test="v=spf1 include:gone.test -all")
    facts[("gone.test", "TXT")] = Answer(error="timed out")
    check, ok = verdicts.spf_check(facts, "a.test", ["192.0.2.1"])
    assert check.status.value == "unknown" and ok is None and "cannot resolve" in check.summary


def test_a_macro_is_reported_not_matched_and_not_called_unresolvable() -> None:
    facts = _facts(a_test="v=spf1 exists:%{i}.spf.a.test -all")
    check, ok = verdicts.spf_check(facts, "a.test", ["192.0.2.1"])
    assert check.status.value == "warn" and "macros" in check.summary and ok is None


def test_ptr_and_a_missing_all_warn() -> None:
    facts = _facts(a_test="v=spf1 ip4:192.0.2.0/24 ptr")
    check, ok = verdicts.spf_check(facts, "a.test", ["192.0.2.1"])
    assert check.status.value == "warn" and ok is True
    assert "ptr is deprecated" in check.summary and "without -all" in check.summary


def _spki(bits: int) -> str:
    """A DER SubjectPublicKeyInfo around an RSA modulus of ``bits`` bits (for size reading only)."""
    def tlv(tag: int, body: bytes) -> bytes:
        n = len(body)
        length = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag]) + length + body
    modulus = b"\x00" + (1 << (bits - 1)).to_bytes(bits // 8, "big")
    rsa_key = tlv(0x30, tlv(0x02, modulus) + tlv(0x02, b"\x01\x00\x01"))
    algorithm = tlv(0x30, tlv(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    return base64.b64encode(tlv(0x30, algorithm + tlv(0x03, b"\x00" + rsa_key))).decode()


@pytest.mark.parametrize("bits, status", [(512, "fail"), (1024, "warn"), (2048, "pass"), (4096, "pass")])
def test_dkim_key_sizes(bits: int, status: str) -> None:
    assert dkim.parse_key(f"v=DKIM1; k=rsa; p={_spki(bits)}").bits == bits
    facts: Facts = {("s._domainkey.a.test", "TXT"): Answer(records=(f"v=DKIM1; p={_spki(bits)}",))}
    check, _ = verdicts.dkim_check(facts, "a.test", ["s"])
    assert check.status.value == status


def test_a_revoked_dkim_key_fails() -> None:
    assert dkim.parse_key("v=DKIM1; p=").problem == "p= is empty: the key is revoked"


def test_blocklist_listed_refused_and_private() -> None:
    name = verdicts.dnsbl_name("192.0.2.10", "bl.test")
    assert name == "10.2.0.192.bl.test"
    listed = verdicts.dnsbl_check({(name, "A"): Answer(records=("127.0.0.2",))}, ["192.0.2.10"], ["bl.test"])
    assert listed.status.value == "fail" and "bl.test" in listed.summary
    refused = verdicts.dnsbl_check({(name, "A"): Answer(records=("127.255.255.254",))}, ["192.0.2.10"], ["bl.test"])
    assert refused.status.value == "unknown"
    assert verdicts.dnsbl_check({}, ["10.1.2.3"], ["bl.test"]).status.value == "skip"
    assert verdicts.dnsbl_name("2001:db8::1", "bl.test").startswith("1.0.0.0.")


def test_tls_verdicts() -> None:
    probe = verdicts.TlsProbe
    assert verdicts.tls_check(probe("h", 587, "starttls", True, starttls_offered=False)).status.value == "fail"
    assert verdicts.tls_check(probe("h", 465, "tls", True, cert_error="hostname mismatch")).status.value == "fail"
    assert verdicts.tls_check(probe("h", 587, "starttls", False, error="refused")).status.value == "unknown"
    assert verdicts.tls_check(probe("h", 465, "tls", True, version="TLSv1.1")).status.value == "warn"


def test_tracked_sequences_without_list_unsubscribe_fail() -> None:
    shape = verdicts.Shape("a.test", "<x@a.test>", "Thu, 03 Dec 2026 04:00:00 +0000", "<mailto:u@a.test>", "",
                           ("Cold",), ("Cold",))
    checks = {c.name: c for c in verdicts.shape_checks(shape)}
    assert checks["list-unsubscribe"].status.value == "fail" and "Cold" in checks["list-unsubscribe"].summary
    assert checks["message-id"].status.value == "pass" and checks["date"].status.value == "pass"
