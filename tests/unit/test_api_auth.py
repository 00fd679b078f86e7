"""Bearer token checks of the TCP listener and the error shape of the API."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dripd.api.auth import TokenSource, accepted, digest
from dripd.api.errors import field_path
from dripd.config import ApiConfig


def test_accepted_only_with_a_known_bearer_token() -> None:
    known = [digest("right"), digest("other")]
    assert accepted(b"Bearer right", known) and accepted(b"bearer  other", known)
    for header in (None, b"", b"Bearer", b"Bearer wrong", b"Basic right", b"right"):
        assert not accepted(header, known)
    assert not accepted(b"Bearer right", [])


def test_token_source_reads_config_and_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("from-file\n")
    hashed = tmp_path / "hashed"
    hashed.write_text("sha256:" + hashlib.sha256(b"hashed-token").hexdigest())
    config = ApiConfig(tokens=["sha256:" + digest("inline")], token_files=[plain, hashed, tmp_path / "missing"])
    digests = TokenSource(lambda: config).digests()
    assert set(digests) == {digest("inline"), digest("from-file"), digest("hashed-token")}


def test_field_paths_read_like_the_body() -> None:
    assert field_path(("body", "steps", 0, "type")) == "steps[0].type"
    assert field_path(("body",)) == "body"
    assert field_path(("query", "skipInvalid")) == "query.skipInvalid"
