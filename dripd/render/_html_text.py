"""HTML -> plain text, once per template (so clarity beats speed here). Pure."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 ul ol dl table blockquote pre hr section article header footer "
    "nav aside main form fieldset address figure figcaption center".split()
)
_LINE_TAGS = frozenset("tr dt dd caption".split())
_SKIP_TAGS = frozenset("script style head title template".split())
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML whitespace; NBSP is content and survives


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped in data and attrs
        self.out: list[str] = []
        self._skip = 0
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []  # (href, len(out) at <a>)

    def parse_html_declaration(self, i: int) -> int:
        # Python 3.11's parser raises AssertionError on a malformed "<![" section ("<![0", a
        # user's typo): read it as a browser does, a bogus comment up to the next ">" (or the
        # end), dropped from the text, instead of failing the whole template.
        try:
            return super().parse_html_declaration(i)
        except AssertionError:
            end = self.rawdata.find(">", i + 2)
            return len(self.rawdata) if end < 0 else end + 1

    # Line-break bookkeeping works on the tail of the output, so nested blocks never stack
    # more than one blank line.
    def _tail(self) -> str:
        return "".join(self.out[-3:])

    def _break(self, n: int) -> None:
        tail = self._tail().rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n")) if self.out else n
        if have < n:
            self.out.append("\n" * (n - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif self._skip:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break(2)
            if tag == "pre":
                self._pre += 1
        elif tag == "li":
            self._break(1)
            self.out.append("- ")
        elif tag in _LINE_TAGS:
            self._break(1)
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.out)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and <hr/>: same as the start tag; a self-closed <a/> or <p/> has no end to wait for.
        if tag in ("br", "hr"):
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif self._skip:
            return
        elif tag in _BLOCK_TAGS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._break(2)
        elif tag in _LINE_TAGS or tag == "li":
            self._break(1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            if not href:
                return
            href = href.strip()
            label = "".join(self.out[start:]).strip()
            bare = href[7:] if href.lower().startswith("mailto:") else href
            # In-page anchors and javascript: links mean nothing in plain text; a link whose
            # label already is the URL need not repeat it.
            if href.startswith("#") or href.lower().startswith("javascript:") or label in (href, bare):
                return
            self.out.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self.out.append(data)
            return
        data = _HTML_SPACE.sub(" ", data)
        tail = self._tail()
        # Collapse like a browser: no leading space on a line, no double space across nodes.
        if data.startswith(" ") and (not tail or tail.endswith((" ", "\n"))):
            data = data[1:]
        if data:
            self.out.append(data)


def html_to_text(source: str) -> str:
    """A readable plain-text rendering of an HTML body (merge tags pass through untouched).

    Paragraphs and headings become blank-line separated blocks, ``<br>``, ``<li>`` and table rows
    line breaks, links ``label (url)``; scripts, styles and ``<head>`` are dropped.
    """
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.out).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text else ""
