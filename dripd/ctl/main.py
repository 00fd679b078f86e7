"""``dripctl``: a thin client of dripd's control API (Unix socket by default, or TCP + token)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dripd import __version__
from dripd.ctl import cmd_doctor, cmd_inbox, cmd_people, cmd_sequences, cmd_stats, cmd_status, cmd_webhooks
from dripd.ctl.client import Client, CtlError
from dripd.ctl.runner import FILE_COMMANDS, CtlParser, actions_of, finish_parser, in_flag_names, require_action, run_guarded

DEFAULT_SOCKET = "/run/dripd/dripd.sock"
SEQ = "sequence id or name"


def _parser() -> argparse.ArgumentParser:
    parser = CtlParser(prog="dripctl", description="Drive a running dripd.")
    parser.add_argument("-s", "--socket", type=Path, default=Path(os.environ.get("DRIPD_SOCKET") or DEFAULT_SOCKET),
                        help=f"control socket (default: $DRIPD_SOCKET, then {DEFAULT_SOCKET})")
    parser.add_argument("--url", default=os.environ.get("DRIPD_URL"), help="reach dripd over TCP instead, e.g. http://host:8025")
    parser.add_argument("--token", default=os.environ.get("DRIPD_TOKEN"), help="Bearer token for --url (or $DRIPD_TOKEN)")
    parser.add_argument("--json", action="store_true",
                        help="print the API's JSON instead of tables, and errors as JSON (also after the command)")
    parser.add_argument("--version", action="version", version=f"dripctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("status", help="daemon version, uptime, queue depth, uncertain sends")

    seq = sub.add_parser("sequences", aliases=["seq"], help="list, show, create, update, start, pause, ...")
    seq_sub = actions_of(seq)
    seq_sub.add_parser("list", help="all sequences with contact counts")
    for action, what in (("show", "settings, steps, contact counts and the completion rule"),
                         ("start", "start a draft: due contacts begin sending"),
                         ("pause", "hold every contact of an active sequence"),
                         ("resume", "resume a paused sequence")):
        seq_sub.add_parser(action, help=what).add_argument("sequence", help=SEQ)
    complete = seq_sub.add_parser("complete", help="end a sequence for good: cancels its active contacts, "
                                                   "refuses new enrollments (asks first)")
    complete.add_argument("sequence", help=SEQ)
    complete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (for scripts)")
    create = seq_sub.add_parser("create", help="create a draft sequence")
    create.add_argument("name", help="the new sequence's name")
    create.add_argument("--mailbox", required=True, help="mailbox id from the config")
    cmd_sequences.add_settings_flags(create)
    update = seq_sub.add_parser("update", help="change name, window, flags")
    update.add_argument("sequence", help=SEQ)
    update.add_argument("--name", help="new name")
    update.add_argument("--mailbox", help="mailbox id from the config")
    cmd_sequences.add_settings_flags(update)
    clone = seq_sub.add_parser("clone", help="copy settings and steps into a new draft")
    clone.add_argument("sequence", help=SEQ)
    clone.add_argument("--name", help="the copy's name (default: the original's with ' (copy)')")
    progress = seq_sub.add_parser("contacts", help="enrolled contacts: status, step, next run and what holds it")
    progress.add_argument("sequence", help=SEQ)
    progress.add_argument("--status", choices=cmd_sequences.STATUSES, help="only contacts with this status")
    progress.add_argument("--limit", type=cmd_sequences.positive, default=50, help="rows per page (default 50)")
    progress.add_argument("--offset", type=cmd_sequences.not_negative, default=0, help="rows to skip (the next page)")
    log = seq_sub.add_parser("log", help="one contact's log in a sequence: enrollments, messages, events")
    log.add_argument("sequence", help=SEQ)
    log.add_argument("contact", help="contact id or email")
    cancel = seq_sub.add_parser("cancel", help="cancel one contact's enrollment")
    cancel.add_argument("sequence", help=SEQ)
    cancel.add_argument("contact", help="contact id or email")

    steps = sub.add_parser("steps", help="add, edit or remove a sequence's steps")
    steps_sub = actions_of(steps)
    add = steps_sub.add_parser("add", help="append a step")
    add.add_argument("sequence", help=SEQ)
    cmd_sequences.add_step_flags(add, require_type=True)
    edit = steps_sub.add_parser("edit", help="change a step in place (the flags given)")
    edit.add_argument("sequence", help=SEQ)
    edit.add_argument("index", type=int, help="the step's index, from 0 (see `sequences show`)")
    cmd_sequences.add_step_flags(edit, require_type=False)
    rm = steps_sub.add_parser("rm", help="remove a step (later steps re-index)")
    rm.add_argument("sequence", help=SEQ)
    rm.add_argument("index", type=int, help="the step's index, from 0 (see `sequences show`)")

    enroll = sub.add_parser("enroll", help="enroll a list, a contact, or a CSV file")
    enroll.add_argument("sequence", help=SEQ)
    how = enroll.add_mutually_exclusive_group(required=True)
    how.add_argument("--list", help="list id or name")
    how.add_argument("--contact", metavar="EMAIL", help="one address (the contact is created if new)")
    how.add_argument("--contact-id", type=int, action="append", help="an existing contact's id (repeatable)")
    how.add_argument("--csv", type=Path, help="header row: email, firstName, lastName, company, other merge fields")
    enroll.add_argument("--field", action="append", metavar="KEY=VALUE", help="merge field (repeatable)")
    enroll.add_argument("--skip-invalid", action="store_true", help="enroll the valid rows, report the others")
    enroll.add_argument("--progress", action="store_true", help="show the upload bar and the server's progress even when not on a terminal")

    contacts = sub.add_parser("contacts", help="list, show, add, update, rm contacts")
    c_sub = actions_of(contacts)
    c_list = c_sub.add_parser("list", help="search by email")
    c_list.add_argument("--email", default="", help="part of the address to look for")
    c_list.add_argument("--limit", type=cmd_sequences.positive, default=100, help="at most this many (default 100)")
    for action, what in (("show", "one contact and its merge fields"), ("rm", "delete a contact (cancels its enrollments)")):
        c_sub.add_parser(action, help=what).add_argument("contact", help="contact id or email")
    c_sub.add_parser("bounced", help="addresses suppressed after a hard bounce")
    c_verify = c_sub.add_parser("verify", help="re-verify an address: syntax, mail domain, optional SMTP probe")
    c_verify.add_argument("email", help="the address to check")
    c_verify.add_argument("--probe", action="store_true", help="also ask the domain's mail server (nothing is sent)")
    c_verify.add_argument("--mailbox", help="mailbox whose address the probe uses as MAIL FROM")
    c_verify.add_argument("--lift", action="store_true", help="take the address off the suppression list if valid")
    c_add = c_sub.add_parser("add", help="create a contact")
    c_add.add_argument("email", help="the contact's address")
    c_update = c_sub.add_parser("update", help="change a contact (merge fields are merged)")
    c_update.add_argument("contact", help="contact id or email")
    c_update.add_argument("--email", help="new address")
    for parser_ in (c_add, c_update):
        parser_.add_argument("--first-name", help="the {{firstName}} merge field")
        parser_.add_argument("--last-name", help="the {{lastName}} merge field")
        parser_.add_argument("--company", help="the {{company}} merge field")
        parser_.add_argument("--field", action="append", metavar="KEY=VALUE", help="other merge field (repeatable)")

    lists = sub.add_parser("lists", help="list, show, create, add, remove, rm lists")
    l_sub = actions_of(lists)
    l_sub.add_parser("list", help="all lists with member counts")
    for action, what in (("show", "a list and its members"), ("rm", "delete a list (its contacts stay)")):
        l_sub.add_parser(action, help=what).add_argument("list", help="list id or name")
    l_create = l_sub.add_parser("create", help="create a list, optionally with members")
    l_create.add_argument("name", help="the new list's name")
    l_create.add_argument("emails", nargs="*", help="member addresses (contacts are created if new)")
    for action, what in (("add", "add members"), ("remove", "remove members (the contacts stay)")):
        members = l_sub.add_parser(action, help=what)
        members.add_argument("list", help="list id or name")
        members.add_argument("emails", nargs="+", help="member addresses")

    mailboxes = sub.add_parser("mailboxes", help="caps, sends today and this hour, warm-up, next send; pause/resume")
    m_sub = mailboxes.add_subparsers(dest="action", metavar="ACTION")  # no action: the list
    m_sub.add_parser("list", help="every configured mailbox (the default)")
    for action, what in (("show", "one mailbox in detail"), ("pause", "stop every send from it (kept across restarts)"),
                         ("resume", "send again")):
        m = m_sub.add_parser(action, help=what)
        m.add_argument("mailbox", help="mailbox id from the config")
        if action == "pause":
            m.add_argument("--reason", default="paused by an operator", help="shown in `mailboxes` and the log")

    preview = sub.add_parser("preview", help="render a step for a contact")
    preview.add_argument("sequence", help=SEQ)
    preview.add_argument("--step", type=int, required=True, help="the email step's index, from 0")
    preview.add_argument("--contact", required=True, help="email or id")
    preview.add_argument("--html", action="store_true", help="print the HTML part instead of the text part")
    preview.add_argument("--variant", help="render this A/B variant (default: the contact's own)")

    stats = sub.add_parser("stats", help="the funnel per step as a bar chart (or --html page)")
    stats.add_argument("sequence", help=SEQ)
    stats.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML page instead")

    apply = sub.add_parser("apply", help="create or update a sequence from a TOML file")
    apply.add_argument("-f", "--file", type=Path, required=True, help="the sequence file (see etc/sequences/)")
    apply.add_argument("--dry-run", action="store_true", help="print the plan only")
    export = sub.add_parser("export", help="write a sequence as TOML (the format apply reads)")
    export.add_argument("sequence", help=SEQ)
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of standard output")
    cmd_doctor.add_parser(sub)
    cmd_webhooks.add_parser(sub)
    cmd_inbox.register(sub)
    finish_parser(parser)  # last: --json on every subcommand
    return parser


_HANDLERS = {
    "status": cmd_status.status, "mailboxes": cmd_status.mailboxes, "preview": cmd_status.preview, "stats": cmd_stats.stats,
    "sequences": cmd_sequences.run, "seq": cmd_sequences.run, "steps": cmd_sequences.run,
    "apply": cmd_sequences.run, "export": cmd_sequences.run,
    "doctor": cmd_doctor.doctor,
    "enroll": cmd_people.enroll, "contacts": cmd_people.contacts, "lists": cmd_people.lists,
    "webhooks": cmd_webhooks.run,
    "inbox": cmd_inbox.run,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    json_errors = "--json" in argv  # before parsing: a usage error is reported in the mode asked for

    def body() -> int:
        args = _parser().parse_args(argv)
        require_action(args)
        client = Client(socket=args.socket, url=args.url, token=args.token)
        try:
            return _HANDLERS[args.command](client, args)
        except CtlError as exc:
            if args.command not in FILE_COMMANDS:
                exc.message = in_flag_names(exc.message)
            raise
        finally:
            client.close()

    return run_guarded(body, json_errors)


if __name__ == "__main__":
    sys.exit(main())
