"""A relay's own notification format: bounce, complaint and delivery events as a JSON document
in the message body or a JSON part (Amazon SES via SNS, SendGrid, Mailgun, Postmark, SparkPost
and their kind), instead of an RFC 3464 report.

Read by vocabulary, not by vendor: an event is a JSON object whose type-ish fields (``event``,
``type``, ``notificationType``, ``RecordType``, ``bounceType``, ``severity``...) say bounce /
failed / deferred / complaint / delivery; its recipients are the address-valued fields named
like a recipient (``email``, ``recipient``, ``emailAddress``, ``rcpt_to``); its class comes from
the words (permanent / transient / temporary / soft / deferred / delay), else from a status
code, else hard. The original Message-ID is a ``message-id``-like field holding an ``@`` id.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator

from dripd_imap.classify.decode import _ADDR_RE, _addresses, _clean_address, _header, _unique
from dripd_imap.classify.dsn_fields import _STATUS_RE, _class_of_status
from dripd_imap.classify.result import Classification, Kind
from dripd_imap.classify.view import _MessageView

_MAX_JSON_CHARS = 512 * 1024
_JSON_START = re.compile(r"(?:\A|[=\n])[ \t]*([\[{])")
_MAX_STARTS = 4
_TYPE_KEY = re.compile(r"^(?:event|event_?type|type|notification_?type|record_?type|bounce_?type|severity|"
                       r"status_?type|category|message_?event|kind|action)$", re.I)
_BOUNCE_WORDS = re.compile(r"^(?:bounce[ds]?|hard_?bounce|soft_?bounce|failed|failure|dropped|blocked|rejected|"
                           r"undeliverable|deferred|deferral|delay(?:ed)?|transient|permanent|out_of_band|"
                           r"policy_rejection|generation_rejection|temporary)$", re.I)
_SOFT_WORDS = re.compile(r"^(?:soft_?bounce|deferred|deferral|delay(?:ed)?|transient|temporary)$", re.I)
_HARD_WORDS = re.compile(r"^(?:hard_?bounce|permanent)$", re.I)
_COMPLAINT_WORDS = re.compile(r"^(?:complaint|complained|spam_?report|spam_?complaint|abuse|feedback|"
                              r"spam)$", re.I)
_DELIVERY_WORDS = re.compile(r"^(?:delivery|delivered)$", re.I)
_RECIPIENT_KEY = re.compile(r"^(?:e-?mail(?:_?address)?|recipient|rcpt(?:_to)?|raw_rcpt_to|to|"
                            r"email_?address|address)$", re.I)
_MSGID_KEY = re.compile(r"^(?:message[-_]?id|smtp[-_]id|x-message-id|original[-_]?message[-_]?id)$", re.I)
_CODE_KEY = re.compile(r"^(?:status|code|error_?code|smtp_?code|status_?code)$", re.I)


@dataclasses.dataclass
class _Event:
    words: list[str]
    recipients: list[str]
    message_ids: list[str]
    codes: list[str]
    diagnostic: str | None


def _as_relay_json(view: _MessageView) -> Classification | None:
    """BOUNCE / COMPLAINT / DELIVERED from a relay's JSON notification; None when there is none."""
    events = [e for doc in _documents(view) for e in _events(doc)]
    ours = set(_addresses(_header(view.msg, "To"))) | ({view.sender} if view.sender else set())
    for event in events:  # the mailbox's own address (or the notifier's) is never the one that failed
        event.recipients = [a for a in event.recipients if a not in ours]
    bounces = [e for e in events if any(_BOUNCE_WORDS.match(w) for w in e.words) and e.recipients]
    complaints = [e for e in events if any(_COMPLAINT_WORDS.match(w) for w in e.words) and e.recipients]
    ids = _unique(i for e in events for i in e.message_ids)
    original = ids[0] if ids else None
    if complaints and not bounces:
        recipients = _unique(a for e in complaints for a in e.recipients)
        return view.verdict(Kind.COMPLAINT, failed_recipients=tuple(recipients), original_message_id=original)
    if bounces:
        classes = [_class(e) for e in bounces]
        worst = "hard" if "hard" in classes else "soft"
        chosen = bounces[classes.index(worst)]
        status = next((c for c in chosen.codes if _STATUS_RE.fullmatch(c)), None)
        return view.verdict(Kind.BOUNCE, failed_recipients=tuple(_unique(a for e in bounces for a in e.recipients)),
                            bounce_class=worst, status=status, diagnostic=chosen.diagnostic,
                            original_message_id=original)
    if any(any(_DELIVERY_WORDS.match(w) for w in e.words) for e in events):
        return view.verdict(Kind.DELIVERED, original_message_id=original)
    return None


def _class(event: _Event) -> str:
    if any(_HARD_WORDS.match(w) for w in event.words):
        return "hard"
    if any(_SOFT_WORDS.match(w) for w in event.words):
        return "soft"
    for code in event.codes:
        match = _STATUS_RE.search(code)
        if match:
            return _class_of_status(".".join(match.groups()))
        if re.fullmatch(r"[45]\d\d", code):
            return "hard" if code[0] == "5" else "soft"
    return "hard"  # a relay reports a failure only once it has given up (see the package docstring)


def _documents(view: _MessageView) -> Iterator[object]:
    """JSON documents in the text and JSON parts (trailing prose, like SNS's footer, is ignored)."""
    for text in view.texts + view.json_texts:
        text = text[:_MAX_JSON_CHARS]
        # The document opens the part, or follows a short preamble: a form field name
        # ("mandrill_events="), a line of prose ("Event batch:"). A few starts are tried, no more.
        for match in list(_JSON_START.finditer(text[:4096]))[:_MAX_STARTS]:
            try:
                document, _ = json.JSONDecoder().raw_decode(text, match.start(1))
            except (ValueError, RecursionError):
                continue
            if isinstance(document, (dict, list)):
                yield document
                break


def _events(document: object, depth: int = 0) -> Iterator[_Event]:
    """Each list element is an event of its own; nested wrappers (``event-data``, ``msys``,
    SNS's ``Message`` string) are unwrapped."""
    if depth > 6:
        return
    if isinstance(document, list):
        for item in document[:1000]:
            yield from _events(item, depth + 1)
        return
    if not isinstance(document, dict):
        return
    inner = document.get("Message")
    if isinstance(inner, str) and inner.lstrip()[:1] == "{":
        try:
            yield from _events(json.loads(inner), depth + 1)
            return
        except ValueError:
            pass
    event = _Event([], [], [], [], None)
    _collect(document, event, depth=0)
    yield event


def _collect(node: object, event: _Event, depth: int, key: str = "") -> None:
    if depth > 8:
        return
    if isinstance(node, dict):
        for name, value in list(node.items())[:500]:
            # A copy of the sent message's headers names the original, not the failed address.
            if str(name).lower() in ("headers", "commonheaders", "mail") and isinstance(value, (dict, list)):
                _collect_ids(value, event, depth + 1)
                continue
            _collect(value, event, depth + 1, str(name))
    elif isinstance(node, list):
        for item in node[:500]:
            _collect(item, event, depth + 1, key)
    elif isinstance(node, (str, int)) and not isinstance(node, bool):
        text = str(node).strip()
        if _TYPE_KEY.match(key):
            event.words.append(text)
        if _RECIPIENT_KEY.match(key):
            event.recipients += [_clean_address(a) for a in _ADDR_RE.findall(text)]
            event.recipients = _unique(event.recipients)
        if _MSGID_KEY.match(key) and "@" in text:
            event.message_ids.append(text if text.startswith("<") else f"<{text}>")
        if _CODE_KEY.match(key):
            event.codes.append(text)
        if event.diagnostic is None and re.match(r"^(?:diagnostic_?code|reason|raw_reason|response|details|message"
                                                 r"|description)$", key, re.I) and re.search(r"\b[245]\d\d\b", text):
            event.diagnostic = text[:200]


def _collect_ids(node: object, event: _Event, depth: int) -> None:
    """Message-IDs from a copy of the sent message's headers (dicts, or SES's name/value list)."""
    if depth > 8:
        return
    if isinstance(node, dict):
        name = str(node.get("name", "")).lower()
        if name == "message-id" and isinstance(node.get("value"), str):
            value = str(node["value"]).strip()
            event.message_ids.append(value if value.startswith("<") else f"<{value}>")
        for key, value in node.items():
            if _MSGID_KEY.match(str(key)) and isinstance(value, str) and "@" in value:
                event.message_ids.append(value if value.startswith("<") else f"<{value.strip()}>")
            elif isinstance(value, (dict, list)):
                _collect_ids(value, event, depth + 1)
    elif isinstance(node, list):
        for item in node[:500]:
            _collect_ids(item, event, depth + 1)
