"""Render + build N messages with dripd.render, then the same messages with EmailMessage.

Run from the project root:  .venv/bin/python bench/bench_render.py [N] [--smoke]
Prints both rates (msg/s, one core) and the ratio. Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import shlex
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr
from pathlib import Path
import datetime as dt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dripd.render import (  # noqa: E402
    CompiledTemplate, Envelope, Rendered, build_message, compile_template, make_message_id,
)

SUBJECT = "{{firstName|Hi}}, a quick question about {{company}}'s outbound"
# About 2 KB of content once rendered (HTML ~1.1 KB + generated text ~0.9 KB), a typical cold email.
HTML = """<html><body>
<p>Hi {{firstName|there}},</p>
<p>I noticed {{company}} recently expanded into {{market|new markets}}. Congratulations &mdash; that is
a big step, and in our experience it is exactly when outbound email starts to hurt deliverability:
new domains, new mailboxes, cold lists and a sudden jump in volume.</p>
<ul>
  <li>Per-mailbox daily and hourly caps, with a warm-up ramp for new mailboxes.</li>
  <li>Replies, bounces and unsubscribes stop the sequence automatically.</li>
</ul>
<p>Would it be worth a 15-minute call next week to see whether this fits {{company}}? If the timing
is wrong, just reply &ldquo;later&rdquo; and I will check back in a quarter.</p>
<p>Best,<br>Sam Carter<br>Head of Partnerships, Fareof<br>
<a href="https://fareof.example/?utm_source=seq&amp;utm_campaign=q4&amp;c={{contactId}}">fareof.example</a></p>
<p style="font-size:11px;color:#888">You are receiving this because {{company}} appeared in a public
directory of growing companies. <a href="https://fareof.example/u/{{unsubToken}}">Unsubscribe</a>.</p>
</body></html>
"""

FIRST = ["Alice", "Bob", "Zoë", "Mateo", "Priya", "Jürgen", "Wei", "Olivia", "Noah", ""]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella", "Müller & Söhne GmbH", "Stark Industries"]


def contacts(n: int) -> list[tuple[str, str, dict[str, str]]]:
    out = []
    for i in range(n):
        first = FIRST[i % len(FIRST)]
        fields = {
            "firstName": first,
            "company": COMPANIES[i % len(COMPANIES)],
            "contactId": str(100000 + i),
            "unsubToken": f"{i:08x}deadbeef",
        }
        if i % 3:
            fields["market"] = "Southeast Asia"
        out.append((f"contact{i}@example{i % 97}.com", first, fields))
    return out


def envelope(i: int, to: str, name: str, when: float) -> Envelope:
    return Envelope(
        from_address="sam@fareof.example",
        from_name="Sam Carter",
        to_address=to,
        to_name=name,
        message_id=make_message_id("fareof.example", f"{i:012x}a1b2c3d4"),
        date=when,
        list_unsubscribe=(f"https://fareof.example/u/{i:08x}", "mailto:unsubscribe@fareof.example"),
        one_click=True,
        extra_headers=(("X-Dripd-Enrollment", str(i)),),
    )


def build_with_emailmessage(env: Envelope, r: Rendered) -> bytes:
    msg = EmailMessage(policy=policy.default)
    msg["Date"] = format_datetime(dt.datetime.fromtimestamp(env.date, dt.timezone.utc))
    msg["From"] = formataddr((env.from_name, env.from_address))
    msg["To"] = formataddr((env.to_name, env.to_address)) if env.to_name else env.to_address
    msg["Subject"] = r.subject
    msg["Message-ID"] = env.message_id
    msg["List-Unsubscribe"] = ", ".join(f"<{u}>" for u in env.list_unsubscribe)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for k, v in env.extra_headers:
        msg[k] = v
    msg.set_content(r.text)
    msg.add_alternative(r.html, subtype="html")
    return msg.as_bytes()


# The same note as a user writes it by hand: plain text wrapped at ~70 characters and its HTML
# with short lines, both 7bit on the wire; the shape whose 7bit check was quadratic in the length
# of a line (dripd/render/_mime.py ``_as_7bit``).
WRAPPED_TEXT = """Hi {{firstName|there}},

I noticed {{company}} recently expanded into {{market|new markets}}.
Congratulations - that is a big step, and in our experience it is
exactly when outbound email starts to hurt deliverability: new domains,
new mailboxes, cold lists and a sudden jump in volume.

- Per-mailbox daily and hourly caps, with a warm-up ramp for new
  mailboxes.
- Replies, bounces and unsubscribes stop the sequence automatically.

Would it be worth a 15-minute call next week to see whether this fits
{{company}}? If the timing is wrong, just reply "later" and I will
check back in a quarter.

Best,
Sam Carter
Head of Partnerships, Fareof
https://fareof.example/?c={{contactId}}

Unsubscribe: https://fareof.example/u/{{unsubToken}}
"""
WRAPPED_HTML = "<p>" + WRAPPED_TEXT.strip().replace("\n\n", "</p>\n<p>") + "</p>\n"


def measure(tpl: CompiledTemplate, people: list[tuple[str, str, dict[str, str]]]) -> tuple[float, float, float]:
    """(dripd msg/s, EmailMessage msg/s, average size): the same messages built both ways."""
    n, when = len(people), 1_800_000_000.0
    t0 = time.perf_counter()
    ours = []
    for i, (to, name, fields) in enumerate(people):
        ours.append(build_message(envelope(i, to, name, when), tpl.render(fields)))
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    theirs = []
    for i, (to, name, fields) in enumerate(people):
        theirs.append(build_with_emailmessage(envelope(i, to, name, when), tpl.render(fields)))
    t_theirs = time.perf_counter() - t0

    # Same content both ways (checked on a sample, outside the timed loops).
    parser = BytesParser(policy=policy.default)
    for i in range(0, n, max(1, n // 50)):
        a, b = parser.parsebytes(ours[i]), parser.parsebytes(theirs[i])
        for h in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe"):
            assert str(a[h]).strip() == str(b[h]).strip(), (i, h, a[h], b[h])
        for kind in ("plain", "html"):
            pa, pb = a.get_body((kind,)), b.get_body((kind,))
            assert pa.get_content().replace("\r\n", "\n") == pb.get_content().replace("\r\n", "\n"), (i, kind)
    return n / t_ours, n / t_theirs, sum(map(len, ours)) / n


def main() -> None:
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(numbers[0]) if numbers else (500 if "--smoke" in flags else 20000)
    people = contacts(n)
    r_ours, r_theirs, size = measure(compile_template(SUBJECT, HTML), people)
    w_ours, w_theirs, w_size = measure(compile_template(SUBJECT, WRAPPED_HTML, WRAPPED_TEXT), people)
    print(f"messages: {n} distinct contacts, average size {size:,.0f} bytes (dripd.render)")
    print(f"dripd.render   render+build: {r_ours:10,.0f} msg/s")
    print(f"EmailMessage   render+build: {r_theirs:10,.0f} msg/s")
    print(f"ratio: {r_ours / r_theirs:.1f}x")
    print(f"hand-wrapped (7bit): dripd.render {w_ours:,.0f} msg/s, EmailMessage {w_theirs:,.0f} msg/s")
    print("reproduce: cd", shlex.quote(str(Path.cwd())), "&&", shlex.join([sys.executable, *sys.argv]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common

    table = _common.Table("0. Render + build (one core)")
    table.row(f"{n:,} distinct contacts, ~{size:,.0f} bytes: msg/s", f"{r_ours:,.0f}",
              f"{r_theirs:,.0f} (email.message.EmailMessage)", f"{r_ours / r_theirs:.1f}x",
              "same headers and parts checked on a sample")
    table.row(f"the same contacts, a hand-wrapped plain-text note and its HTML (lines under 76 characters:"
              f" both parts 7bit where the contact's name and company are ASCII), ~{w_size:,.0f} bytes: msg/s",
              f"{w_ours:,.0f}",
              f"{w_theirs:,.0f} (email.message.EmailMessage)", f"{w_ours / w_theirs:.1f}x",
              "same headers and parts checked on a sample")
    table.print()


if __name__ == "__main__":
    main()
