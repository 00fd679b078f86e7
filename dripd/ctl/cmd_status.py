"""dripctl status / mailboxes / preview."""

from __future__ import annotations

import argparse

from dripd.ctl.client import Client
from dripd.ctl.output import as_json, block, table


def status(client: Client, args: argparse.Namespace) -> int:
    data = client.get("/api/status")
    if args.json:
        as_json(data)
        return 0
    block([("version", data["version"]), ("started", data["startedAt"]), ("uptime", f"{data['uptimeSeconds']:.0f}s"),
           ("queue depth", data["queueDepth"]), ("sends today", data["sendsToday"]),
           ("uncertain sends", data["uncertainSends"]), ("mailboxes", data["mailboxes"]),
           ("paused mailboxes", ", ".join(data["pausedMailboxes"]) or "none")])
    return 0


def mailboxes(client: Client, args: argparse.Namespace) -> int:
    action = getattr(args, "action", None) or "list"
    if action == "list":
        data = client.get("/api/mailboxes")
        if args.json:
            as_json(data)
            return 0
        table([(m["id"], m["address"], f"{m.get('sendsToday', 0)}/{m.get('dailyCapToday', m['dailyCap'])}",
                m["hourlyCap"], m.get("tokensNow"), (m.get("warmup") or {}).get("stage"), m.get("nextSendAt"),
                m.get("pausedReason") or ("paused" if m.get("paused") else ""),
                (m.get("health") or {}).get("status", "unknown")) for m in data["mailboxes"]],
              ("id", "address", "today", "hourly", "tokens", "warm-up", "next send", "paused", "health"))
        for m in data["mailboxes"]:  # the new-contact cap, where one is set
            if m.get("dailyNewCap"):
                print(f"mailbox {m['id']}: {m.get('newToday', 0)}/{m['dailyNewCap']} first emails to new contacts today")
        for m in data["mailboxes"]:  # the warning banner: before the provider notices
            for warning in (m.get("health") or {}).get("warnings", []):
                print(f"WARNING: mailbox {m['id']}: {warning}")
        return 0
    if action == "show":
        result = client.get(f"/api/mailboxes/{args.mailbox}")
    elif action == "pause":
        result = client.post(f"/api/mailboxes/{args.mailbox}/pause", {"reason": args.reason})
    else:
        result = client.post(f"/api/mailboxes/{args.mailbox}/resume")
    if args.json:
        as_json(result)
    else:
        block(list(result.items()))
    return 0


def preview(client: Client, args: argparse.Namespace) -> int:
    sequence_id = client.sequence_id(args.sequence)
    body = {"stepIndex": args.step}
    if args.contact.isdigit():
        body["contactId"] = int(args.contact)
    else:
        body["contactEmail"] = args.contact
    if args.variant:
        body["variant"] = args.variant
    data = client.post(f"/api/sequences/{sequence_id}/preview", body)
    if args.json:
        as_json(data)
        return 0
    for name, value in data["headers"].items():
        print(f"{name}: {value}")
    print()
    print(data["html"] if args.html else data["text"])
    if data.get("variant"):
        print(f"-- variant {data['variant']} of {', '.join(data['variants'])}")
    if data["missing"]:
        print(f"-- merge fields left unfilled: {', '.join(data['missing'])}")
    return 0
