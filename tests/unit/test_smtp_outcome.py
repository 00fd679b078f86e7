"""SMTP outcome classification by stage and code (RFC 5321, RFC 3463), and the DATA payload."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from aiosmtplib.email import quote_address
from hypothesis import strategies as st
from pydantic import ValidationError

from dripd.hookspecs import SendOutcome
from dripd_imap.config import ImapConfig
from dripd_smtp.config import SmtpConfig
from dripd_smtp.outcome import Stage, classify_fault, classify_reply, enhanced_status
from dripd_smtp.wire import _recipient, dot_stuffed

P, T, S, U = SendOutcome.PERMANENT, SendOutcome.TRANSIENT, SendOutcome.SENDER_BLOCKED, SendOutcome.UNCERTAIN


@pytest.mark.parametrize(("stage", "code", "text", "outcome"), [
    (Stage.RCPT, 550, "5.1.1 user unknown", P),
    (Stage.RCPT, 550, "No such user here", P),
    (Stage.RCPT, 553, "5.1.3 bad syntax", P),
    (Stage.RCPT, 554, "5.4.4 unable to route", P),
    (Stage.RCPT, 450, "4.2.0 greylisted", T),
    (Stage.RCPT, 451, "Temporary local problem", T),
    (Stage.RCPT, 452, "4.5.3 Too many recipients", T),
    (Stage.RCPT, 552, "Too many recipients", T),  # RFC 5321 4.5.3.1.10
    (Stage.RCPT, 552, "5.2.2 mailbox full", T),  # persistent transient (RFC 3463 3.3)
    (Stage.RCPT, 550, "5.7.515 Access denied, sending domain does not meet the required authentication level", S),
    (Stage.RCPT, 554, "Relay access denied", S),
    (Stage.RCPT, 550, "Message rejected: listed at Spamhaus", S),
    (Stage.RCPT, 550, "4.1.1 self-contradicting", P),  # the basic code wins
    (Stage.AUTH, 535, "5.7.8 Authentication credentials invalid", S),
    (Stage.AUTH, 535, "Authentication failed", S),
    (Stage.CONNECT, 554, "No SMTP service here", S),
    (Stage.CONNECT, 421, "4.3.2 Service not available", T),
    (Stage.MAIL, 553, "5.1.8 sender domain does not exist", S),
    (Stage.MAIL, 451, "4.4.3 temporary DNS failure", T),
    (Stage.DATA, 554, "5.5.1 no valid recipients", T),
    (Stage.DOT, 554, "5.7.1 message content rejected as spam", S),
    (Stage.DOT, 550, "5.6.0 content refused", P),
    (Stage.DOT, 451, "4.3.0 try again later", T),
    (Stage.DOT, 999, "garbled", U),
])
def test_classify_reply(stage: Stage, code: int, text: str, outcome: SendOutcome) -> None:
    result = classify_reply(stage, code, text)
    assert result.outcome is outcome, result
    assert result.code == code
    assert result.detail.startswith(str(code))


def test_faults_before_the_dot_are_transient_after_it_uncertain() -> None:
    for stage in (Stage.CONNECT, Stage.AUTH, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.CONTENT):
        assert classify_fault(stage, "connection lost").outcome is T
    assert classify_fault(Stage.DOT, "connection lost").outcome is U


def test_enhanced_status() -> None:
    assert enhanced_status("5.7.515 Access denied") == "5.7.515"
    assert enhanced_status("  4.2.0 greylisted") == "4.2.0"
    assert enhanced_status("Mailbox unavailable 5.1.1") is None
    assert enhanced_status("") is None


def test_dot_stuffing_and_line_endings() -> None:
    assert dot_stuffed(b"a\r\n.b\n..c\rd") == b"a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    assert dot_stuffed(b"a\r\n") == b"a\r\n.\r\n"
    assert dot_stuffed(b"") == b".\r\n"
    assert dot_stuffed(b".a\r\n.\r\nb") == b"..a\r\n..\r\nb\r\n.\r\n"


def _stuffed_line_by_line(data: bytes) -> bytes:
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


@given(st.lists(st.sampled_from([b"a", b".", b"..", b" ", b"\r\n", b"\r", b"\n", b"=2E"]), max_size=30))
def test_dot_stuffing_fast_path_matches_line_by_line(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert dot_stuffed(data) == _stuffed_line_by_line(data)


@given(st.lists(st.sampled_from(["a", "Z", "0", ".", "_", "%", "+", "-", "@", " ", "<", ">", '"', "(", ",", ";",
                                  "\\", "[", "é", "!"]), min_size=1, max_size=14))
def test_recipient_fast_path_matches_aiosmtplib(parts: list[str]) -> None:
    address = "".join(parts)
    try:
        expected: bytes | None = quote_address(address).encode()
    except ValueError:
        expected = None  # refused: the fast path must not take it either
    if expected is None:
        with pytest.raises(ValueError):
            _recipient(address)
    else:
        assert _recipient(address) == expected


def test_config_never_takes_an_inline_password() -> None:
    with pytest.raises(ValidationError, match="password"):
        SmtpConfig.model_validate({"host": "smtp.example.com", "username": "alice", "password": "hunter2"})
    with pytest.raises(ValidationError, match="password_file or password_env"):
        SmtpConfig.model_validate({"host": "smtp.example.com", "username": "alice"})
    config = SmtpConfig.model_validate({"host": "smtp.example.com", "username": "a", "password_env": "X"})
    assert (config.port, config.security, config.connections, config.timeout_seconds) == (587, "starttls", 1, 30)


def test_xoauth2_needs_a_token_source() -> None:
    with pytest.raises(ValidationError, match="token_command"):
        SmtpConfig.model_validate({"host": "h", "username": "a@b.c", "auth": "xoauth2"})
    SmtpConfig.model_validate({"host": "h", "username": "a@b.c", "auth": "xoauth2", "token_command": ["gettoken"]})
    SmtpConfig.model_validate({"host": "h", "username": "a@b.c", "auth": "xoauth2", "token_endpoint": "https://t",
                               "client_id": "id", "refresh_token_file": "/run/credentials/rt"})


def test_imap_config_defaults_and_idle_limit() -> None:
    config = ImapConfig.model_validate({"host": "imap.example.com", "username": "a", "password_file": "/p"})
    assert (config.port, config.security, config.folders, config.sent_folder, config.save_sent_copy) == \
        (993, "tls", ["INBOX"], "Sent", False)
    assert config.idle_seconds < 29 * 60
    with pytest.raises(ValidationError):
        ImapConfig.model_validate({"host": "h", "idle_seconds": 30 * 60})
