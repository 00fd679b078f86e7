"""Rewrites a message's HTML at send time: tracked links and the open pixel. Pure.

Only ``href`` attributes of ``<a>`` tags with http(s) URLs are rewritten; mailto:, anchors,
and dripd's own URLs (the unsubscribe link) are left alone, so an unsubscribe never counts as
a click. The original URL is the one the recipient would have followed: HTML entities in the
attribute are decoded before signing.
"""

from __future__ import annotations

import html
import re
from typing import Callable

# <a ... href="..."> or href='...' (the quoted forms every editor and template writes).
_ANCHOR_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def trackable(url: str, own_prefix: str) -> bool:
    """http(s) links that are not ours; a URL with spaces or control characters stays as written
    (the redirect refuses such a target, so tracking it would break the link)."""
    lowered = url.lower()
    clean = not any(ord(c) < 0x21 or c == "\x7f" for c in url)
    return clean and lowered.startswith(("http://", "https://")) and not url.startswith(own_prefix)


def rewrite_links(source: str, own_prefix: str, tracked: Callable[[int, str], str]) -> tuple[str, list[str]]:
    """Replace each trackable link with ``tracked(index, original_url)``; returns the new HTML
    and the original URLs in order (index = position in that list)."""
    originals: list[str] = []

    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3)).strip()
        if not trackable(url, own_prefix):
            return match.group(0)
        originals.append(url)
        new = html.escape(tracked(len(originals) - 1, url), quote=True)
        return f"{match.group(1)}{match.group(2)}{new}{match.group(2)}"

    return _ANCHOR_HREF.sub(replace, source), originals


def add_pixel(source: str, pixel_url: str) -> str:
    """The open pixel, last in the body (mail clients that clip long messages keep the top)."""
    tag = (f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
           'style="display:block;width:1px;height:1px;border:0" />')
    ends = list(_BODY_END.finditer(source))
    if ends:
        at = ends[-1].start()
        return source[:at] + tag + source[at:]
    return source + tag
