"""The two small HTML pages a recipient sees: confirm unsubscribing, and done. Self-contained."""

from __future__ import annotations

import html

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}"
          "button{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;background:#333;color:#fff;"
          "cursor:pointer}")


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def confirm(sender: str) -> str:
    """GET never unsubscribes (link scanners follow every link): a button POSTs back here."""
    who = html.escape(sender)
    return _page("Unsubscribe", f"<h1>Unsubscribe</h1><p>Stop receiving emails from {who}?</p>"
                                '<form method="post"><input type="hidden" name="confirm" value="yes">'
                                '<button type="submit">Unsubscribe</button></form>')


def done(sender: str) -> str:
    return _page("Unsubscribed", f"<h1>You are unsubscribed</h1><p>{html.escape(sender)} will not email "
                                 "you again.</p>")
