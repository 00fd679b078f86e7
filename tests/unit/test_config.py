"""Config: every error names the key path and the rule; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dripd.config import load_config, parse_config
from dripd.errors import ConfigError
from dripd.plugins import Plugins

PLUGINS = Plugins()
REPO = Path(__file__).resolve().parents[2]


def parse(data: dict[str, Any]):
    return parse_config(data, PLUGINS.config_sections(), PLUGINS.transports)


def box(**overrides: Any) -> dict[str, Any]:
    mailbox: dict[str, Any] = {"id": "sales", "address": "alice@example.com", "maildir": {"path": "var/outbox"}}
    mailbox.update(overrides)
    return mailbox


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value.message


def test_the_shipped_example_is_valid() -> None:
    config = load_config(REPO / "etc" / "dripd.toml", PLUGINS.config_sections(), PLUGINS.transports)
    mailbox = config.mailboxes[0]
    assert (mailbox.id, mailbox.daily_cap, mailbox.hourly_cap, mailbox.transport) == ("sales", 50, 10, "maildir")
    assert mailbox.warmup == [(7, 10), (14, 25)]
    assert config.daemon.database == Path("var/dripd.sqlite3")


def test_defaults() -> None:
    config = parse({"mailboxes": [box()]})
    assert config.daemon.socket == Path("var/dripd.sock")
    assert config.mailboxes[0].burst == 1 and config.mailboxes[0].timezone == "UTC"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"mailboxes": [box(hourly_cap=0)]}, "mailboxes[0].hourly_cap: must be a positive integer"),
        ({"mailboxes": [box(hourly_cap="ten")]}, "mailboxes[0].hourly_cap: must be an integer"),
        ({"mailboxes": [box(), box(id="b", daily_cap=-1)]}, "mailboxes[1].daily_cap: must be a positive integer"),
        ({"mailboxes": [box(timezone="Mars/Olympus")]}, "mailboxes[0].timezone: must be an IANA time zone name"),
        ({"mailboxes": [box(colour="red")]}, "mailboxes[0].colour: unknown key"),
        ({"mailboxes": [box()], "deamon": {}}, "deamon: unknown key"),
        ({"mailboxes": [box()], "daemon": {"log_level": "loud"}}, "daemon.log_level:"),
        ({"mailboxes": [box(address="not-an-address")]}, "mailboxes[0].address: must be a valid email address"),
        ({"mailboxes": [box(transport="pigeon")]}, "mailboxes[0].transport: unknown transport (known: "),
        ({"mailboxes": [box(maildir={})]}, "mailboxes[0].maildir.path: is required"),
        ({"mailboxes": [{"id": "x", "address": "a@example.com"}]}, "mailboxes[0].maildir.path: is required"),
        ({"mailboxes": [box(maildir={"path": "x", "mode": 1})]}, "mailboxes[0].maildir.mode: unknown key"),
        ({"mailboxes": [box(warmup=[[14, 25], [7, 10]])]}, "mailboxes[0].warmup: stage days must be positive and strictly increasing"),
        ({"mailboxes": []}, "mailboxes: "),
        ({}, "mailboxes: is required"),
        ({"mailboxes": [box(), box()]}, "duplicate mailbox id 'sales'"),
        ({"mailboxes": [box()], "api": {"listen": "127.0.0.1:8025"}}, "a TCP listener needs tokens"),
        ({"mailboxes": [box()], "api": {"tokens": ["plain"]}}, "api.tokens: each token must be 'sha256:'"),
    ],
)
def test_errors_name_the_key_and_the_rule(data: dict[str, Any], expected: str) -> None:
    assert expected in error_of(data)


def test_toml_syntax_error_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[daemon\nstate_dir = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, PLUGINS.config_sections(), PLUGINS.transports)
    assert "invalid TOML" in info.value.message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", PLUGINS.config_sections(), PLUGINS.transports)
    assert "cannot read" in info.value.message
