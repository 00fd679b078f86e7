"""How dripctl runs a command: usage errors, API errors (text, or JSON under ``--json``, which
is accepted after any subcommand too), a command given without its action, a closed pipe."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable, NoReturn

from dripd.ctl.client import CtlError

EX_USAGE = 2  # argparse's own status for a bad command line
EX_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE (128 + 13)

# API field names a user of dripctl never typed, with the flag that sets each; the API names
# stay in errors about sequence files (`apply`), whose keys are the API's.
FLAG_OF = {
    "waitDays": "--days", "waitHours": "--hours", "waitMinutes": "--minutes", "delayMs": "--ms",
    "sendWindowStartHour": "--window", "sendWindowEndHour": "--window", "mailboxId": "--mailbox",
    "weekdaysOnly": "--weekdays-only", "autoPauseOnReply": "--auto-pause-on-reply",
    "autoComplete": "--auto-complete", "trackOpens": "--track-opens", "trackClicks": "--track-clicks",
    "listUnsubscribe": "--list-unsubscribe", "windowZone": "--window-zone", "blackoutDates": "--blackout",
    "contactEmail": "--contact", "contactIds": "--contact-id", "listId": "--list", "stepIndex": "--step",
    "mergeFields": "--field", "firstName": "--first-name", "lastName": "--last-name",
}
# Plain words are names only at the start of "field: rule" (the subject is also a word in rules).
PLAIN_FIELDS = {"subject": "--subject", "body": "--body", "text": "--text", "timezone": "--timezone",
                "condition": "--condition", "type": "--type", "holidays": "--holidays", "company": "--company"}
_CAMEL = re.compile(r"\b(" + "|".join(FLAG_OF) + r")\b")
FILE_COMMANDS = ("apply", "export")


def in_flag_names(message: str) -> str:
    """``waitDays: must be > 0`` as ``--days: must be > 0``."""
    field, sep, rule = message.partition(": ")
    if sep and field in PLAIN_FIELDS:
        message = f"{PLAIN_FIELDS[field]}: {rule}"
    return _CAMEL.sub(lambda m: FLAG_OF[m.group(1)], message)


class CtlParser(argparse.ArgumentParser):
    """Usage errors go through the same path as every other error (so ``--json`` shapes them)."""

    def error(self, message: str) -> NoReturn:
        raise CtlError(f"{_command(self)}{message} (see {self.prog} --help)", EX_USAGE, code="usage")


def _command(parser: argparse.ArgumentParser) -> str:
    """``sequences add: `` for a subcommand's parser ("dripctl: " already starts the line)."""
    words = parser.prog.split(" ", 1)
    return f"{words[1]}: " if len(words) > 1 else ""


def actions_of(parser: argparse.ArgumentParser) -> Any:
    """The action subparsers of a command; given without one, the command lists its actions."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    parser.set_defaults(needs_action=parser)
    return sub


def require_action(args: argparse.Namespace) -> None:
    parser = getattr(args, "needs_action", None)
    if parser is None or getattr(args, "action", None) is not None:
        return
    lines = []
    for group in parser._subparsers._group_actions if parser._subparsers else []:
        for choice in getattr(group, "_choices_actions", []):
            lines.append(f"  {choice.dest:<10} {choice.help or ''}")
    raise CtlError(f"{_command(parser)}give an action:\n" + "\n".join(lines), EX_USAGE, code="usage")


def finish_parser(parser: argparse.ArgumentParser) -> None:
    """``--json`` after any subcommand too; SUPPRESS keeps a later parser from resetting the
    value the top level already parsed."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                                 help="print the API's JSON instead of tables, and errors as JSON")
                finish_parser(sub)


def _report(exc: CtlError, json_errors: bool) -> int:
    if json_errors:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message, "exitStatus": exc.status}},
                         ensure_ascii=False), file=sys.stderr)
    else:
        print(f"dripctl: {exc.message}", file=sys.stderr)
    return exc.status


def run_guarded(body: Callable[[], int], json_errors: bool) -> int:
    try:
        status = body()
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at interpreter exit
        return status
    except CtlError as exc:
        return _report(exc, json_errors)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`dripctl sequences list | head -3`): that is how the output was
        # meant to end. Point stdout at /dev/null so the final flush does not raise again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass  # stdout is not a file (tests capture it): nothing left to flush
        return EX_PIPE
