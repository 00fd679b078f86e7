"""dripctl sequences / steps / apply / export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dripd.ctl import cmd_progress, cmd_variants, seqfile
from dripd.ctl.client import Client, CtlError
from dripd.ctl.output import as_json, block, table

# The API's enrollment statuses (model.EnrollmentStatus; a unit test keeps the two equal). Not
# imported: the model pulls in trio and the holiday calendars, and dripctl starts on every call.
STATUSES = ("active", "completed", "replied", "cancelled", "bounced", "unsubscribed", "failed")


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def not_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return int(text)


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timezone", help="IANA zone of the send window, e.g. Europe/Berlin")
    parser.add_argument("--window", metavar="START-END", help="send window hours, e.g. 9-17 (end exclusive, 24 = midnight)")
    parser.add_argument("--weekdays-only", action=argparse.BooleanOptionalAction, default=None,
                        help="send Monday to Friday only")
    parser.add_argument("--auto-pause-on-reply", action=argparse.BooleanOptionalAction, default=None,
                        help="a reply stops the contact (default on)")
    parser.add_argument("--auto-complete", action=argparse.BooleanOptionalAction, default=None,
                        help="complete the sequence (no new enrollments) when its last active contact finishes;"
                             " default off, for one-shot campaigns only")
    parser.add_argument("--track-opens", action=argparse.BooleanOptionalAction, default=None,
                        help="add an open-tracking pixel")
    parser.add_argument("--track-clicks", action=argparse.BooleanOptionalAction, default=None,
                        help="rewrite links to count clicks")
    parser.add_argument("--list-unsubscribe", action=argparse.BooleanOptionalAction, default=None,
                        help="List-Unsubscribe headers (default on; off for one-to-one cold email)")
    parser.add_argument("--window-zone", choices=("sequence", "contact"),
                        help="open the window in the sequence's zone or in each contact's own timezone field")
    parser.add_argument("--holidays", metavar="CALENDARS",
                        help="holiday calendars skipped like weekends, comma-separated: US,DE-BY ('' for none)")
    parser.add_argument("--blackout", metavar="DATES",
                        help="dates on which nothing is sent, comma-separated YYYY-MM-DD ('' for none)")


def settings_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.timezone:
        body["timezone"] = args.timezone
    if args.window:
        start, sep, end = args.window.partition("-")
        if not (sep and start.strip().isdigit() and end.strip().isdigit()):
            raise CtlError(f"--window: expected START-END hours such as 9-17, got {args.window!r}", 2)
        body["sendWindowStartHour"], body["sendWindowEndHour"] = int(start), int(end)
    if args.window_zone:
        body["windowZone"] = args.window_zone
    for flag, key in (("holidays", "holidays"), ("blackout", "blackoutDates")):
        if getattr(args, flag) is not None:
            body[key] = [item.strip() for item in getattr(args, flag).split(",") if item.strip()]
    for flag, key in (("weekdays_only", "weekdaysOnly"), ("auto_pause_on_reply", "autoPauseOnReply"),
                      ("auto_complete", "autoComplete"), ("track_opens", "trackOpens"),
                      ("track_clicks", "trackClicks"), ("list_unsubscribe", "listUnsubscribe")):
        if getattr(args, flag) is not None:
            body[key] = getattr(args, flag)
    return body


def add_step_flags(parser: argparse.ArgumentParser, *, require_type: bool) -> None:
    parser.add_argument("--type", required=require_type, choices=("email", "wait", "conditional", "send_email", "delay"),
                        help="email (send_email), wait (delay) or conditional")
    parser.add_argument("--subject", help="email subject with merge fields; '' on a follow-up = Re: <first subject>")
    parser.add_argument("--body", help="HTML body")
    parser.add_argument("--body-file", type=Path, help="read the HTML body from a file")
    parser.add_argument("--text", help="plain-text part (generated from the HTML when absent)")
    parser.add_argument("--no-thread", action="store_true", help="send as a new thread, not a reply")
    parser.add_argument("--days", type=float, help="wait step: how many days (fractions allowed)")
    parser.add_argument("--hours", type=float, help="wait step: how many hours")
    parser.add_argument("--minutes", type=float, help="wait step: how many minutes")
    parser.add_argument("--ms", type=float, help="wait step: how many milliseconds")
    parser.add_argument("--condition", choices=("if_replied", "if_opened", "if_clicked"),
                        help="conditional step: the steps after it run only if the contact did this")
    cmd_variants.add_variant_flags(parser)


def step_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.type:
        body["type"] = args.type
    if args.subject is not None:
        body["subject"] = args.subject
    if args.body_file:
        try:
            body["body"] = args.body_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CtlError(f"cannot read {args.body_file}: {exc.strerror}") from None
    elif args.body is not None:
        body["body"] = args.body
    if args.text is not None:
        body["text"] = args.text
    if args.no_thread:
        body["thread"] = False
    for flag, key in (("days", "waitDays"), ("hours", "waitHours"), ("minutes", "waitMinutes"), ("ms", "delayMs")):
        value = getattr(args, flag)
        if value is not None:
            body[key] = int(value) if value == int(value) else value
    if args.condition:
        body["condition"] = args.condition
    body.update(cmd_variants.variant_fields(args))
    return body


def show_sequence(seq: dict[str, Any]) -> None:
    # The completion rule's words live with the rule; imported here, where they are needed.
    from dripd import policy
    from dripd.model import SequenceStatus

    window = f"{seq['sendWindowStartHour']:02d}:00-{seq['sendWindowEndHour']:02d}:00 {seq['timezone']}"
    if seq["weekdaysOnly"]:
        window += ", weekdays only"
    block([("id", seq["id"]), ("name", seq["name"]), ("status", seq["status"] + (
        f" ({seq['statusReason']})" if seq.get("statusReason") else "")), ("mailbox", seq["mailboxId"]),
        ("window", window), ("auto-pause on reply", seq["autoPauseOnReply"]),
        ("auto-complete", policy.autocomplete_rule(SequenceStatus(seq["status"]), seq["autoComplete"],
                                                   seq["contacts"].get("active", 0))),
        ("contacts", ", ".join(f"{k} {v}" for k, v in seq["contacts"].items() if v or k == "total"))])
    if seq.get("steps"):
        print()
        show_steps(seq["steps"])
    elif "steps" in seq:
        print(f"\nno steps yet: add them with `dripctl steps add {seq['name']!r} --type email ...`")


def show_steps(steps: list[dict[str, Any]], first: str | None = None) -> None:
    first = first or seqfile.first_subject(steps)
    table([(s["index"], seqfile.describe(s, first)) for s in steps], ("#", "step"))


def _seq_rows(sequences: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(s["id"], s["name"], s["status"], s["mailboxId"], s.get("stepCount"),
             *(s["contacts"][k] for k in STATUSES)) for s in sequences]


def run(client: Client, args: argparse.Namespace) -> int:
    command = args.command
    if command == "apply":
        return _apply(client, args)
    if command == "export":
        seq = client.get(f"/api/sequences/{client.sequence_id(args.sequence)}")
        text = seqfile.to_toml(seq)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if command == "steps":
        return _steps(client, args)
    action = args.action
    if action == "list":
        data = client.get("/api/sequences")
        if args.json:
            as_json(data)
        else:
            table(_seq_rows(data["sequences"]), ("id", "name", "status", "mailbox", "steps", *STATUSES))
        return 0
    if action == "create":
        body = {"name": args.name, "mailboxId": args.mailbox, **settings_body(args)}
        result = client.post("/api/sequences", body)
    elif action == "update":
        body = settings_body(args)
        if args.name:
            body["name"] = args.name
        if args.mailbox:
            body["mailboxId"] = args.mailbox
        result = client.patch(f"/api/sequences/{client.sequence_id(args.sequence)}", body)
    elif action == "show":
        result = client.get(f"/api/sequences/{client.sequence_id(args.sequence)}")
    elif action == "complete":
        result = _complete(client, args)
    elif action in ("start", "pause", "resume"):
        result = client.post(f"/api/sequences/{client.sequence_id(args.sequence)}/{action}")
    elif action == "clone":
        result = client.post(f"/api/sequences/{client.sequence_id(args.sequence)}/clone",
                             {"name": args.name} if args.name else None)
    elif action == "contacts":
        return cmd_progress.contacts(client, args)
    elif action == "log":
        return cmd_progress.log(client, args)
    elif action == "cancel":
        sequence_id = client.sequence_id(args.sequence)
        result = client.post(f"/api/sequences/{sequence_id}/contacts/{client.contact_id(args.contact)}/cancel")
        if args.json:
            as_json(result)
        else:
            print(f"cancelled {args.contact} in sequence {sequence_id}")
        return 0
    else:
        raise CtlError(f"unknown action {action}", 2)
    if args.json:
        as_json(result)
    else:
        show_sequence(result)
    return 0


def _complete(client: Client, args: argparse.Namespace) -> Any:
    """Completing cannot be undone: ask on a terminal, refuse without --yes elsewhere."""
    sequence_id = client.sequence_id(args.sequence)
    if not args.yes:
        seq = client.get(f"/api/sequences/{sequence_id}")
        question = (f"complete sequence {seq['name']!r} (id {sequence_id})? Its {seq['contacts'].get('active', 0)}"
                    " active contact(s) are cancelled and it takes no new enrollments; this cannot be undone.")
        if not sys.stdin.isatty():
            raise CtlError(f"{question} Not on a terminal: add --yes to confirm.", 2, "confirmation_required")
        print(question, file=sys.stderr)
        if input("type 'yes' to complete it: ").strip().lower() not in ("y", "yes"):
            raise CtlError("not completed", 1, "cancelled")
    return client.post(f"/api/sequences/{sequence_id}/complete")


def _steps(client: Client, args: argparse.Namespace) -> int:
    sequence_id = client.sequence_id(args.sequence)
    base = f"/api/sequences/{sequence_id}/steps"
    if args.action == "add":
        result = client.post(base, step_body(args))
    elif args.action == "edit":
        result = client.patch(f"{base}/{args.index}", step_body(args))
    else:
        result = client.delete(f"{base}/{args.index}")
    if args.json:
        as_json(result)
    elif args.action == "rm":
        show_steps(result["steps"])
    else:  # the sequence's first subject names what a threaded reply is sent under
        show_steps([result], seqfile.first_subject(client.get(f"/api/sequences/{sequence_id}")["steps"]))
    return 0


def _apply(client: Client, args: argparse.Namespace) -> int:
    desired = seqfile.load(args.file)
    p = seqfile.plan(client, desired)
    if p.empty:
        print(f"sequence {desired['name']!r} is up to date")
        return 0
    for line in p.lines:
        print(line)
    if args.dry_run:
        print("(dry run: nothing changed)")
        return 0
    sequence_id = seqfile.execute(client, p)
    print(f"applied: sequence {desired['name']!r} (id {sequence_id})")
    return 0
