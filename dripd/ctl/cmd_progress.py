"""dripctl sequences contacts (paged, with the real next run and what holds it) and
sequences log (one contact's enrollments, messages and events)."""

from __future__ import annotations

import argparse
from typing import Any

from dripd.ctl.client import Client
from dripd.ctl.output import as_json, block, relative, table


def _next_run(contact: dict[str, Any], now: str | None) -> str:
    if contact["status"] != "active":
        return "-"
    when = relative(contact["nextRunAt"], now) if contact.get("nextRunAt") else "never"
    reason = contact.get("nextRunReason")
    return f"{when}: {reason}" if reason and reason != "due now" else when


def _status(contact: dict[str, Any]) -> str:
    """A stuck contact says so; an ended one says why (a failed step's reason)."""
    state = contact.get("state") or contact["status"]
    reason = contact.get("endReason")
    if state in ("failed", "bounced") and reason:
        return f"{state}: {reason}"
    return str(state)


def contacts(client: Client, args: argparse.Namespace) -> int:
    sequence_id = client.sequence_id(args.sequence)
    data = client.get(f"/api/sequences/{sequence_id}/contacts", status=args.status, limit=args.limit,
                      offset=args.offset)
    if args.json:
        as_json(data)
        return 0
    now = data.get("now")
    rows = data["contacts"]
    table([(c["contactId"], c["email"], _status(c), c["stepIndex"], c["sentCount"], _next_run(c, now),
            relative(c["lastEventAt"], now) if c["lastEventAt"] else None) for c in rows],
          ("id", "email", "status", "step", "sent", "next run", "last event"))
    total = data["total"]
    shown = f"{args.offset + 1}-{args.offset + len(rows)}" if rows else "none"
    if total > len(rows) or args.offset:
        more = (f"; next page: --offset {args.offset + len(rows)}" if args.offset + len(rows) < total else "")
        print(f"({shown} of {total}{more})")
    return 0


def log(client: Client, args: argparse.Namespace) -> int:
    sequence_id = client.sequence_id(args.sequence)
    contact_id = client.contact_id(args.contact)
    data = client.get(f"/api/sequences/{sequence_id}/contacts/{contact_id}")
    if args.json:
        as_json(data)
        return 0
    print(f"{data['email']} (contact {contact_id}) in sequence {sequence_id}")
    for enrollment in data["enrollments"]:
        ended = (f", ended {enrollment['endedAt']}" + (f" ({enrollment['endReason']})" if enrollment["endReason"] else "")
                 if enrollment["endedAt"] else "")
        print(f"  enrollment {enrollment['enrollmentId']}: {enrollment['status']}, enrolled {enrollment['enrolledAt']}"
              f"{ended}, {enrollment['sentCount']} sent")
    print()
    table([(m["sentAt"], m["stepIndex"] if m["stepIndex"] is not None else "deleted", m["subject"], m["status"],
            m["detail"] or "") for m in data["messages"]], ("sent at", "step", "subject", "status", "detail"))
    if data["events"]:
        print()
        table([(e["at"], e["kind"], e["stepIndex"], "machine" if e["flagged"] else "", e["data"] or "")
               for e in data["events"]], ("at", "event", "step", "flag", "data"))
    replied = data.get("repliedTo")
    if replied:
        print()
        block([("replied to", f"step {replied['stepIndex']}: {replied['subject']}")])
    return 0
