"""Classify what an SMTP server said (or did) into a SendOutcome. Pure: no I/O.

The stage of the transaction matters as much as the code:

- before DATA's content is on the wire, a network fault or a timeout is TRANSIENT (nothing
  was handed over), and so is every 4xx (greylisting 450/451, 421, 452 ...);
- a 5xx before RCPT (greeting, EHLO, STARTTLS, AUTH, MAIL FROM) says the *sender* cannot
  send: SENDER_BLOCKED, so the mailbox pauses and no contact is suppressed;
- a 5xx at RCPT, at DATA or after the final dot is PERMANENT for that recipient, except an
  enhanced status 5.7.x (policy, authentication, reputation: RFC 3463), which blames the
  sender; X.2.2 / X.3.1 (mailbox or system full) are "persistent transient" (RFC 3463 3.3/3.4)
  and 5.5.x is a protocol hiccup, neither a verdict on the address: both TRANSIENT;
- once the final "." has left this host, a lost connection or a timeout is UNCERTAIN: the
  server may have queued the message, so it must never be resent blindly.
"""

from __future__ import annotations

import enum
import re

from dripd.hookspecs import SendOutcome, SendResult

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Sender-side refusals that some servers give without an enhanced status code.
_SENDER_WORDS = re.compile(
    r"relay(ing)? (access )?(denied|not permitted|prohibited)|authenticat|not authorized to send|"
    r"\bspf\b|\bdkim\b|\bdmarc\b|blacklist|blocklist|spamhaus|\breputation\b|sender address rejected",
    re.IGNORECASE,
)


class Stage(enum.StrEnum):
    CONNECT = "connect"  # TCP, TLS, greeting, EHLO, STARTTLS
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command, before 354
    CONTENT = "content"  # after 354, until every byte up to the final "." has left this host
    DOT = "dot"  # the final "." has left: waiting for the server's verdict


def enhanced_status(message: str) -> str | None:
    """The RFC 3463 status code that starts a reply's text, if any ("5.1.1")."""
    match = _ENHANCED.match(message or "")
    return ".".join(match.groups()) if match else None


def _one_line(message: str) -> str:
    return " ".join((message or "").split())[:300]


def classify_reply(stage: Stage, code: int, message: str) -> SendResult:
    """The outcome of a non-success reply ``code message`` received at ``stage``."""
    status = enhanced_status(message)
    detail = f"{code} {_one_line(message)}".strip()
    if status is not None and status[0] != str(code)[0]:
        status = None  # "550 4.1.1" is self-contradicting: trust the basic code
    if 400 <= code < 500:
        return SendResult(SendOutcome.TRANSIENT, detail, code, status)
    if not 500 <= code < 600:
        # Not an SMTP error code at all (a garbled reply): nothing proves the address bad.
        outcome = SendOutcome.UNCERTAIN if stage is Stage.DOT else SendOutcome.TRANSIENT
        return SendResult(outcome, detail, code, status)
    subject = status.split(".")[1] if status else None
    detail_of = status.split(".")[2] if status else None
    if subject == "7" or (status is None and _SENDER_WORDS.search(message or "")):
        return SendResult(SendOutcome.SENDER_BLOCKED, detail, code, status)
    if stage in (Stage.CONNECT, Stage.AUTH, Stage.MAIL):
        return SendResult(SendOutcome.SENDER_BLOCKED, detail, code, status)
    if (subject, detail_of) in (("2", "2"), ("3", "1")) or subject == "5":
        return SendResult(SendOutcome.TRANSIENT, detail, code, status)
    if status is None and code == 552 and stage is Stage.RCPT:
        # RFC 5321 4.5.3.1.10: 552 to RCPT meaning "too many recipients" is to be read as 452.
        return SendResult(SendOutcome.TRANSIENT, detail, code, status)
    return SendResult(SendOutcome.PERMANENT, detail, code, status)


def classify_fault(stage: Stage, what: str) -> SendResult:
    """The outcome of a lost connection or a timeout at ``stage`` (no reply to classify)."""
    if stage is Stage.DOT:
        return SendResult(SendOutcome.UNCERTAIN, f"{what} after the final '.' of DATA: the message may have been delivered")
    return SendResult(SendOutcome.TRANSIENT, f"{what} during {stage.value}")
