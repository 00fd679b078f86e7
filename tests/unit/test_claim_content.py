"""``Claim.with_content``: the claim with what was handed over, every other field kept."""

from __future__ import annotations

import dataclasses

from dripd.store import Claim


def test_with_content_keeps_every_other_field_as_replace_does() -> None:
    claim = Claim(7, "<m@example.com>", 3, 1_700_000_000.5, "B")
    content = ("Subject", "<p>html</p>", "text")
    given = claim.with_content(content)
    assert given == dataclasses.replace(claim, content=content)
    assert [getattr(given, f.name) for f in dataclasses.fields(Claim)] == [
        7, "<m@example.com>", 3, 1_700_000_000.5, "B", content]
    assert claim.content is None  # the claim itself is unchanged
