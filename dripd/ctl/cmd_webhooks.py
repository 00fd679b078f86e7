"""dripctl webhooks: endpoints, deliveries, test sends and replays."""

from __future__ import annotations

import argparse
from typing import Any

from dripd.ctl.client import Client, CtlError
from dripd.ctl.output import as_json, block, table

STATUSES = ("pending", "delivered", "failed")


def add_parser(sub: Any) -> None:
    """Register ``dripctl webhooks ...`` on the top-level subparsers."""
    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries: list, test, replay, ...")
    w_sub = hooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    w_sub.add_parser("list", help="endpoints with their deliveries by status")
    w_sub.add_parser("test", help="send a signed webhook.test message now").add_argument("endpoint", help="id or name")
    w_sub.add_parser("replay", help="deliver a delivery again now (same webhook-id)").add_argument(
        "delivery", type=int, help="delivery id (from `dripctl webhooks deliveries`)")
    deliveries = w_sub.add_parser("deliveries", help="deliveries, newest first")
    deliveries.add_argument("endpoint", nargs="?", help="id or name (default: all)")
    deliveries.add_argument("--status", choices=STATUSES, help="only deliveries in this state")
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add = w_sub.add_parser("add", help="add an endpoint (prints its secret once)")
    add.add_argument("name", help="a name for the endpoint")
    add.add_argument("url", help="the https URL to POST events to")
    add.add_argument("--event", action="append", dest="events", metavar="KIND", help="event kind (repeatable; default all)")
    add.add_argument("--secret-file", help="file holding a whsec_... secret (default: dripd makes one)")
    for action, text in (("rm", "delete an endpoint made through the API"), ("enable", "enable an endpoint again")):
        w_sub.add_parser(action, help=text).add_argument("endpoint", help="id or name")


def _endpoint_id(client: Client, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    for endpoint in client.get("/api/webhooks")["webhooks"]:
        if endpoint["name"] == ref:
            return int(endpoint["id"])
    raise CtlError(f"no webhook endpoint named {ref!r}")


def run(client: Client, args: argparse.Namespace) -> int:
    action = args.action
    if action == "list":
        data = client.get("/api/webhooks")
        if args.json:
            as_json(data)
            return 0
        table([(e["id"], e["name"], e["url"], ",".join(e["events"] or ["*"]), e["source"],
                "yes" if e["enabled"] else f"no ({e['disabledReason']})",
                *(e["deliveries"].get(status, 0) for status in STATUSES)) for e in data["webhooks"]],
              ("id", "name", "url", "events", "source", "enabled", *STATUSES))
        return 0
    if action == "deliveries":
        webhook_id = _endpoint_id(client, args.endpoint) if args.endpoint else None
        data = client.get("/api/webhooks/deliveries", webhookId=webhook_id, status=args.status, limit=args.limit)
        if args.json:
            as_json(data)
            return 0
        table([(d["id"], d["webhookId"], d["eventKind"], d["status"], d["attempts"], d["lastStatus"],
                d["lastError"], d["nextAttemptAt"] or d["deliveredAt"]) for d in data["deliveries"]],
              ("id", "webhook", "event", "status", "attempts", "http", "last error", "next / delivered"))
        return 0
    if action == "test":
        result = client.post(f"/api/webhooks/{_endpoint_id(client, args.endpoint)}/test")
        if args.json:
            as_json(result)
        else:
            block([("ok", result["ok"]), ("status", result["status"]), ("error", result["error"])])
        return 0 if result["ok"] else 1
    if action == "replay":
        result = client.post(f"/api/webhooks/deliveries/{args.delivery}/replay")
    elif action == "add":
        body: dict[str, Any] = {"name": args.name, "url": args.url, "events": args.events}
        if args.secret_file:
            try:
                with open(args.secret_file, encoding="utf-8") as handle:
                    body["secret"] = handle.read().strip()
            except OSError as exc:
                raise CtlError(f"cannot read {args.secret_file}: {exc.strerror}") from None
        result = client.post("/api/webhooks", body)
    elif action == "rm":
        client.delete(f"/api/webhooks/{_endpoint_id(client, args.endpoint)}")
        return 0
    else:
        result = client.post(f"/api/webhooks/{_endpoint_id(client, args.endpoint)}/enable")
    if args.json:
        as_json(result)
    else:
        block(list(result.items()))
    return 0
