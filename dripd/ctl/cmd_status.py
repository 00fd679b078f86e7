"""dripctl status / mailboxes / preview."""

from __future__ import annotations

import argparse
import math
from typing import Any

from dripd.ctl.client import Client
from dripd.ctl.output import as_json, block, relative, table


def status(client: Client, args: argparse.Namespace) -> int:
    data = client.get("/api/status")
    if args.json:
        as_json(data)
        return 0
    block([("version", data["version"]), ("started", data["startedAt"]), ("uptime", f"{data['uptimeSeconds']:.0f}s"),
           ("queue depth", data["queueDepth"]), ("sends today", data["sendsToday"]),
           ("uncertain sends", data["uncertainSends"]), ("mailboxes", data["mailboxes"]),
           ("paused mailboxes", ", ".join(data["pausedMailboxes"]) or "none")])
    cluster = data.get("cluster")
    if cluster:
        _cluster(cluster)
    return 0


def _cluster(cluster: dict[str, Any]) -> None:
    """Several nodes: which answered this command, every node, and who holds each mailbox."""
    print(f"\nnode {cluster['node']} (this one); leases last {cluster['leaseSeconds']:g}s")
    if "error" in cluster:
        print(f"cluster: {cluster['error']}")
        return
    table([(n["id"], n["address"] or "-", n["lastHeartbeat"], f"{n['heartbeatAgeSeconds']:.1f}s ago",
            "yes" if n["alive"] else "no") for n in cluster["nodes"]],
          ("node", "address", "last heartbeat", "age", "alive"))
    print()
    table([(lease["mailboxId"], lease["holder"] or "(free)", lease["generation"], lease["expiresAt"] or "-")
           for lease in cluster["leases"]], ("mailbox", "held by", "generation", "expires"))


def _ready(mailbox: dict[str, Any]) -> str:
    """The token bucket in words: how many sends may go at once now, of the burst allowed."""
    if "tokensNow" not in mailbox:
        return "-"
    return f"{max(0, math.floor(mailbox['tokensNow'] + 1e-9))} of {mailbox['burst']}"


def _warmup(warmup: dict[str, Any] | None) -> str:
    if not warmup:
        return "-"
    if warmup["done"]:
        return "done"
    return f"stage {warmup['stage']}/{warmup['stages']}, cap {warmup['capToday']}"


def mailboxes(client: Client, args: argparse.Namespace) -> int:
    action = getattr(args, "action", None) or "list"
    if action == "list":
        data = client.get("/api/mailboxes")
        if args.json:
            as_json(data)
            return 0
        now = data.get("now")
        table([(m["id"], m["address"], f"{m.get('sendsToday', 0)}/{m.get('dailyCapToday', m['dailyCap'])}",
                f"{m.get('sendsLastHour', 0)}/{m['hourlyCap']}", _ready(m), _warmup(m.get("warmup")),
                relative(m.get("nextSendAt"), now) if not m.get("paused") else "-",
                m.get("pausedReason") or ("paused" if m.get("paused") else ""),
                (m.get("health") or {}).get("status", "unknown")) for m in data["mailboxes"]],
              ("id", "address", "today", "this hour", "ready now", "warm-up", "next send", "paused", "health"))
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
        _show_mailbox(result, client.get("/api/mailboxes").get("now"))
    return 0


def _show_mailbox(m: dict[str, Any], now: str | None) -> None:
    """The mailbox in the words of the `mailboxes` table, not the API's field names."""
    health = m.get("health") or {}
    block([("id", m["id"]), ("address", f"{m['name']} <{m['address']}>" if m.get("name") else m["address"]),
           ("transport", m["transport"]), ("timezone", m["timezone"]),
           ("sent today", f"{m.get('sendsToday', 0)} of {m.get('dailyCapToday', m['dailyCap'])}"
                          + (f" (warm-up; {m['dailyCap']} after)" if m.get("dailyCapToday", m["dailyCap"]) < m["dailyCap"] else "")),
           ("sent this hour", f"{m.get('sendsLastHour', 0)} of {m['hourlyCap']}"),
           ("ready now", f"{_ready(m)} (sends refill evenly: {m['hourlyCap']} an hour)"),
           ("next send", "paused" if m.get("paused") else relative(m.get("nextSendAt"), now)),
           ("warm-up", _warmup(m.get("warmup"))), ("paused", m.get("pausedReason") or "no"),
           ("queued", m.get("queueDepth")), ("health", health.get("status", "unknown"))])
    for warning in health.get("warnings", []):
        print(f"WARNING: {warning}")


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
