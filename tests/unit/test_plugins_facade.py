"""The plugin facade: loading (a misspelled hook is refused at start), building a mailbox's
transport and detectors with typed settings, mapping what escapes a plugin into DripdError, and
handing events to ``dripd_event``. Real plugin objects registered through pluggy, no mocks."""

from __future__ import annotations

import ast
import functools
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from dripd import cli
from dripd.config import EX_CONFIG, MailboxConfig
from dripd.errors import PluginError, TransportError
from dripd.events import Bounce, Event, EventKind
from dripd.hookspecs import (
    Emit,
    MailboxSettings,
    OutgoingMessage,
    PluginContext,
    Registry,
    SendOutcome,
    SendResult,
    hookimpl,
)
from dripd.plugins import Plugins, mailbox_settings
from tests.integration.plugin_harness import MemoryState

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


def context() -> PluginContext:
    return PluginContext(now=lambda: 1_800_000_000.0, state=MemoryState())


class Misspelled:
    """A plugin whose registration hook has a typo: pluggy alone would never call it."""

    __name__ = "misspelled"

    @hookimpl
    def dripd_registr(self, registry: Registry) -> None:
        raise AssertionError("never called")


class WrongArgument:
    __name__ = "wrong_argument"

    @hookimpl
    def dripd_register(self, registy: Registry) -> None:
        raise AssertionError("never called")


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    greeting: str = "hello"


class EchoTransport:
    """Accepts everything; ``fail`` makes every call raise as a buggy plugin would."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.sent: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> SendResult:
        if self.fail:
            raise KeyError("connection-pool slot")
        self.sent.append(message)
        return SendResult(SendOutcome.ACCEPTED, "ok")

    async def lookup(self, message_id: str) -> bool | None:
        if self.fail:
            raise RuntimeError("index corrupt")
        return None

    async def aclose(self) -> None:
        return None


class QuietDetector:
    async def run(self, emit: Emit) -> None:
        return None


class Recording:
    """Registers a transport and a detector that record what the core hands their factories."""

    __name__ = "recording"

    def __init__(self, *, fail: bool = False, factory_fails: bool = False) -> None:
        self.fail = fail
        self.factory_fails = factory_fails
        self.built: list[tuple[str, MailboxSettings, EchoConfig, PluginContext]] = []
        self.transports: list[EchoTransport] = []
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def dripd_register(self, registry: Registry) -> None:
        def transport(mailbox: MailboxSettings, section: EchoConfig, ctx: PluginContext) -> EchoTransport:
            if self.factory_fails:
                raise OSError(13, "Permission denied")
            self.built.append(("transport", mailbox, section, ctx))
            self.transports.append(EchoTransport(self.fail))
            return self.transports[-1]

        def detector(mailbox: MailboxSettings, section: EchoConfig, ctx: PluginContext) -> QuietDetector:
            self.built.append(("detector", mailbox, section, ctx))
            return QuietDetector()

        registry.add_transport("echo", transport, EchoConfig)
        registry.add_detector("watch", detector, EchoConfig)

    @hookimpl
    def dripd_event(self, event: Any) -> None:
        self.events.append(dict(event))


def message() -> OutgoingMessage:
    return OutgoingMessage("m", "<1@example.com>", "s@example.com", "p@example.org", b"Subject: x\r\n\r\nhi\r\n")


# -- loading ------------------------------------------------------------------------------------


def test_a_misspelled_hook_is_refused_at_start_naming_plugin_and_hook() -> None:
    with pytest.raises(PluginError) as caught:
        Plugins([Misspelled()], entry_points=False)
    error = caught.value
    assert (error.plugin, error.hook) == ("misspelled", "dripd_registr")
    assert error.message == "plugin 'misspelled' implements unknown hook 'dripd_registr' (did you mean 'dripd_register'?)"
    assert error.to_dict()["details"] == {"plugin": "misspelled", "hook": "dripd_registr"}


def test_dripd_reports_a_misspelled_hook_and_exits_non_zero(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The installed entry points plus one broken plugin, as if a package with the typo were installed.
    monkeypatch.setattr(cli, "Plugins", functools.partial(Plugins, [Misspelled()]))
    status = cli.main(["--config", str(tmp_path / "dripd.toml"), "--check-config"])
    assert status == EX_CONFIG
    err = capsys.readouterr().err
    assert "dripd: plugin error: plugin 'misspelled' implements unknown hook 'dripd_registr'" in err


def test_a_known_hook_with_arguments_its_spec_lacks_is_a_plugin_error() -> None:
    with pytest.raises(PluginError) as caught:
        Plugins([WrongArgument()], entry_points=False)
    assert caught.value.plugin == "wrong_argument"
    assert "registy" in caught.value.message


class Crashing:
    __name__ = "crashing"

    @hookimpl
    def dripd_register(self, registry: Registry) -> None:
        raise LookupError("no such loft")


def test_a_registration_hook_that_raises_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="a plugin's dripd_register failed: LookupError: no such loft") as caught:
        Plugins([Crashing()], entry_points=False)
    assert caught.value.hook == "dripd_register"


def test_the_same_plugin_object_given_twice_is_a_plugin_error() -> None:
    plugin = Recording()
    with pytest.raises(PluginError, match="cannot load the plugins: ValueError: Plugin already registered"):
        Plugins([plugin, plugin], entry_points=False)


def test_a_name_registered_twice_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="transport 'echo' registered twice"):
        Plugins([Recording(), Recording()], entry_points=False)


def test_the_built_in_plugins_load_and_pass_check_pending() -> None:
    plugins = Plugins()
    assert {"maildir", "smtp"} <= set(plugins.transports) and "imap" in plugins.detectors
    assert {"maildir", "smtp", "imap"} <= set(plugins.config_sections())


# -- building a mailbox's transport and detectors -----------------------------------------------


def mailbox(**extra: Any) -> MailboxConfig:
    return MailboxConfig.model_validate({
        "id": "sales", "address": "Sales@Example.com", "name": "Sales", "domain": "mx.example.com",
        "timezone": "Europe/Berlin", "transport": "echo", **extra})


def test_mailbox_settings_are_built_from_the_mailbox_config() -> None:
    settings = mailbox_settings(mailbox(echo={"greeting": "hi"}, imap={"host": "imap.example.com"}))
    assert settings == MailboxSettings(
        id="sales", address="sales@example.com", name="Sales", message_id_domain="mx.example.com",
        timezone="Europe/Berlin", transport="echo",
        tables={"echo": {"greeting": "hi"}, "imap": {"host": "imap.example.com"}})
    assert settings.table("imap") == {"host": "imap.example.com"} and settings.table("smtp") is None
    with pytest.raises(TypeError):
        settings.tables["imap"]["host"] = "elsewhere"  # type: ignore[index]
    assert hash(settings) == hash(mailbox_settings(mailbox(echo={"greeting": "hi"})))
    assert MailboxSettings("m", "a@b.example").message_id_domain == "b.example"


async def test_build_transport_hands_the_factory_typed_settings_and_its_parsed_table() -> None:
    recording = Recording()
    plugins = Plugins([recording], entry_points=False)
    ctx = context()
    transport = plugins.build_transport(mailbox(echo={"greeting": "hi"}), ctx)
    [(what, settings, section, given)] = recording.built
    assert what == "transport" and settings.id == "sales" and settings.address == "sales@example.com"
    assert section == EchoConfig(greeting="hi") and given is ctx
    assert await transport.send(message()) == SendResult(SendOutcome.ACCEPTED, "ok")
    assert recording.transports[0].sent == [message()]
    # Without its table the plugin gets its model's defaults.
    plugins.build_transport(mailbox(), ctx)
    assert recording.built[-1][2] == EchoConfig()


async def test_what_escapes_a_transport_arrives_as_a_transport_error_naming_it() -> None:
    plugins = Plugins([Recording(fail=True)], entry_points=False)
    transport = plugins.build_transport(mailbox(), context())
    with pytest.raises(TransportError) as caught:
        await transport.send(message())
    assert caught.value.message == "mailbox sales: transport 'echo': send failed: KeyError: 'connection-pool slot'"
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(TransportError, match="lookup failed: RuntimeError: index corrupt"):
        await transport.lookup("<1@example.com>")


def test_a_transport_that_cannot_start_is_a_transport_error() -> None:
    plugins = Plugins([Recording(factory_fails=True)], entry_points=False)
    with pytest.raises(TransportError, match=r"mailbox sales: transport 'echo' cannot start: PermissionError"):
        plugins.build_transport(mailbox(), context())


def test_an_unknown_transport_is_a_plugin_error() -> None:
    plugins = Plugins([Recording()], entry_points=False)
    with pytest.raises(PluginError, match=r"no transport plugin 'pigeon' \(known: echo\)"):
        plugins.build_transport(mailbox(transport="pigeon"), context())


def test_build_detectors_builds_those_whose_table_the_mailbox_has() -> None:
    recording = Recording()
    plugins = Plugins([recording], entry_points=False)
    asked: list[str] = []

    def context_for(name: str) -> PluginContext:
        asked.append(name)
        return context()

    assert plugins.build_detectors(mailbox(), context_for) == []
    detectors = plugins.build_detectors(mailbox(watch={"greeting": "hey"}), context_for)
    assert len(detectors) == 1 and isinstance(detectors[0], QuietDetector)
    assert asked == ["watch"]
    assert recording.built[-1][0] == "detector" and recording.built[-1][2] == EchoConfig(greeting="hey")


# -- events -------------------------------------------------------------------------------------


def test_notify_hands_every_kind_as_its_json_shape() -> None:
    recording = Recording()
    plugins = Plugins([recording], entry_points=False)
    plugins.notify(Event(EventKind.SENT, 10.0, mailbox_id="sales", sequence_id=3, step_id=7))
    plugins.notify(Event(EventKind.BOUNCED, 11.0, Bounce("hard", status="5.1.1"), mailbox_id="sales", contact_id=9))
    assert recording.events == [
        {"kind": "sent", "at": 10.0, "mailbox_id": "sales", "sequence_id": 3, "step_id": 7, "data": {}},
        {"kind": "bounced", "at": 11.0, "mailbox_id": "sales", "contact_id": 9,
         "data": {"bounce_class": "hard", "status": "5.1.1"}},
    ]


class Broken:
    __name__ = "broken"

    @hookimpl
    def dripd_event(self, event: Any) -> None:
        raise ValueError("observer bug")


def test_a_failing_event_hook_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    plugins = Plugins([Broken()], entry_points=False)
    with caplog.at_level(logging.ERROR, logger="dripd.plugins"):
        plugins.notify(Event(EventKind.COMPLETED, 1.0, enrollment_id=4))
    assert "a plugin's dripd_event hook failed for completed" in caplog.text


# -- the built-in plugins' imports --------------------------------------------------------------


def imported_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (PLUGINS_DIR / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_the_smtp_and_imap_plugins_do_not_import_each_other() -> None:
    assert "dripd_imap" not in imported_packages("dripd_smtp")
    assert "dripd_smtp" not in imported_packages("dripd_imap")
    assert not {"dripd_imap", "dripd_smtp"} & imported_packages("dripd_mailconn")
