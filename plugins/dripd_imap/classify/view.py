"""A read-only view of the parts of a message that the rules look at, decoded once: its own
text, DSN and feedback-report bodies, the attached original; multiparts with a broken boundary
are recovered."""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
import re
from collections.abc import Iterator

from dripd_imap.classify.decode import _header, _message_ids, _part_text, _payload, _sender, _subject, _unique
from dripd_imap.classify.result import Classification, Kind

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
    json_texts: list[str]  # application/json parts, attachments included (a relay's notification)

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
            json_texts=[],
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
        elif ctype == "application/json" or ctype.endswith("+json"):
            self.json_texts.append(_part_text(part))
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
