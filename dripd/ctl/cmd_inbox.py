"""dripctl inbox: list, show, label and answer the replies dripd kept."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dripd.ctl.client import Client, CtlError
from dripd.ctl.output import as_json, block, table

CATEGORIES = ("interested", "not_interested", "out_of_office", "unsubscribe_request", "wrong_person", "other")


def register(sub: Any) -> None:
    """Add ``inbox`` and its actions to dripctl's command parsers."""
    inbox = sub.add_parser("inbox", help="replies and auto-replies: list, show, label, answer")
    i_sub = inbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    i_list = i_sub.add_parser("list", help="newest first, with filters")
    i_list.add_argument("--mailbox", help="mailbox id")
    i_list.add_argument("--sequence", help="sequence id or name")
    i_list.add_argument("--category", choices=CATEGORIES, help="only replies with this category")
    i_list.add_argument("--unread", action="store_true", help="unread replies only")
    i_list.add_argument("--since", metavar="ISO", help="received at or after, e.g. 2026-12-01 or 2026-12-01T08:00Z")
    i_list.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    i_list.add_argument("--offset", type=int, default=0, help="skip this many (paging)")
    i_show = i_sub.add_parser("show", help="one reply in full (marks it read)")
    i_show.add_argument("reply", type=int, help="reply id (from `dripctl inbox list`)")
    i_show.add_argument("--keep-unread", action="store_true", help="do not mark it read")
    i_label = i_sub.add_parser("label", help="relabel a reply (unsubscribe_request suppresses the address)")
    i_label.add_argument("reply", type=int, help="reply id")
    i_label.add_argument("category", choices=CATEGORIES, help="the new category")
    i_answer = i_sub.add_parser("answer", help="answer a reply from the contact's mailbox, threaded under it")
    i_answer.add_argument("reply", type=int, help="reply id")
    text = i_answer.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the answer, plain text")
    text.add_argument("--file", type=Path, help="read the answer from a file ('-' for stdin)")


def run(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(client, args)
    if args.action == "show":
        reply = client.get(f"/api/replies/{args.reply}")
        if not args.keep_unread and reply["unread"]:
            reply = client.patch(f"/api/replies/{args.reply}", {"read": True})
    elif args.action == "label":
        reply = client.patch(f"/api/replies/{args.reply}", {"category": args.category})
    else:
        reply = client.post(f"/api/replies/{args.reply}/answer", {"text": _answer_text(args)})
    if args.json:
        as_json(reply)
    else:
        _show(reply)
    return 0


def _list(client: Client, args: argparse.Namespace) -> int:
    sequence = client.sequence_id(args.sequence) if args.sequence else None
    data = client.get("/api/replies", mailbox=args.mailbox, sequence=sequence, category=args.category,
                      unread=True if args.unread else None, since=args.since, limit=args.limit, offset=args.offset)
    if args.json:
        as_json(data)
        return 0
    table([(r["id"], "*" if r["unread"] else "", r["receivedAt"], r["contactEmail"], r["category"],
            r["subject"][:40], r["snippet"][:60]) for r in data["replies"]],
          ("id", "new", "received", "contact", "category", "subject", "text"))
    if data["nextOffset"] is not None:
        print(f"-- {data['total']} in all; next page: --offset {data['nextOffset']}")
    return 0


def _show(reply: dict[str, Any]) -> None:
    raw = reply["raw"]
    block([("id", reply["id"]), ("kind", reply["kind"]), ("from", reply["from"]), ("subject", reply["subject"]),
           ("date", reply["date"]), ("message-id", reply["messageId"]), ("contact", reply["contactEmail"]),
           ("mailbox", reply["mailboxId"]), ("sequence", reply["sequenceId"]),
           ("category", f"{reply['category']} (by {reply['categoryBy']}: {reply['rule']})"),
           ("raw message", f"{raw['folder']} UID {raw['uid']} (UIDVALIDITY {raw['uidvalidity']})"),
           ("unread", reply["unread"])])
    for relabel in reply["relabels"]:
        print(f"relabelled {relabel['previous']} -> {relabel['category']} at {relabel['at']}")
    for answer in reply["answers"]:
        print(f"answered {answer['sentAt']}: {answer['status']} {answer['messageId']}")
    print()
    print(reply["text"])


def _answer_text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    try:
        return sys.stdin.read() if str(args.file) == "-" else Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CtlError(f"cannot read the answer from {args.file}: {exc}") from None
