"""dripctl doctor [MAILBOX]: the deliverability checks of one mailbox, or of every mailbox."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dripd.ctl.client import Client
from dripd.ctl.output import as_json

EXIT_FAILED = 1  # some check failed: a script (or a deploy) can stop on it
_MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unknown": "????", "skip": "skip"}


def add_parser(sub: "argparse._SubParsersAction[Any]") -> None:
    doctor = sub.add_parser("doctor", help="check SPF, DKIM, DMARC, MX, TLS, blocklists and message shape")
    doctor.add_argument("mailbox", nargs="?", help="mailbox id (default: every mailbox)")


def doctor(client: Client, args: argparse.Namespace) -> int:
    ids = [args.mailbox] if args.mailbox else [m["id"] for m in client.get("/api/mailboxes")["mailboxes"]]
    reports = [client.get(f"/api/mailboxes/{mailbox_id}/doctor") for mailbox_id in ids]
    if args.json:
        as_json(reports[0] if args.mailbox else {"reports": reports})
    else:
        for report in reports:
            _print(report)
    return EXIT_FAILED if any(r["status"] == "fail" for r in reports) else 0


def _print(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"mailbox {report['mailboxId']} ({report['domain']}): {report['status'].upper()}\n")
    for check in report["checks"]:
        out.write(f"  {_MARK.get(check['status'], check['status'])}  {check['name']:<17} {check['summary']}\n")
        if check["record"]:
            out.write(f"        read: {check['record']}\n")
        if check["fix"] and check["status"] != "pass":
            out.write(f"        fix:  {check['fix']}\n")
    out.write("\n")
