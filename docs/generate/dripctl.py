"""docs/dripctl.md from dripctl's argparse parser."""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from typing import Iterator

from docs.generate.common import GENERATED, md_table


_ENV = ("DRIPD_SOCKET", "DRIPD_URL", "DRIPD_TOKEN", "COLUMNS")


@contextmanager
def _neutral_environment() -> Iterator[None]:
    """dripctl's defaults come from the environment: document the ones with none of it set."""
    saved = {name: os.environ.pop(name) for name in _ENV if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(prog=parser.prog, width=96)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, list[str], str, argparse.ArgumentParser]]:
    """(name, aliases, help, parser) of each subcommand, in declaration order."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            by_parser: dict[int, list[str]] = {}
            for name, sub in action.choices.items():
                by_parser.setdefault(id(sub), []).append(name)
            for names in by_parser.values():
                sub = action.choices[names[0]]
                out.append((names[0], names[1:], helps.get(names[0], ""), sub))
    return out


# What a positional or option without help of its own names (dripctl resolves names to ids).
_ARG_HINTS = {
    "sequence": "sequence id or name",
    "contact": "contact id or email",
    "list": "list id or name",
    "mailbox": "mailbox id from the config",
    "index": "step index, as `sequences show` lists it",
    "email": "email address",
    "emails": "email addresses",
}


def _metavar(action: argparse.Action, fallback: str) -> str:
    """How usage names an argument's value: its metavar (a tuple when it takes several), else ``fallback``."""
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    return action.metavar or fallback


def _argument_rows(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                name += " " + _metavar(action, action.dest.upper())
        else:
            name = _metavar(action, action.dest)
            if action.nargs in ("*", "+"):
                name += " ..."
        text = action.help or ("" if action.option_strings and action.dest != "mailbox"
                                else _ARG_HINTS.get(action.dest, ""))
        if text and "%(" in text:
            text = text % {"default": action.default, "prog": parser.prog}
        notes = []
        if action.required and action.option_strings:
            notes.append("required")
        if action.choices:
            notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
        if isinstance(action, argparse._AppendAction):
            notes.append("repeatable")
        if isinstance(action, argparse.BooleanOptionalAction):
            name = name.replace(", ", " / ")
            if not text:
                head, *rest = action.dest.split("_")
                text = f"turn the sequence's `{head + ''.join(w.title() for w in rest)}` on or off (kept when neither is given)"
        if action.type is int:
            notes.append("integer")
        elif action.type is float:
            notes.append("number")
        if action.default not in (None, False, "", argparse.SUPPRESS) and not isinstance(action, argparse._VersionAction):
            notes.append(f"default `{action.default}`")
        rows.append((f"`{name}`", text or "—", "; ".join(notes) or "—"))
    for group in parser._mutually_exclusive_groups:
        names = [a.option_strings[0] if a.option_strings else a.dest for a in group._group_actions]
        rows.append(("(group)", f"exactly one of {', '.join(f'`{n}`' for n in names)}" if group.required
                     else f"at most one of {', '.join(f'`{n}`' for n in names)}", "—"))
    return rows


def _command_lines(parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = ["```", _usage(parser), "```", ""]
    rows = _argument_rows(parser)
    if rows:
        lines += md_table(("argument", "help", "notes"), rows) + [""]
    for name, aliases, help_text, sub in _subparsers(parser):
        title = sub.prog + (f" (alias: {', '.join(aliases)})" if aliases else "")
        lines += [f"{'#' * level} {title}", ""]
        if help_text:
            text = help_text[:1].upper() + help_text[1:]
            lines += [text if text.endswith((".", "...")) else text + ".", ""]
        lines += _command_lines(sub, level + 1)
    return lines


def render_dripctl() -> str:
    with _neutral_environment():
        from dripd.ctl.main import DEFAULT_SOCKET, _parser

        parser = _parser()
        lines = [
            "# dripctl reference",
            "",
            GENERATED.format(kind="dripctl"),
            "",
            f"{parser.description} `dripctl` is a thin client of the [control API](api.md): it talks to",
            f"the Unix socket (`-s`, else `$DRIPD_SOCKET`, else `{DEFAULT_SOCKET}`) or, with `--url`, to",
            "the TCP listener with a Bearer token (`--token` or `$DRIPD_TOKEN`). Sequences, lists and",
            "contacts can be named by id or by name/email. `--json` prints the API's JSON instead of",
            "tables.",
            "",
            "Exit status: 0 on success; 2 for a usage error; otherwise the failure's status (77 when",
            "the control socket refuses you for its permissions).",
            "",
            "Commands:",
            "",
        ]
        lines += [f"- `{name}`" + (f" ({', '.join(aliases)})" if aliases else "") + f": {help_text}"
                  for name, aliases, help_text, _ in _subparsers(parser)]
        lines += ["", "## Global options", ""]
        lines += _command_lines(parser, 2)
    return "\n".join(lines).rstrip("\n") + "\n"
