"""RFC 3464 delivery-status fields: per-recipient blocks, their action and status, and the bounce
class (hard or soft) from the enhanced status code, or from the wording when there is none."""

from __future__ import annotations

import dataclasses
import re

from dripd_imap.classify.decode import _addresses, _clean_address, _unique

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
