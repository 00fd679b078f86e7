"""Classify one raw RFC 5322 message: human reply, auto-reply, bounce, complaint or positive DSN.

Pure: no I/O, no clock. The IMAP detector feeds it the bytes of each new message and turns the
result into events; matching a reply or a bounce to what was sent is the caller's job (it gets
the Message-IDs this module finds).

Order of the checks matters and follows the standards:

1. complaints (RFC 5965 ARF, Microsoft JMRP, Apple Mail's one-click unsubscribe),
2. RFC 3464 delivery-status reports (failed / delayed -> BOUNCE, delivered -> DELIVERED),
3. non-standard bounces (MTA-specific plain-text shapes),
4. RFC 3834 auto-replies,
5. anything else is a MESSAGE (a candidate human reply).

Complaints and DSNs come first because they also carry ``Auto-Submitted`` (RFC 3464 section 2
and RFC 5965 section 3 ask for it), which alone would make them look like auto-replies.

Decisions (see the module's tests):

- A *delayed* DSN (Action: delayed, or an MTA's "not yet delivered / will retry" warning) is a
  BOUNCE with ``bounce_class="soft"``: the address is not known bad, but the caller should
  hold the contact back rather than treat the warning as a reply. A soft bounce never stops a
  contact on its own.
- A bounce whose class cannot be read (no status code, no known wording) is ``"hard"``: MTAs
  send a failure notice only after giving up, and resending to a dead address costs the
  sender's reputation more than pausing a live one costs the campaign.
- Class comes from the enhanced status first (5.x.x hard, 4.x.x soft), except X.2.2 (mailbox
  full) and X.3.1 (mail system full), which RFC 3463 calls persistent transient: soft.
- A DSN's failed recipients list Original-Recipient (the address that was sent to) before
  Final-Recipient (possibly rewritten), so the caller can match either.
- Apple Mail's one-click unsubscribe (X-Apple-Unsubscribe: true) is a COMPLAINT naming its
  sender: it is an opt-out, like ARF's Feedback-Type: opt-out.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import email
import email.header
import email.message
import email.policy
import email.utils
import enum
import html
import re
from collections.abc import Iterable, Iterator

__all__ = ["Kind", "Classification", "classify"]


class Kind(str, enum.Enum):
    """What a message is, as far as a cadence is concerned."""

    MESSAGE = "message"  # written by a person (candidate reply)
    AUTO_REPLY = "auto_reply"  # out-of-office / autoresponder: NOT a reply
    BOUNCE = "bounce"  # delivery failure (or delay: soft)
    COMPLAINT = "complaint"  # abuse / feedback report
    DELIVERED = "delivered"  # positive DSN: not a failure


@dataclasses.dataclass(frozen=True)
class Classification:
    """The classifier's verdict and what it could read from the message."""

    kind: Kind
    sender: str | None = None
    references: tuple[str, ...] = ()
    original_message_id: str | None = None
    failed_recipients: tuple[str, ...] = ()
    bounce_class: str | None = None
    status: str | None = None
    diagnostic: str | None = None
    return_date: datetime.date | None = None
    subject: str = ""


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def classify(raw: bytes) -> Classification:
    """Classify one raw message; never raises (worst case: an empty ``Kind.MESSAGE``)."""
    try:
        return _classify(raw)
    except Exception:  # noqa: BLE001 - the IMAP loop must survive any message it is handed
        return _fallback(raw)


def _fallback(raw: object) -> Classification:
    """Best-effort MESSAGE for input the full classifier choked on."""
    try:
        msg = _parse(raw if isinstance(raw, bytes) else b"")
        return Classification(Kind.MESSAGE, sender=_sender(msg), subject=_subject(msg))
    except Exception:  # noqa: BLE001
        return Classification(Kind.MESSAGE)


def _classify(raw: bytes) -> Classification:
    msg = _parse(raw)
    view = _MessageView.of(msg)
    return (
        _as_complaint(view)
        or _as_dsn(view)
        or _as_plain_bounce(view)
        or _as_auto_reply(view)
        or view.verdict(Kind.MESSAGE, original_message_id=None)
    )


# --------------------------------------------------------------------------------------------
# Parsing and decoding
# --------------------------------------------------------------------------------------------


def _parse(raw: bytes) -> email.message.Message:
    # compat32 parses lazily and tolerantly; policy.default raises from header accessors on
    # malformed input, which is exactly what bounces and spam are full of.
    if not isinstance(raw, (bytes, bytearray)):
        raw = b""
    return email.message_from_bytes(bytes(raw), policy=email.policy.compat32)


def _header(msg: email.message.Message, name: str) -> str:
    """One header, RFC 2047-decoded, unfolded, '' when absent or undecodable."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # noqa: BLE001 - bad encoded-words or charsets: keep the raw text
        text = str(value)
    return " ".join(text.split())


def _headers(msg: email.message.Message, name: str) -> list[str]:
    return [" ".join(str(v).split()) for v in (msg.get_all(name) or [])]


def _subject(msg: email.message.Message) -> str:
    return _header(msg, "Subject")


def _sender(msg: email.message.Message) -> str | None:
    return _first_address(_header(msg, "From"))


_ADDR_PATTERN = (
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-][A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)
_ADDR_RE = re.compile(r"(?<![\w.+=/!#$%&'*^`{|}~-])" + _ADDR_PATTERN)
_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def _first_address(value: str) -> str | None:
    try:
        _, addr = email.utils.parseaddr(value)
    except Exception:  # noqa: BLE001
        addr = ""
    if "@" not in addr:
        # parseaddr gives up on some shapes ("name@x <a@b>", comments): fall back to a regex.
        found = _ADDR_RE.findall(value)
        addr = found[-1] if found else ""
    addr = addr.strip().strip("<>").lower()
    return addr if _ADDR_RE.fullmatch(addr) else None


def _addresses(value: str) -> list[str]:
    """Every well-formed address in a header-ish or free text, lowercased, in order."""
    return _unique(_clean_address(a) for a in _ADDR_RE.findall(value))


def _clean_address(address: str) -> str:
    # Quotes and trailing dots are punctuation around the address far more often than part of it.
    return address.lower().strip("'`").rstrip(".")


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def _message_ids(value: str) -> list[str]:
    return _unique(f"<{m}>" for m in _MSGID_RE.findall(value) if "@" in m or "." in m)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for name in (charset, "utf-8"):
        if not name:
            continue
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    # Latin-1 maps every byte, so this is the last word: text we can still search.
    return data.decode("latin-1")


def _payload(part: email.message.Message) -> object:
    """get_payload() that survives compat32's own decoding bugs (tuple or NUL-laden charsets)."""
    try:
        return part.get_payload()
    except Exception:  # noqa: BLE001
        # The stored payload is the undecoded text; it is still worth searching.
        raw = getattr(part, "_payload", "")
        return raw if isinstance(raw, (str, list)) else ""


def _part_bytes(part: email.message.Message) -> bytes:
    """The decoded body of a leaf part; tolerant of broken base64 / QP."""
    payload = _payload(part)
    if not isinstance(payload, str):
        return b""
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        # compat32 returns the *encoded* text on bad padding; decode what is decodable instead.
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            return payload.encode("latin-1", "replace")
    try:
        decoded = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - compat32 trips over RFC 2231 charsets while decoding
        decoded = None
    return decoded if isinstance(decoded, bytes) else payload.encode("latin-1", "replace")


# What a notice says sits at its start; capping keeps every regex linear-time in practice, so
# one hostile or huge message cannot stall the IMAP loop.
_MAX_PART_BYTES = 256 * 1024


def _part_text(part: email.message.Message) -> str:
    text = _decode_bytes(_part_bytes(part)[:_MAX_PART_BYTES], _safe_charset(part))
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _safe_charset(part: email.message.Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # noqa: BLE001 - RFC 2231 junk in the charset parameter
        return None


_HTML_DROP_RE = re.compile(r"<(script|style|head)\b[^<]*(?:<(?!/\1)[^<]*)*</\1\s*>", re.I)
_HTML_BREAK_RE = re.compile(r"<\s*(br|/p|/div|/tr|/li|/h\d|/blockquote)\b[^>]*>", re.I)
_HTML_TAG_RE = re.compile(r"<[^<>]*>")


def _html_to_text(markup: str) -> str:
    # Good enough to search for phrases and addresses; layout does not matter here.
    markup = _HTML_DROP_RE.sub(" ", markup)
    markup = _HTML_BREAK_RE.sub("\n", markup)
    return html.unescape(_HTML_TAG_RE.sub(" ", markup))


# --------------------------------------------------------------------------------------------
# A read-only view of the parts that matter
# --------------------------------------------------------------------------------------------


_EMBEDDED_HEADER_TYPES = {"text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers"}
_DSN_TYPES = {"message/delivery-status", "message/global-delivery-status", "text/delivery-status"}
_ORIGINAL_TYPES = {"message/rfc822", "message/global", "message/partial"}


@dataclasses.dataclass
class _MessageView:
    """The top-level headers plus the parts the rules look at, decoded once."""

    msg: email.message.Message
    subject: str
    sender: str | None
    references: tuple[str, ...]
    report_type: str
    texts: list[str]  # the message's own text parts (not those inside an attached message)
    dsn_texts: list[str]  # message/delivery-status bodies
    feedback_texts: list[str]  # message/feedback-report bodies
    originals: list[email.message.Message]  # attached original message or its headers

    @classmethod
    def of(cls, msg: email.message.Message) -> _MessageView:
        view = cls(
            msg=msg,
            subject=_subject(msg),
            sender=_sender(msg),
            references=tuple(
                _unique(_message_ids(_header(msg, "In-Reply-To")) + _message_ids(_header(msg, "References")))
            ),
            report_type=_report_type(msg),
            texts=[],
            dsn_texts=[],
            feedback_texts=[],
            originals=[],
        )
        for part in _leaf_parts(_recover_multipart(msg), depth=0):
            view._take(part)
        return view

    def _take(self, part: email.message.Message) -> None:
        ctype = part.get_content_type()
        if ctype in _ORIGINAL_TYPES:
            payload = _payload(part)
            if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
                self.originals.append(payload[0])
            elif isinstance(payload, str):
                self.originals.append(email.message_from_string(_part_text(part), policy=email.policy.compat32))
        elif ctype in _EMBEDDED_HEADER_TYPES:
            self.originals.append(email.message_from_string(_part_text(part), policy=email.policy.compat32))
        elif ctype in _DSN_TYPES:
            self.dsn_texts.append(_container_text(part))
        elif ctype == "message/feedback-report":
            self.feedback_texts.append(_container_text(part))
        elif part.get_content_maintype() == "text" and not _is_attachment(part):
            self.texts.append(_part_text(part))

    @property
    def body(self) -> str:
        return "\n".join(self.texts)

    def verdict(self, kind: Kind, **fields: object) -> Classification:
        """A Classification carrying this message's own header facts."""
        original = fields.pop("original_message_id", None)
        if original is None and kind is not Kind.MESSAGE:
            original = self.references[0] if self.references else None
        return Classification(
            kind=kind,
            sender=self.sender,
            references=self.references,
            original_message_id=original,  # type: ignore[arg-type]
            subject=self.subject,
            **fields,  # type: ignore[arg-type]
        )


def _report_type(msg: email.message.Message) -> str:
    try:
        if msg.get_content_type() != "multipart/report":
            return ""
        return str(msg.get_param("report-type") or "").strip().lower()
    except Exception:  # noqa: BLE001
        return ""


_BOUNDARY_LINE_RE = re.compile(r"^--([^\s-][^\s]{5,69}?)(--)?[ \t]*$", re.M)


def _recover_multipart(msg: email.message.Message) -> email.message.Message:
    """Re-read a body that is plainly MIME but lost its Content-Type (or its boundary)."""
    payload = _payload(msg)
    if not isinstance(payload, str) or msg.get_content_maintype() not in {"text", "multipart"}:
        return msg
    if msg.get_content_maintype() == "text" and msg.get("Content-Type"):
        return msg  # a declared single part: its "--" lines are text, not structure
    counts: dict[str, int] = {}
    for match in _BOUNDARY_LINE_RE.finditer(payload):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    boundary = max(counts, key=lambda b: counts[b], default=None)
    if boundary is None or counts[boundary] < 2:
        return msg
    # Why re-parse: the parts (the DSN, the returned original) are what the rules read.
    rebuilt = email.message_from_string(
        f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n{payload}', policy=email.policy.compat32
    )
    return rebuilt if isinstance(_payload(rebuilt), list) else msg


def _leaf_parts(msg: email.message.Message, depth: int) -> Iterator[email.message.Message]:
    """Leaves of the MIME tree, stopping at attached messages (their insides are not ours)."""
    if depth > 20:  # a hostile nesting depth is not worth following
        return
    if msg.get_content_maintype() == "multipart":
        payload = _payload(msg)
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, email.message.Message):
                    yield from _leaf_parts(sub, depth + 1)
            return
        # "multipart" with no usable boundary: compat32 leaves the body as one string.
        yield _as_text_part(payload if isinstance(payload, str) else "")
        return
    yield msg


def _as_text_part(text: str) -> email.message.Message:
    part = email.message.Message()
    part["Content-Type"] = "text/plain"
    part.set_payload(text)
    return part


def _container_text(part: email.message.Message) -> str:
    """Text of a message/* part that compat32 may have parsed into header-only blocks."""
    payload = _payload(part)
    if isinstance(payload, list):
        return "\n".join(_block_text(block) for block in payload if isinstance(block, email.message.Message))
    return _part_text(part)


def _block_text(block: email.message.Message) -> str:
    lines = [f"{name}: {' '.join(str(value).split())}" for name, value in block.items()]
    body = _payload(block)
    if isinstance(body, str) and body.strip():
        lines.append(body)
    return "\n".join(lines) + "\n"


def _is_attachment(part: email.message.Message) -> bool:
    return str(part.get("Content-Disposition", "")).strip().lower().startswith("attachment")


# --------------------------------------------------------------------------------------------
# Complaints: RFC 5965 ARF, Microsoft JMRP, Apple Mail unsubscribe
# --------------------------------------------------------------------------------------------


def _as_complaint(view: _MessageView) -> Classification | None:
    if view.report_type == "feedback-report" or view.feedback_texts:
        fields = _fields(view.feedback_texts)
        recipients = _addresses(" ".join(fields.get("original-rcpt-to", []) + fields.get("removal-recipient", [])))
        return _complaint(view, recipients)
    # Microsoft's JMRP forwards the reported message with the recipient in a private header.
    jmrp = [o for o in view.originals if o.get("X-HmXmrOriginalRecipient")]
    if jmrp:
        return _complaint(view, _addresses(_header(jmrp[0], "X-HmXmrOriginalRecipient")))
    # Apple Mail's "unsubscribe" button mails List-Unsubscribe's mailto from the recipient.
    if _header(view.msg, "X-Apple-Unsubscribe").lower() == "true":
        return _complaint(view, [view.sender] if view.sender else [])
    return None


def _complaint(view: _MessageView, recipients: list[str]) -> Classification:
    original_id = None
    for original in view.originals:
        recipients = recipients or _addresses(_header(original, "To"))
        original_id = original_id or _first_msgid(_header(original, "Message-ID"))
    return view.verdict(Kind.COMPLAINT, failed_recipients=tuple(recipients), original_message_id=original_id)


def _first_msgid(value: str) -> str | None:
    ids = _message_ids(value)
    return ids[0] if ids else None


# --------------------------------------------------------------------------------------------
# RFC 3464 delivery-status notifications
# --------------------------------------------------------------------------------------------


_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")


@dataclasses.dataclass(frozen=True)
class _Recipient:
    """One per-recipient block of a DSN."""

    addresses: tuple[str, ...]  # Original-Recipient (what was sent to) first, then Final-Recipient
    action: str
    status: str | None
    diagnostic: str | None


def _field_blocks(text: str) -> list[dict[str, list[str]]]:
    """Split DSN-ish text into blocks of lowercased field -> values (continuations joined)."""
    blocks: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.split("\n"):
        line = line.rstrip()
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t" and last is not None:
            current[last][-1] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, []).append(match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def _fields(texts: list[str]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for text in texts:
        for block in _field_blocks(text):
            for name, values in block.items():
                merged.setdefault(name, []).extend(values)
    return merged


def _dsn_recipients(text: str) -> list[_Recipient]:
    recipients = []
    for block in _field_blocks(text):
        if "action" not in block and "final-recipient" not in block:
            continue  # the per-message block (Reporting-MTA, Arrival-Date...)
        addresses = _dsn_addresses(block.get("original-recipient", []) + block.get("final-recipient", []))
        status_match = _STATUS_RE.search(" ".join(block.get("status", [])))
        diagnostic = _first_line(" ".join(block.get("diagnostic-code", [])))
        if diagnostic:
            diagnostic = re.sub(r"^\s*[A-Za-z-]+\s*;\s*", "", diagnostic)  # "smtp; 550 ..." -> "550 ..."
        if not status_match and diagnostic:
            status_match = _STATUS_RE.search(diagnostic)
        recipients.append(
            _Recipient(
                addresses=addresses,
                action=(block.get("action", [""])[0].split() or [""])[0].lower().strip(";"),
                status=".".join(status_match.groups()) if status_match else None,
                diagnostic=diagnostic or None,
            )
        )
    return recipients


def _dsn_addresses(values: list[str]) -> tuple[str, ...]:
    found = []
    for value in values:
        # "rfc822; user@host": the type is optional in the wild, and the host may be a bare
        # internal name ("user@mailhub0"), which the free-text regex would not accept.
        value = value.split(";", 1)[-1].strip().strip("<>").strip()
        if "@" in value and " " not in value:
            found.append(_clean_address(value.replace('"', "")))
        else:
            found.extend(_addresses(value))
    return tuple(_unique(found))


def _first_line(text: str) -> str:
    return text.strip().split("\n")[0].strip()[:200]


_FAILED_ACTIONS = {"failed", "failure", "bounced", "undelivered", "undeliverable", "delayed", "deferred"}
# "deliverable" is what Postfix's address verification (sendmail -bv) reports.
_POSITIVE_ACTIONS = {"delivered", "relayed", "expanded", "deliverable"}


def _as_dsn(view: _MessageView) -> Classification | None:
    texts = list(view.dsn_texts)
    if not texts and view.report_type == "delivery-status":
        # Some MTAs mislabel the status part (text/plain): the report type is the promise.
        texts = view.texts[1:]
    if not texts and _is_forward(view.subject):
        # A person forwarding a whole DSN: its machine-readable fields are still the truth.
        texts = [_unquote(view.body)]
    recipients = [r for text in texts for r in _dsn_recipients(text)]
    if not recipients:
        return None
    failed = [r for r in recipients if _recipient_failed(r)]
    if not failed:
        if any(r.action in _POSITIVE_ACTIONS for r in recipients):
            return view.verdict(
                Kind.DELIVERED,
                status=recipients[0].status,
                diagnostic=recipients[0].diagnostic,
                original_message_id=_original_message_id(view),
            )
        return None  # blocks without a readable outcome: let the plain-text rules look
    worst = _worst(failed)
    addresses = _unique(a for r in failed for a in r.addresses)
    if not addresses:
        addresses = _bounced_addresses(view)
    return view.verdict(
        Kind.BOUNCE,
        failed_recipients=tuple(addresses),
        bounce_class=_class_of(worst.status, worst.action, worst.diagnostic or ""),
        status=worst.status,
        diagnostic=worst.diagnostic or _diagnostic_from_text(view),
        original_message_id=_original_message_id(view),
    )


def _recipient_failed(recipient: _Recipient) -> bool:
    if recipient.action in _FAILED_ACTIONS:
        return True
    # No Action but a failure status: still a failure (seen from hand-rolled DSN generators).
    return not recipient.action and recipient.status is not None and recipient.status[:1] in ("4", "5")


def _worst(recipients: list[_Recipient]) -> _Recipient:
    def rank(r: _Recipient) -> int:
        return 2 if (r.status or "").startswith("5") else 1 if r.action != "delayed" else 0

    return max(recipients, key=rank)


# RFC 3463 calls these "persistent transient" whatever their class: a full mailbox (X.2.2) or a
# full mail system (X.3.1) can take mail again once emptied, so the address is not dead.
_TRANSIENT_SUBJECTS = {"2.2", "3.1"}


def _class_of_status(status: str) -> str:
    if status.split(".", 1)[-1] in _TRANSIENT_SUBJECTS:
        return "soft"
    return "hard" if status[0] == "5" else "soft"


def _class_of(status: str | None, action: str, text: str) -> str:
    """hard / soft from the status code first, then the action, then the wording."""
    if status and status[0] in "45" and status.split(".", 1)[-1] in _TRANSIENT_SUBJECTS:
        return "soft"
    if status and status[0] == "5":
        return "hard"
    if status and status[0] == "4":
        return "soft"
    if action in {"delayed", "deferred"}:
        return "soft"
    return _class_from_text(text) or "hard"


_SOFT_TEXT_RE = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the )?(?:storage|quota)|insufficient"
    r"|try again later|temporar|not yet been delivered|has been delayed|will be retried|still being retried"
    r"|retry timeout|delivery attempts will continue|warning message only|deferred|greylist",
    re.I,
)
_HARD_TEXT_RE = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|does not exist|doesn't exist"
    r"|mailbox (?:is )?unavailable|address rejected|recipient rejected|invalid (?:recipient|address|mailbox)"
    r"|not found|permanent|unrouteable|unroutable|no mailbox|account (?:is )?disabled|malformed",
    re.I,
)


def _class_from_text(text: str) -> str | None:
    # Soft wording wins: "permanent error ... mailbox full, retry timeout exceeded" is a full box.
    if _SOFT_TEXT_RE.search(text):
        return "soft"
    if _HARD_TEXT_RE.search(text):
        return "hard"
    return None


# --------------------------------------------------------------------------------------------
# Non-standard (plain-text) bounces
# --------------------------------------------------------------------------------------------


_SYSTEM_LOCALPARTS = re.compile(
    r"^(?:mailer-daemon|mailer_daemon|mailerdaemon|postmaster|mail-daemon|maildaemon|double-bounce"
    r"|mdaemon|mail\.?delivery|nobody|root|majordomo|bounces?|smtp|mta|daemon)$",
    re.I,
)
_SYSTEM_NAMES = re.compile(r"mail ?delivery (?:system|subsystem|service)|mailer[- _]?daemon|postmaster", re.I)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|antw|vs|r|ref|rif|odp)\s*(?:\[\d+\])?\s*:", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|fw|wg|tr|rv|doorst)\s*(?:\[\d+\])?\s*:", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|returned mail|return(?:ing|ed) (?:message|mail) to sender"
    r"|delivery (?:status notification|failure|failed|has failed|problem|notification|report)"
    r"|mail delivery (?:failed|failure|system|subsystem)|failure notice|non[- ]?delivery"
    r"|could not (?:be )?deliver|delivery (?:delayed|warning)|delayed mail|mail failure|message not delivered"
    r"|nondeliverable|unzustellbar|non remis|non recapitabile|no se puede entregar"
    r"|bounce notification|mail (?:was )?not delivered|warning: message .* delayed|mail failed"
    r"|returning to sender|rejected",
    re.I,
)
_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't delivered|was not delivered|has not yet been delivered"
    r"|delivery (?:to the following recipients? )?(?:has )?(?:failed|been delayed)|permanent(?:ly)? (?:fatal )?error"
    r"|delivery status notification|this is the qmail-send program|mail delivery (?:system|software|subsystem)"
    r"|undeliver|returned to sender|rejected|user unknown|unknown user|no such (?:user|mailbox)|does not exist"
    r"|mailbox (?:is )?(?:full|unavailable)|over ?quota|transcript of session|following address(?:es)? failed"
    r"|could not deliver|unable to deliver|message delivery|delivery to .* failed|recipient address rejected"
    r"|smtp error|remote (?:mail )?server|host .* said:|will be retried|delivery attempts will continue"
    r"|failed address|no valid recipient|unknown host|host not found|message log follows",
    re.I,
)
_REPLY_CODE_RE = re.compile(r"(?<![\w.:/#-])([245]\d\d)(?:[ -]+(?=[245]\.\d)|(?=[ \t]))")


def _as_plain_bounce(view: _MessageView) -> Classification | None:
    if not _looks_like_bounce(view):
        return None
    section = _failure_section(view.body)
    addresses = _bounced_addresses(view)
    inline = _inline_dsn_failures(view)
    status, code = _codes(section)
    diagnostic = _diagnostic_from_text(view)
    if inline:  # pasted DSN fields say it more precisely than the prose around them
        status = _worst(inline).status or status
        diagnostic = _worst(inline).diagnostic or diagnostic
    if status:
        bounce_class = _class_of_status(status)
    elif code:
        bounce_class = "hard" if code[0] == "5" else "soft"
    else:
        bounce_class = _class_from_text(view.subject + "\n" + section) or "hard"
    if _SOFT_TEXT_RE.search(view.subject) or re.search(
        r"not yet been delivered|warning message only|still being retried|delivery attempts will continue",
        section,
        re.I,
    ):
        bounce_class = "soft"  # an MTA's delay warning: whatever code it quotes, it will retry
    return view.verdict(
        Kind.BOUNCE,
        failed_recipients=tuple(addresses),
        bounce_class=bounce_class,
        status=status,
        diagnostic=diagnostic,
        original_message_id=_original_message_id(view),
    )


def _inline_dsn_failures(view: _MessageView) -> list[_Recipient]:
    """DSN fields pasted into a plain-text bounce (MIME lost on the way, or a bounce of a bounce)."""
    return [r for r in _dsn_recipients(_unquote(view.body)) if _recipient_failed(r)]


def _looks_like_bounce(view: _MessageView) -> bool:
    """Header evidence (who sent it, what it is called) plus body evidence; never a person's reply."""
    if view.msg.get("X-Failed-Recipients"):
        return True
    if _REPLY_PREFIX.match(view.subject) or _FORWARD_PREFIX.match(view.subject):
        return False  # a person answering or forwarding: even if it quotes a bounce
    from_header = _header(view.msg, "From")
    system_sender = bool(
        _SYSTEM_NAMES.search(from_header)
        or (view.sender and _SYSTEM_LOCALPARTS.match(view.sender.split("@")[0]))
        or ("@" not in from_header and re.search(r"mailer-daemon|postmaster", from_header, re.I))
    )
    bounce_subject = bool(_BOUNCE_SUBJECT.search(view.subject))
    if not (system_sender or bounce_subject):
        return False
    section = _failure_section(view.body)
    return bool(_BOUNCE_BODY.search(section) or (bounce_subject and system_sender))


# Where the notice ends and the copy of the original begins (or a quoted reply, for safety).
_ORIGINAL_MARKER = re.compile(
    r"^[ \t]*+(?:[-=_*]{2,}+.*(?:original message|copy of|message header|returned message|original mail"
    r"|below this line|headers? follow|undelivered message|message follows|original text).*"
    r"|.*(?:original message|message header|returned message|original mail)[^\n]{0,20}follows?:?"
    r"|(?:return-path|received|dkim-signature|delivered-to|x-original-to|mime-version|message-id)\s*:.*"
    r"|content-type:\s*message/rfc822.*|on .{4,120} wrote:|begin forwarded message:|-+ ?forwarded message ?-+)$",
    re.I | re.M,
)


_HEADERISH_LINE_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*:\s|[ \t]+\S|From \S)")


def _failure_section(body: str) -> str:
    return body[: _original_start(body)]


def _original_start(body: str) -> int:
    """Offset where the returned original (or a quoted message) starts; len(body) if none."""
    match = _ORIGINAL_MARKER.search(body)
    if not match:
        return len(body)
    start = match.start()
    first_word = (match.group(0).split() or [""])[0]
    if first_word.endswith(":") and not first_word.startswith("-"):
        # A header line: the copied header block may begin a few lines above it (From:, To:...).
        lines = body[:start].split("\n")[:-1]
        while lines and _HEADERISH_LINE_RE.match(lines[-1]):
            start -= len(lines.pop()) + 1
    return start


_SENDER_CONTEXT = re.compile(r"(?:mail from|envelope-from|from)\s*:?\s*<?\s*$", re.I)


def _bounced_addresses(view: _MessageView) -> list[str]:
    """Failed recipients of a non-standard bounce, most trustworthy source first."""
    excluded = _excluded_addresses(view)
    sources = [
        _addresses(" ".join(_headers(view.msg, "X-Failed-Recipients"))),
        [a for r in _inline_dsn_failures(view) for a in r.addresses],
        _listed_addresses(_failure_section(view.body)),
        _free_text_addresses(_failure_section(view.body)),
        [a for o in view.originals for a in _addresses(_header(o, "To"))],
        _text_addresses(_embedded_header(view.body, "To")),
    ]
    for source in sources:
        found = [a for a in source if a not in excluded and not _is_system_address(a)]
        if found:
            return found
    return []


def _text_addresses(text: str) -> list[str]:
    """Addresses in free text, skipping envelope senders and Message-IDs."""
    found = []
    for match in _ADDR_RE.finditer(text):
        before = text[max(0, match.start() - 20) : match.start()]
        if _SENDER_CONTEXT.search(before) or re.search(r"message-id:?\s*<?$", before, re.I):
            continue
        found.append(_clean_address(match.group(1)))
    return _unique(found)


# An address that starts a line ("<user@host>: host ... said", "  user@host") is how MTAs list
# failed recipients; one inside a sentence is more often a contact ("please contact <x@y>").
_LISTED_ADDR_RE = re.compile(r"^[ \t]*[<(\"']?" + _ADDR_PATTERN, re.M)
_CONTACT_CONTEXT = re.compile(r"(?:contact|write to|e-?mail|send (?:an? )?(?:e-?mail|message) to|visit|support)\W{0,3}$", re.I)


def _listed_addresses(text: str) -> list[str]:
    return _unique(_clean_address(m.group(1)) for m in _LISTED_ADDR_RE.finditer(text))


def _free_text_addresses(text: str) -> list[str]:
    found = []
    for address in _text_addresses(text):
        position = text.lower().find(address)
        if position >= 0 and _CONTACT_CONTEXT.search(text[max(0, position - 30) : position]):
            continue
        found.append(address)
    return found


def _excluded_addresses(view: _MessageView) -> set[str]:
    excluded = set()
    for name in ("From", "To", "Return-Path", "Reply-To", "Sender", "Cc"):
        excluded.update(_addresses(_header(view.msg, name)))
    for original in view.originals:
        for name in ("From", "Return-Path", "Sender"):
            excluded.update(_addresses(_header(original, name)))
    excluded.update(_text_addresses(_embedded_header(view.body, "From")))
    excluded.update(_text_addresses(_embedded_header(view.body, "Return-Path")))
    # The failed recipient may equal the bounce's To when someone mails themselves; X-Failed-Recipients
    # is checked before this set matters only for text sources, where that case is rare.
    excluded.difference_update(_addresses(" ".join(_headers(view.msg, "X-Failed-Recipients"))))
    return excluded


def _is_system_address(address: str) -> bool:
    return bool(_SYSTEM_LOCALPARTS.match(address.split("@")[0]))


def _embedded_header(body: str, name: str) -> str:
    """The value of a header quoted in the body after the notice (the returned original)."""
    start = _original_start(body)
    tail = _unquote(body[start:]) if start < len(body) else ""
    found = re.findall(rf"^{name}:[ \t]*(.*(?:\n[ \t]+.*)*)", tail, re.I | re.M)
    return found[0] if found else ""


def _codes(text: str) -> tuple[str | None, str | None]:
    """(enhanced status, SMTP reply code) found in the text, failures preferred."""
    statuses = [".".join(m.groups()) for m in _STATUS_RE.finditer(text)]
    codes = _REPLY_CODE_RE.findall(text)
    status = next((s for s in statuses if s[0] in "45"), None)
    code = next((c for c in codes if c[0] in "45"), None)
    return status, code


def _diagnostic_from_text(view: _MessageView) -> str | None:
    section = _failure_section(view.body)
    for line in section.split("\n"):
        line = line.strip()
        if _REPLY_CODE_RE.search(line + " ") and re.search(r"(?<!\d)[45]\d\d", line):
            return line[:200]
    for line in section.split("\n"):
        if _HARD_TEXT_RE.search(line) or _SOFT_TEXT_RE.search(line):
            return line.strip()[:200]
    return None


def _original_message_id(view: _MessageView) -> str | None:
    for original in view.originals:
        found = _first_msgid(_header(original, "Message-ID"))
        if found:
            return found
    quoted = _first_msgid(_embedded_header(view.body, "Message-ID"))
    if quoted:
        return quoted
    return view.references[0] if view.references else None


def _unquote(text: str) -> str:
    return re.sub(r"^[ \t]*(?:>[ \t]?)+", "", text, flags=re.M)


def _is_forward(subject: str) -> bool:
    return bool(_FORWARD_PREFIX.match(subject))


# --------------------------------------------------------------------------------------------
# RFC 3834 auto-replies
# --------------------------------------------------------------------------------------------


_AUTO_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|ooo\b|automatic reply|auto[- ]?reply|auto[- ]?response|autorespons"
    r"|automatische antwort|abwesenheitsnotiz|abwesend|r[ée]ponse automatique|absence|risposta automatica"
    r"|respuesta autom[áa]tica|automatisch antwoord|vacation|away (?:from|until)|on vacation|on leave"
    r"|auto:|自動応答|不在)",
    re.I,
)


def _as_auto_reply(view: _MessageView) -> Classification | None:
    if not _is_auto_reply(view):
        return None
    return view.verdict(
        Kind.AUTO_REPLY,
        return_date=_return_date(view),
        original_message_id=view.references[0] if view.references else _original_message_id(view),
    )


def _is_auto_reply(view: _MessageView) -> bool:
    msg = view.msg
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")):
        return True
    if _header(msg, "X-Apple-Action").upper() == "VACATION":
        return True
    precedence = _header(msg, "Precedence").lower()
    if precedence == "auto_reply":
        return True
    subject_says_so = bool(_AUTO_SUBJECT.search(view.subject))
    # bulk/junk alone is every newsletter; with an auto-reply subject it is an autoresponder.
    # X-Auto-Response-Suppress alone is only Exchange asking others not to answer.
    return subject_says_so


# --------------------------------------------------------------------------------------------
# Return dates of out-of-office replies
# --------------------------------------------------------------------------------------------


_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan", "januar", "janvier", "jänner", "enero", "gennaio"),
            ("february", "feb", "februar", "février", "fevrier", "febrero", "febbraio"),
            ("march", "mar", "märz", "maerz", "mars", "marzo"),
            ("april", "apr", "avril", "abril", "aprile"),
            ("may", "mai", "mayo", "maggio"),
            ("june", "jun", "juni", "juin", "junio", "giugno"),
            ("july", "jul", "juli", "juillet", "julio", "luglio"),
            ("august", "aug", "août", "aout", "agosto"),
            ("september", "sep", "sept", "septembre", "septiembre", "settembre"),
            ("october", "oct", "oktober", "okt", "octobre", "octubre", "ottobre"),
            ("november", "nov", "novembre", "noviembre"),
            ("december", "dec", "dezember", "dez", "décembre", "decembre", "diciembre", "dicembre"),
        ],
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        [
            ("monday", "mon", "montag", "lundi"),
            ("tuesday", "tue", "tues", "dienstag", "mardi"),
            ("wednesday", "wed", "mittwoch", "mercredi"),
            ("thursday", "thu", "thur", "thurs", "donnerstag", "jeudi"),
            ("friday", "fri", "freitag", "vendredi"),
            ("saturday", "sat", "samstag", "samedi"),
            ("sunday", "sun", "sonntag", "dimanche"),
        ]
    )
    for name in names
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th|\.|er|e)?"

# The phrase that introduces the day the person is back (English, German, French).
_RETURN_CUE = re.compile(
    r"\b(?:back|return(?:ing|s)?|in the office|available|reachable|until|till|through|thru"
    r"|zurück|wieder|ab dem|ab|bis(?: zum| einschließlich)?|de retour|retour|jusqu'au|à partir du)\b",
    re.I,
)
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2}(?!\d))?"), "dm.y"),
    (re.compile(rf"(?:(?:{_WEEKDAY_ALT})\.?,?\s+)?(\d{{1,2}}){_ORD}\s+(?:of\s+)?({_MONTH_ALT})\.?,?(?:\s+(\d{{4}}))?", re.I), "d m y"),
    (re.compile(rf"(?:(?:{_WEEKDAY_ALT})\.?,?\s+)?({_MONTH_ALT})\.?\s+(\d{{1,2}}){_ORD}(?:,?\s+(\d{{4}}))?", re.I), "m d y"),
    (re.compile(rf"({_WEEKDAY_ALT})\.?,?\s+(?:the\s+)?(\d{{1,2}}){_ORD}(?![\d:])", re.I), "wd d"),
    (re.compile(rf"({_WEEKDAY_ALT})\b", re.I), "wd"),
]
_DATE_SEARCHES = [(re.compile(r"(?<![\w.])(?:" + p.pattern + ")", p.flags), shape) for p, shape in _DATE_PATTERNS]


def _return_date(view: _MessageView) -> datetime.date | None:
    sent = _message_date(view.msg)
    apple = re.search(r"endDate=(\d{4})-(\d{2})-(\d{2})", _header(view.msg, "X-Apple-Criteria"))
    if apple:
        return _safe_date(*(int(g) for g in apple.groups()))
    text = view.subject + "\n" + _failure_section(view.body)
    for cue in _RETURN_CUE.finditer(text):
        found = _date_at(text, cue.end(), sent)
        if found:
            return found
    return None


def _date_at(text: str, position: int, sent: datetime.date | None) -> datetime.date | None:
    """The first date within a few words after the cue, resolved against ``sent``."""
    window = text[position : position + 45].split("\n\n")[0]
    best: tuple[int, int, re.Match[str], str] | None = None
    for rank, (pattern, shape) in enumerate(_DATE_SEARCHES):
        match = pattern.search(window)
        # Earliest wins; at the same offset the more specific pattern (listed first) wins.
        if match and (best is None or (match.start(), rank) < best[:2]):
            best = (match.start(), rank, match, shape)
    return _resolve(best[3], best[2].groups(), sent) if best else None


def _resolve(shape: str, groups: tuple[str | None, ...], sent: datetime.date | None) -> datetime.date | None:
    if shape == "ymd":
        return _safe_date(int(groups[0] or 0), int(groups[1] or 0), int(groups[2] or 0))
    if shape in {"dm.y", "d m y", "m d y"}:
        if shape == "m d y":
            month, day, year = _MONTHS[str(groups[0]).lower()], int(groups[1] or 0), groups[2]
        elif shape == "d m y":
            day, month, year = int(groups[0] or 0), _MONTHS[str(groups[1]).lower()], groups[2]
        else:
            day, month, year = int(groups[0] or 0), int(groups[1] or 0), groups[2]
        if year:
            full = int(year) + (2000 if len(year) == 2 else 0)
            return _safe_date(full, month, day)
        return _next_on_or_after(sent, month, day)
    if sent is None:
        return None
    weekday = _WEEKDAYS[str(groups[0]).lower()]
    if shape == "wd d":
        return _next_day_of_month(sent, int(groups[1] or 0), weekday)
    return sent + datetime.timedelta(days=(weekday - sent.weekday()) % 7 or 7)


def _next_on_or_after(sent: datetime.date | None, month: int, day: int) -> datetime.date | None:
    # No year written: the first such day not long before the message was sent.
    if sent is None:
        return None
    candidate = _safe_date(sent.year, month, day)
    if candidate is not None and candidate < sent - datetime.timedelta(days=31):
        candidate = _safe_date(sent.year + 1, month, day)
    return candidate


def _next_day_of_month(sent: datetime.date, day: int, weekday: int) -> datetime.date | None:
    # "Monday 7th": the next 7th after the message, preferring one that is a Monday.
    fallback = None
    year, month = sent.year, sent.month
    for _ in range(14):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= sent:
            if candidate.weekday() == weekday:
                return candidate
            fallback = fallback or candidate
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return fallback


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _message_date(msg: email.message.Message) -> datetime.date | None:
    try:
        parsed = email.utils.parsedate_tz(_header(msg, "Date"))
    except Exception:  # noqa: BLE001
        return None
    if not parsed:
        return None
    return _safe_date(parsed[0], parsed[1], parsed[2])
