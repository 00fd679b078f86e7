"""dripctl's A/B variant flags for ``steps add/edit`` and the variant lines of ``dripctl stats``.

A variant is named by any of its flags, in the order first named: ``--variant B:3`` (weight 3),
``--variant-subject B='Quick question'``, ``--variant-body B='<p>...</p>'``, ``--variant-text``.
"""

from __future__ import annotations

import argparse
import html
from typing import Any

from dripd.ctl.client import CtlError


def add_variant_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", action="append", default=[], metavar="NAME[:WEIGHT]",
                        help="an A/B variant of an email step (repeat; weight 1 when left out)")
    for part, what in (("subject", "subject"), ("body", "HTML body"), ("text", "plain-text part")):
        parser.add_argument(f"--variant-{part}", action="append", default=[], metavar="NAME=TEXT",
                            help=f"the variant's own {what} (the step's is used when left out)")
    parser.add_argument("--auto-winner", metavar="N[:METRIC]",
                        help="after N sends per variant the best on METRIC (replied, opened, clicked;"
                             " replied when left out) takes the remaining traffic")
    parser.add_argument("--no-variants", action="store_true", help="remove the step's variants")


def variant_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The step body's ``variants`` and ``autoWinner`` from the flags (empty when none given)."""
    variants: dict[str, dict[str, Any]] = {}
    for spec in args.variant:
        name, _, weight = spec.partition(":")
        entry = variants.setdefault(name, {"name": name})
        if weight:
            try:
                entry["weight"] = int(weight)
            except ValueError:
                raise CtlError(f"--variant {spec}: the weight must be a whole number") from None
    for part in ("subject", "body", "text"):
        for spec in getattr(args, f"variant_{part}"):
            name, sep, value = spec.partition("=")
            if not sep:
                raise CtlError(f"--variant-{part} {spec}: expected NAME=TEXT")
            variants.setdefault(name, {"name": name})[part] = value
    out: dict[str, Any] = {}
    if args.no_variants:
        if variants:
            raise CtlError("--no-variants cannot be combined with variant flags")
        out["variants"] = []
    elif variants:
        out["variants"] = list(variants.values())
    if args.auto_winner:
        after, _, metric = args.auto_winner.partition(":")
        try:
            out["autoWinner"] = {"after": int(after), **({"metric": metric} if metric else {})}
        except ValueError:
            raise CtlError(f"--auto-winner {args.auto_winner}: N must be a whole number of sends") from None
    return out


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def variant_lines(steps: list[dict[str, Any]]) -> list[str]:
    """Per step with variants: each variant's funnel and reply-rate interval, how sure the
    difference is, and the winner."""
    out: list[str] = []
    for step in steps:
        ab = step.get("abTest")
        if not ab:
            continue
        where = step["stepIndex"] if step["stepIndex"] is not None else "del"
        metric = ab["metric"]
        rule = ab["autoWinner"]
        head = f"step {where} A/B on {metric}"
        if rule:
            head += f" (auto-winner after {rule['after']} sends per variant: " + (
                f"{ab['winner']} won)" if ab["winner"] else "no winner yet)")
        out.append(head)
        for v in ab["variants"]:
            interval = v["intervals"][metric]
            shown = "n/a" if interval is None else f"{interval[0]:.1%}-{interval[1]:.1%}"
            out.append(f"  {v['name']}{' (deleted)' if v['deleted'] else ''}: sent {v['sent']}, opened {v['opened']},"
                       f" clicked {v['clicked']}, replied {v['replied']}, bounced {v['bounced']};"
                       f" {metric} {_pct(v['rates'][metric])} (95 % CI {shown})")
        out += [f"  {c['summary']}" for c in ab["comparisons"][metric]]
    return out


def variant_html(step: dict[str, Any]) -> str:
    """A step's A/B block for ``dripctl stats --html``: one row per variant and the comparisons
    on the step's metric (every value escaped)."""
    ab = step.get("abTest")
    if not ab:
        return ""
    e = html.escape
    metric = ab["metric"]
    rows = []
    for v in ab["variants"]:
        interval = v["intervals"][metric]
        shown = "" if interval is None else f"{interval[0]:.1%} to {interval[1]:.1%}"
        cells = [e(v["name"]) + (" (deleted)" if v["deleted"] else ""),
                 *(str(v[k]) for k in ("sent", "opened", "clicked", "replied", "bounced")),
                 e(_pct(v["rates"][metric])), e(shown)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{e(h)}</th>" for h in ("variant", "sent", "opened", "clicked", "replied", "bounced",
                                                  f"{metric} rate", "95 % CI"))
    notes = "".join(f'<p class="note">{e(c["summary"])}</p>' for c in ab["comparisons"][metric])
    if ab["winner"]:
        notes += f'<p class="note">auto-winner: {e(ab["winner"])}</p>'
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{notes}"
