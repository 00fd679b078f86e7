"""Links whose URL comes from contact data. Pure.

A merge field that starts an ``href``/``src`` value decides the link's scheme, so contact data
(a CSV import, an API caller) could turn ``<a href="{{website}}">`` into a ``javascript:`` or
``data:`` link. Such a value is kept only when it is an http(s) or mailto URL; anything else
becomes ``#`` (the link stays, inert). A field later in the value (``https://x/?id={{id}}``)
cannot change the scheme the author wrote, so it is left alone.
"""

from __future__ import annotations

import html
import re

# The end of an HTML attribute that holds a URL, up to where its value starts.
_URL_ATTRIBUTE_START = re.compile(
    r"""\b(?:href|src|action|formaction|background|poster|cite|xlink:href)\s*=\s*["']?\s*$""", re.IGNORECASE)
# Browsers ignore these inside a scheme ("java\tscript:"), so the check must too.
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
SAFE_SCHEMES = ("http://", "https://", "mailto:")
INERT_URL = "#"


def starts_url_attribute(html_before: str) -> bool:
    """Whether a merge tag right after ``html_before`` begins a URL attribute's value."""
    # Only the tail matters; a bounded look keeps compiling a long template linear.
    return _URL_ATTRIBUTE_START.search(html_before[-200:]) is not None


def safe_url_value(escaped_value: str) -> str:
    """An (already HTML-escaped) merge value that begins a URL: itself when an http(s) or mailto
    URL without white space inside, else the inert ``#``."""
    raw = html.unescape(escaped_value).strip()
    if any(c.isspace() for c in raw):
        # A real URL has no raw white space; in an unquoted attribute (src={{pic}}) it would
        # start a new attribute ("x onerror=...").
        return INERT_URL
    scheme_part = _IGNORED_IN_SCHEME.sub("", raw).lower()
    return escaped_value.strip() if scheme_part.startswith(SAFE_SCHEMES) else INERT_URL
