"""What the free text of a bounce says, for MTAs that send no (or a broken) DSN: whether it looks
like a bounce, the failed addresses (not the sender's, not a helpdesk's), the diagnostic and
the original Message-ID."""

from __future__ import annotations

import re

from dripd_imap.classify.decode import (
    _ADDR_PATTERN,
    _ADDR_RE,
    _addresses,
    _clean_address,
    _first_msgid,
    _header,
    _headers,
    _unique,
)
from dripd_imap.classify.dsn_fields import (
    _HARD_TEXT_RE,
    _SOFT_TEXT_RE,
    _STATUS_RE,
    _dsn_recipients,
    _Recipient,
    _recipient_failed,
)
from dripd_imap.classify.view import _MessageView
from dripd_imap.classify.wording import FAILURE_RE, REPLY_PREFIX_RE

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
    r"|returning to sender|rejected|mail delivery status",
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


def _inline_dsn_failures(view: _MessageView) -> list[_Recipient]:
    """DSN fields pasted into a plain-text bounce (MIME lost on the way, or a bounce of a bounce)."""
    return [r for r in _dsn_recipients(_unquote(view.body)) if _recipient_failed(r)]


def _looks_like_bounce(view: _MessageView) -> bool:
    """Header evidence (who sent it, what it is called) plus body evidence; never a person's reply."""
    if view.msg.get("X-Failed-Recipients"):
        return True
    if _REPLY_PREFIX.match(view.subject) or _FORWARD_PREFIX.match(view.subject) or REPLY_PREFIX_RE.match(view.subject):
        return False  # a person answering or forwarding: even if it quotes a bounce
    from_header = _header(view.msg, "From")
    system_sender = bool(
        _SYSTEM_NAMES.search(from_header)
        or (view.sender and _SYSTEM_LOCALPARTS.match(view.sender.split("@")[0]))
        or ("@" not in from_header and re.search(r"mailer-daemon|postmaster", from_header, re.I))
        or _null_sender(view)
    )
    bounce_subject = bool(_BOUNCE_SUBJECT.search(view.subject) or FAILURE_RE.search(view.subject))
    returned = _returns_our_message(view)
    if not (system_sender or bounce_subject or returned):
        return False
    section = _failure_section(view.body)
    failure_text = bool(_BOUNCE_BODY.search(section) or FAILURE_RE.search(section))
    if returned and not (system_sender or bounce_subject):
        # Our own message handed back with failure wording, by a system that says so in its
        # envelope (null sender) or headers (Auto-Submitted): no person writes that way.
        return failure_text and _machine_sent(view)
    return failure_text or (bounce_subject and system_sender) or returned


def _returns_our_message(view: _MessageView) -> bool:
    """The notice carries (attached or quoted) a message whose From is the notice's recipient:
    our message coming back, which is what a bounce in any language does."""
    ours = set(_addresses(_header(view.msg, "To"))) | set(_addresses(_header(view.msg, "Delivered-To")))
    if not ours:
        return False
    senders = {a for o in view.originals for a in _addresses(_header(o, "From"))}
    senders.update(_text_addresses(_embedded_header(view.body, "From")))
    senders.update(_addresses(_quoted_header(view.body, "From")))
    return bool(ours & senders)


def _quoted_header(body: str, name: str) -> str:
    """A header line quoted with '>' or indented inside the notice (list managers quote that way)."""
    found = re.findall(rf"^[ \t>]*{name}:[ \t]*(.*)$", body, re.I | re.M)
    return " ".join(found[:3])


def _null_sender(view: _MessageView) -> bool:
    """Delivered with a null envelope sender (Return-Path: <>), as RFC 5321 4.5.5 asks of every
    delivery notification (auto-replies use it too, so it is never enough on its own)."""
    return view.msg.get("Return-Path") is not None and _header(view.msg, "Return-Path").strip() in ("<>", "")


def _machine_sent(view: _MessageView) -> bool:
    """Header evidence that software, not a person, sent this: a null envelope sender (RFC 5321
    4.5.5), Auto-Submitted (RFC 3834), or a list manager's own administrative marks."""
    if _null_sender(view):
        return True
    if _header(view.msg, "Auto-Submitted").lower().startswith("auto-"):
        return True
    if re.match(r"(?:bulk|junk|list)\b", _header(view.msg, "Precedence").lower()):
        return True
    return any(view.msg.get(name) is not None for name in ("X-List-Administrivia", "Mailing-List"))


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
