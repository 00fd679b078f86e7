"""dripctl stats SEQ: the per-step funnel as a terminal bar chart, or a self-contained HTML page."""

from __future__ import annotations

import argparse
import html
from pathlib import Path
from typing import Any

from dripd.ctl.client import Client
from dripd.ctl.cmd_variants import variant_html, variant_lines
from dripd.ctl.output import as_json

STAGES = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed")
BAR_WIDTH = 30
# Deepest stage first: each cell of a step's bar shows how far that share of its sends got.
SHADES = (("replied", "█"), ("clicked", "▓"), ("opened", "▒"), ("delivered", "░"), ("sent", "·"))


def _cells(count: int, scale: int) -> int:
    return round(count * BAR_WIDTH / scale) if scale else 0


def funnel_bar(step: dict[str, Any], scale: int) -> str:
    """One row's bar: its length is the step's sends (against the busiest step), its shading the
    share that went on to be delivered, opened, clicked or replied."""
    length = _cells(step["sent"], scale)
    bounds, deepest = [], 0
    for stage, shade in SHADES:
        deepest = max(deepest, _cells(step[stage], scale))
        bounds.append((min(deepest, length), shade))
    out = ""
    for upto, shade in bounds:
        out += shade * max(0, upto - len(out))
    return out + "x" * _cells(step["bounced"], scale)


def subject_of(step: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    """A threaded follow-up has no subject of its own: it goes out as "Re: <first subject>"."""
    text = " ".join(step["subject"].split())
    if text:
        return text
    first = next((" ".join(s["subject"].split()) for s in sorted(steps, key=lambda s: (s["stepIndex"] is None,
                                                                                         s["stepIndex"] or 0))
                  if s["subject"].strip()), "")
    return f"Re: {first}" if first else "(thread reply)"


def _subject(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def render_terminal(data: dict[str, Any]) -> str:
    steps = data["steps"]
    scale = max((s["sent"] + s["bounced"] for s in steps), default=0)
    head = f'sequence {data["sequenceId"]} "{data["name"]}" ({data["status"]}): funnel per email step'
    columns = ("STEP", "SUBJECT", "SENT", "DELIV", "OPEN", "CLICK", "REPLY", "BOUNCE", "UNSUB")
    rows = [[str(s["stepIndex"] if s["stepIndex"] is not None else "del"), _subject(subject_of(s, steps)),
             *(str(s[k]) for k in STAGES)] for s in steps]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [head, line(list(columns)) + "  FUNNEL"]
    out += [line(row) + "  " + funnel_bar(step, scale) for row, step in zip(rows, steps)]
    if not steps:
        out.append("(no email steps)")
    total = data["total"]
    rates = total["rates"]
    out.append("")
    out.append("total: " + ", ".join(f"{k} {total[k]}" + (f" ({rates[k]:.1%})" if k != "sent" and rates.get(k) is not None
                                                               else "") for k in STAGES))
    mailboxes = data.get("mailboxes", [])
    if len(mailboxes) > 1:  # a rotating sequence: where its sends went
        out.append("by mailbox: " + ", ".join(f'{m["mailboxId"]} sent {m["sent"]} replied {m["replied"]} '
                                              f'bounced {m["bounced"]}' for m in mailboxes))
    out += variant_lines(steps)
    if total["flaggedOpens"] or total["flaggedClicks"]:
        out.append(f"not counted: {total['flaggedOpens']} machine-only opens, {total['flaggedClicks']} scanner-only clicks")
    out.append("bar: █ replied  ▓ clicked  ▒ opened  ░ delivered  · sent  x bounced"
               f"  (delivered = no bounce within {data['bounceWindowHours']:g}h, or a DSN)")
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.05rem;margin:1.6rem 0 .4rem}table{border-collapse:collapse;width:100%}
td{padding:.15rem .4rem;font-size:.9rem;white-space:nowrap}td.bar{width:60%}
.b{height:.9rem;background:#3b6ea5;border-radius:2px}.n{text-align:right;font-variant-numeric:tabular-nums}
.s-bounced .b{background:#b5463a}.s-unsubscribed .b{background:#8a8a8a}.note{color:#666;font-size:.85rem}"""


def render_html(data: dict[str, Any]) -> str:
    """One page, no scripts, no external resources: it opens anywhere, offline."""
    e = html.escape
    sections = []
    for step in [*data["steps"], {"stepIndex": None, "subject": "All steps", "total": True, **data["total"]}]:
        scale = max(step["sent"] + step.get("refused", 0), 1)
        rows = []
        for stage in STAGES:
            count = step[stage]
            rate = step["rates"].get(stage) if stage != "sent" else None
            width = min(100.0, 100.0 * count / scale)
            rows.append(f'<tr class="s-{stage}"><td>{stage}</td><td class="n">{count}</td>'
                        f'<td class="n">{"" if rate is None else f"{rate:.1%}"}</td>'
                        f'<td class="bar"><div class="b" style="width:{width:.1f}%"></div></td></tr>')
        title = ("All steps" if step.get("total") else
                 f'Step {step["stepIndex"] if step["stepIndex"] is not None else "(deleted)"}: '
                 f'{subject_of(step, data["steps"])}')
        flagged = (f'<p class="note">not counted: {step["flaggedOpens"]} machine-only opens, '
                   f'{step["flaggedClicks"]} scanner-only clicks</p>') if step["flaggedOpens"] or step["flaggedClicks"] else ""
        sections.append(f"<h2>{e(title)}</h2><table>{''.join(rows)}</table>{flagged}{variant_html(step)}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(data["name"])}: funnel</title>'
            f"<style>{_CSS}</style></head><body><h1>{e(data['name'])} <small>(sequence {data['sequenceId']}, "
            f"{e(data['status'])})</small></h1><p class=\"note\">Generated {e(str(data['generatedAt']))}. Rates are "
            f"over sent messages (bounced: over sent + refused). Delivered: no bounce within "
            f"{data['bounceWindowHours']:g} h, or a positive DSN.</p>{''.join(sections)}</body></html>\n")


def stats(client: Client, args: argparse.Namespace) -> int:
    sequence_id = client.sequence_id(args.sequence)
    data = client.get(f"/api/sequences/{sequence_id}/stats")
    if args.html:
        Path(args.html).write_text(render_html(data), encoding="utf-8")
        print(f"wrote {args.html}")
        return 0
    if args.json:
        as_json(data)
        return 0
    print(render_terminal(data))
    return 0
