"""Complaints: RFC 5965 ARF (and its opt-out), Microsoft JMRP, Apple Mail's one-click unsubscribe."""

from __future__ import annotations

from dripd_imap.classify.decode import _addresses, _first_msgid, _header
from dripd_imap.classify.dsn_fields import _fields
from dripd_imap.classify.result import Classification, Kind
from dripd_imap.classify.view import _MessageView


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
