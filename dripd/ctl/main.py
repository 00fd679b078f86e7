"""``dripctl``: a thin client of dripd's control API (Unix socket by default, or TCP + token)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dripd import __version__
from dripd.ctl import cmd_people, cmd_sequences, cmd_stats, cmd_status
from dripd.ctl.client import Client, CtlError

DEFAULT_SOCKET = "/run/dripd/dripd.sock"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dripctl", description="Drive a running dripd.")
    parser.add_argument("-s", "--socket", type=Path, default=Path(os.environ.get("DRIPD_SOCKET") or DEFAULT_SOCKET),
                        help=f"control socket (default: $DRIPD_SOCKET, then {DEFAULT_SOCKET})")
    parser.add_argument("--url", default=os.environ.get("DRIPD_URL"), help="reach dripd over TCP instead, e.g. http://host:8025")
    parser.add_argument("--token", default=os.environ.get("DRIPD_TOKEN"), help="Bearer token for --url (or $DRIPD_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    parser.add_argument("--version", action="version", version=f"dripctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("status", help="daemon version, uptime, queue depth, uncertain sends")

    seq = sub.add_parser("sequences", aliases=["seq"], help="list, show, create, update, start, pause, ...")
    seq_sub = seq.add_subparsers(dest="action", required=True, metavar="ACTION")
    seq_sub.add_parser("list", help="all sequences with contact counts")
    for action in ("show", "start", "pause", "resume", "complete"):
        seq_sub.add_parser(action, help=f"{action} a sequence").add_argument("sequence", help="id or name")
    create = seq_sub.add_parser("create", help="create a draft sequence")
    create.add_argument("name")
    create.add_argument("--mailbox", required=True, help="mailbox id from the config")
    cmd_sequences.add_settings_flags(create)
    update = seq_sub.add_parser("update", help="change name, window, flags")
    update.add_argument("sequence")
    update.add_argument("--name")
    update.add_argument("--mailbox")
    cmd_sequences.add_settings_flags(update)
    clone = seq_sub.add_parser("clone", help="copy settings and steps into a new draft")
    clone.add_argument("sequence")
    clone.add_argument("--name")
    progress = seq_sub.add_parser("contacts", help="enrolled contacts and their progress")
    progress.add_argument("sequence")
    progress.add_argument("--status")
    cancel = seq_sub.add_parser("cancel", help="cancel one contact's enrollment")
    cancel.add_argument("sequence")
    cancel.add_argument("contact", help="contact id or email")

    steps = sub.add_parser("steps", help="add, edit or remove a sequence's steps")
    steps_sub = steps.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = steps_sub.add_parser("add", help="append a step")
    add.add_argument("sequence")
    cmd_sequences.add_step_flags(add, require_type=True)
    edit = steps_sub.add_parser("edit", help="change a step in place (the flags given)")
    edit.add_argument("sequence")
    edit.add_argument("index", type=int)
    cmd_sequences.add_step_flags(edit, require_type=False)
    rm = steps_sub.add_parser("rm", help="remove a step (later steps re-index)")
    rm.add_argument("sequence")
    rm.add_argument("index", type=int)

    enroll = sub.add_parser("enroll", help="enroll a list, a contact, or a CSV file")
    enroll.add_argument("sequence")
    how = enroll.add_mutually_exclusive_group(required=True)
    how.add_argument("--list", help="list id or name")
    how.add_argument("--contact", metavar="EMAIL")
    how.add_argument("--contact-id", type=int, action="append")
    how.add_argument("--csv", type=Path, help="header row: email, firstName, lastName, company, other merge fields")
    enroll.add_argument("--field", action="append", metavar="KEY=VALUE", help="merge field (repeatable)")
    enroll.add_argument("--skip-invalid", action="store_true", help="enroll the valid rows, report the others")
    enroll.add_argument("--progress", action="store_true", help="show the upload bar and the server's progress even when not on a terminal")

    contacts = sub.add_parser("contacts", help="list, show, add, update, rm contacts")
    c_sub = contacts.add_subparsers(dest="action", required=True, metavar="ACTION")
    c_list = c_sub.add_parser("list", help="search by email")
    c_list.add_argument("--email", default="")
    c_list.add_argument("--limit", type=int, default=100)
    for action in ("show", "rm"):
        c_sub.add_parser(action).add_argument("contact", help="id or email")
    c_sub.add_parser("bounced", help="addresses suppressed after a hard bounce")
    c_verify = c_sub.add_parser("verify", help="re-verify an address: syntax, mail domain, optional SMTP probe")
    c_verify.add_argument("email")
    c_verify.add_argument("--probe", action="store_true", help="also ask the domain's mail server (nothing is sent)")
    c_verify.add_argument("--mailbox", help="mailbox whose address the probe uses as MAIL FROM")
    c_verify.add_argument("--lift", action="store_true", help="take the address off the suppression list if valid")
    c_add = c_sub.add_parser("add")
    c_add.add_argument("email")
    c_update = c_sub.add_parser("update")
    c_update.add_argument("contact")
    c_update.add_argument("--email")
    for parser_ in (c_add, c_update):
        parser_.add_argument("--first-name")
        parser_.add_argument("--last-name")
        parser_.add_argument("--company")
        parser_.add_argument("--field", action="append", metavar="KEY=VALUE")

    lists = sub.add_parser("lists", help="list, show, create, add, remove, rm lists")
    l_sub = lists.add_subparsers(dest="action", required=True, metavar="ACTION")
    l_sub.add_parser("list")
    for action in ("show", "rm"):
        l_sub.add_parser(action).add_argument("list", help="id or name")
    l_create = l_sub.add_parser("create")
    l_create.add_argument("name")
    l_create.add_argument("emails", nargs="*")
    for action in ("add", "remove"):
        members = l_sub.add_parser(action)
        members.add_argument("list")
        members.add_argument("emails", nargs="+")

    mailboxes = sub.add_parser("mailboxes", help="caps, sends today, tokens, warm-up, next send; pause/resume")
    m_sub = mailboxes.add_subparsers(dest="action", metavar="ACTION")
    m_sub.add_parser("list")
    for action in ("show", "pause", "resume"):
        m = m_sub.add_parser(action)
        m.add_argument("mailbox")
        if action == "pause":
            m.add_argument("--reason", default="paused by an operator")

    preview = sub.add_parser("preview", help="render a step for a contact")
    preview.add_argument("sequence")
    preview.add_argument("--step", type=int, required=True)
    preview.add_argument("--contact", required=True, help="email or id")
    preview.add_argument("--html", action="store_true", help="print the HTML part instead of the text part")

    stats = sub.add_parser("stats", help="the funnel per step as a bar chart (or --html page)")
    stats.add_argument("sequence", help="id or name")
    stats.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML page instead")

    apply = sub.add_parser("apply", help="create or update a sequence from a TOML file")
    apply.add_argument("-f", "--file", type=Path, required=True)
    apply.add_argument("--dry-run", action="store_true", help="print the plan only")
    export = sub.add_parser("export", help="write a sequence as TOML (the format apply reads)")
    export.add_argument("sequence")
    export.add_argument("-o", "--output", type=Path)
    return parser


_HANDLERS = {
    "status": cmd_status.status, "mailboxes": cmd_status.mailboxes, "preview": cmd_status.preview, "stats": cmd_stats.stats,
    "sequences": cmd_sequences.run, "seq": cmd_sequences.run, "steps": cmd_sequences.run,
    "apply": cmd_sequences.run, "export": cmd_sequences.run,
    "enroll": cmd_people.enroll, "contacts": cmd_people.contacts, "lists": cmd_people.lists,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    client = Client(socket=args.socket, url=args.url, token=args.token)
    try:
        return _HANDLERS[args.command](client, args)
    except CtlError as exc:
        print(f"dripctl: {exc.message}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
