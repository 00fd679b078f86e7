"""``[store]``: SQLite unless a PostgreSQL url is given; the password never inline (refused
naming the key, without echoing it), from a file or libpq's environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dripd.config import parse_config
from dripd.errors import ConfigError
from dripd.plugins import Plugins

PLUGINS = Plugins()
BOX = {"id": "sales", "address": "alice@example.com", "maildir": {"path": "var/outbox"}}


def parse(store: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {"mailboxes": [BOX]}
    if store is not None:
        data["store"] = store
    return parse_config(data, PLUGINS.config_sections(), PLUGINS.transports)


def error_of(store: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(store)
    return str(info.value.message)


def test_no_store_table_is_sqlite() -> None:
    config = parse(None)
    assert config.store.url is None and not config.store.postgresql and config.store.password() is None


@pytest.mark.parametrize("url", ["postgresql://dripd:hunter2@db.example/dripd",
                                 "postgresql://dripd@db.example/dripd?password=hunter2"])
def test_a_password_in_the_url_is_refused_without_echoing_it(url: str) -> None:
    message = error_of({"url": url})
    assert "store.url" in message and "must not carry a password" in message
    assert "hunter2" not in message


def test_other_rules_name_their_key(tmp_path: Path) -> None:
    assert "store.url" in error_of({"url": "mysql://db.example/dripd"})
    assert "store.password_file" in error_of({"url": "postgresql://d@h/db", "password_file": str(tmp_path / "none")})
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    assert "only for a PostgreSQL url" in error_of({"password_file": str(secret)})
    config = parse({"url": "postgresql://d@h/db", "password_file": str(secret)})
    assert config.store.password() == "s3cret"
    assert "s3cret" not in repr(config.store)  # the model keeps the path, never the password
