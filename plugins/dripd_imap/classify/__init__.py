"""Classify one raw RFC 5322 message: human reply, auto-reply, bounce, complaint or positive DSN.

Pure: no I/O, no clock. The IMAP detector feeds it the bytes of each new message and turns the
result into events; matching a reply or a bounce to what was sent is the caller's job (it gets
the Message-IDs this package finds).

Order of the checks matters and follows the standards:

1. complaints (RFC 5965 ARF, Microsoft JMRP, Apple Mail's one-click unsubscribe),
2. RFC 3464 delivery-status reports (failed / delayed -> BOUNCE, delivered -> DELIVERED),
3. a relay's JSON notification (SES, SendGrid, Mailgun-style bounce / complaint / delivery events),
4. non-standard bounces (MTA-specific plain-text shapes, any language, the original returned),
5. RFC 3834 auto-replies,
6. anything else is a MESSAGE (a candidate human reply).

Complaints and DSNs come first because they also carry ``Auto-Submitted`` (RFC 3464 section 2
and RFC 5965 section 3 ask for it), which alone would make them look like auto-replies.

The package is split by concern: ``decode`` (parsing, headers, addresses, text of parts),
``view`` (the parts the rules look at, decoded once), ``complaint``, ``dsn_fields`` (RFC 3464
fields, recipients and bounce classes), ``relay_json`` (a relay's JSON notifications), ``bounce_text`` (what an MTA's free text says),
``bounces`` (the DSN and plain-text bounce verdicts), ``auto_reply`` (RFC 3834 and return dates)
and ``result`` (the verdict). Underscored names are internal to the package; its public names
are those in ``__all__``.

Decisions (see the package's tests):

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

from dripd_imap.classify.auto_reply import _as_auto_reply
from dripd_imap.classify.bounces import _as_dsn, _as_plain_bounce
from dripd_imap.classify.complaint import _as_complaint
from dripd_imap.classify.decode import _parse, _sender, _subject
from dripd_imap.classify.relay_json import _as_relay_json
from dripd_imap.classify.result import Classification, Kind
from dripd_imap.classify.view import _MessageView

__all__ = ["Kind", "Classification", "classify"]


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
        or _as_relay_json(view)
        or _as_plain_bounce(view)
        or _as_auto_reply(view)
        or view.verdict(Kind.MESSAGE, original_message_id=None)
    )
