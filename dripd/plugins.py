"""A typed facade over pluggy's PluginManager: nothing else in dripd touches ``pm.hook``.

It is also the edge between the core and plugin code: what a plugin gets is typed
(``MailboxSettings``, its own parsed table, a ``PluginContext``), and what escapes a plugin is a
``DripdError`` (``PluginError`` at start, ``TransportError`` from a transport) naming the plugin.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import pluggy
from pydantic import BaseModel

from dripd import hookspecs
from dripd.config import Config, MailboxConfig
from dripd.errors import DripdError, PluginError, TransportError
from dripd.events import Event
from dripd.parallelism import LaneParallelism, SendsInParallel, lane_parallelism
from dripd.hookspecs import (
    AddressVerifier,
    Detector,
    MailboxSettings,
    OutgoingMessage,
    PluginContext,
    SendResult,
    Transport,
)

log = logging.getLogger("dripd.plugins")

# A factory as stored: its section type is checked when it registers (hookspecs.Registry), so
# here it only has to take what ``section`` parsed with the model it gave.
_Factory = Callable[[MailboxSettings, Any, PluginContext], Any]


@dataclass(frozen=True)
class _Entry:
    factory: _Factory
    config: type[BaseModel] | None


def mailbox_settings(mailbox: MailboxConfig) -> MailboxSettings:
    """What plugins see of a configured mailbox."""
    return MailboxSettings(
        id=mailbox.id,
        address=mailbox.address,
        name=mailbox.name,
        message_id_domain=mailbox.message_id_domain,
        timezone=mailbox.timezone,
        transport=mailbox.transport,
        # Read-only views: a plugin must not change the configuration another plugin reads.
        tables=MappingProxyType({name: MappingProxyType(dict(value))
                                 for name, value in (mailbox.model_extra or {}).items() if isinstance(value, Mapping)}),
    )


class GuardedTransport:
    """A plugin's transport as the core holds it: whatever escapes the plugin (a bug, a library's
    own exception) arrives as a ``TransportError`` naming the mailbox and the plugin. Cancellation
    is a ``BaseException`` and passes through untouched."""

    __slots__ = ("inner", "_where")

    def __init__(self, inner: Transport, where: str) -> None:
        self.inner = inner
        self._where = where

    def _error(self, action: str, exc: Exception) -> TransportError:
        return TransportError(f"{self._where}: {action} failed: {type(exc).__name__}: {exc}",
                              details={"transport": self._where, "action": action})

    @property
    def reports_on_wire(self) -> bool:
        """The plugin may be handed sends ahead and calls ``OutgoingMessage.on_wire`` (hookspecs)."""
        return getattr(self.inner, "reports_on_wire", False) is True

    async def send(self, message: OutgoingMessage) -> SendResult:
        try:
            return await self.inner.send(message)
        except DripdError:
            raise
        except Exception as exc:
            raise self._error("send", exc) from exc

    async def lookup(self, message_id: str) -> bool | None:
        try:
            return await self.inner.lookup(message_id)
        except DripdError:
            raise
        except Exception as exc:
            raise self._error("lookup", exc) from exc

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        except DripdError:
            raise
        except Exception as exc:
            raise self._error("close", exc) from exc


class Plugins:
    """Loads plugins (entry-point group ``dripd`` plus any given objects) and holds what they registered.

    Raises ``PluginError`` when a plugin cannot be loaded, implements a hook dripd does not have,
    or registers a name twice.
    """

    def __init__(self, extra: Iterable[object] = (), *, entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs.DripdSpec)
        self.transports: dict[str, _Entry] = {}
        self.detectors: dict[str, _Entry] = {}
        self.verifiers: list[AddressVerifier] = []  # address re-verification ("triple check")
        self._load(extra, entry_points)
        self._check_pending()
        registry: hookspecs.Registry = self  # typed so that mypy proves the facade is a Registry
        try:
            self._pm.hook.dripd_register(registry=registry)
        except DripdError:
            raise
        except Exception as exc:
            raise PluginError(f"a plugin's dripd_register failed: {type(exc).__name__}: {exc}",
                              hook="dripd_register") from exc

    def _load(self, extra: Iterable[object], entry_points: bool) -> None:
        try:
            if entry_points:
                self._pm.load_setuptools_entrypoints(hookspecs.PROJECT)
            for plugin in extra:
                self._pm.register(plugin, self._name_for(plugin))
        except pluggy.PluginValidationError as exc:
            # A hook dripd has, implemented with arguments its spec does not name.
            name = self._pm.get_name(exc.plugin) or _describe(exc.plugin)
            raise PluginError(f"plugin {name}: {exc}", plugin=name) from exc
        except Exception as exc:
            # A plugin that fails to import (or a name given twice) stops the start, told plainly.
            raise PluginError(f"cannot load the plugins: {type(exc).__name__}: {exc}") from exc

    def _name_for(self, plugin: object) -> str:
        """A readable name for a plugin object given directly (errors name it), made unique by
        the object's id when another plugin has it."""
        name = str(getattr(plugin, "__name__", None) or f"{type(plugin).__module__}.{type(plugin).__qualname__}")
        return f"{name}@{id(plugin):x}" if self._pm.has_plugin(name) else name

    def _check_pending(self) -> None:
        """A hook implementation whose name no spec has (``dripd_registr``) would never be called:
        refuse to start, naming every such plugin and hook."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            unknown = self._unknown_hooks()
            specs = [name for name in dir(hookspecs.DripdSpec) if name.startswith(f"{hookspecs.PROJECT}_")]
            lines = []
            for plugin, hook in unknown:
                close = difflib.get_close_matches(hook, specs, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                lines.append(f"plugin {plugin!r} implements unknown hook {hook!r}{hint}")
            first_plugin, first_hook = unknown[0] if unknown else (self._pm.get_name(exc.plugin), None)
            raise PluginError("; ".join(lines) or str(exc), plugin=first_plugin, hook=first_hook) from exc

    def _unknown_hooks(self) -> list[tuple[str, str]]:
        found = []
        for hook_name, caller in vars(self._pm.hook).items():
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    found.append((impl.plugin_name, hook_name))
        return sorted(found)

    # -- Registry protocol (hookspecs.Registry) -------------------------------------------------

    def add_transport(self, name: str, factory: _Factory, config: type[BaseModel] | None = None) -> None:
        if name in self.transports:
            raise PluginError(f"transport {name!r} registered twice", plugin=name, hook="dripd_register")
        self.transports[name] = _Entry(factory, config)

    def add_detector(self, name: str, factory: _Factory, config: type[BaseModel] | None = None) -> None:
        if name in self.detectors:
            raise PluginError(f"detector {name!r} registered twice", plugin=name, hook="dripd_register")
        self.detectors[name] = _Entry(factory, config)

    def add_verifier(self, verifier: AddressVerifier) -> None:
        self.verifiers.append(verifier)

    # -- configuration --------------------------------------------------------------------------

    def config_sections(self) -> dict[str, type[BaseModel]]:
        """Per-mailbox TOML tables owned by plugins, keyed by table name."""
        out: dict[str, type[BaseModel]] = {}
        for name, entry in [*self.transports.items(), *self.detectors.items()]:
            if entry.config is not None:
                out[name] = entry.config
        return out

    def section(self, name: str, raw: Mapping[str, Any] | None) -> BaseModel | None:
        """Plugin ``name``'s table parsed by its model (its defaults when the table is absent)."""
        entry = self.transports.get(name) or self.detectors.get(name)
        if entry is None or entry.config is None:
            return None
        return entry.config.model_validate(raw or {})

    def lane_parallelism(self, mailbox: MailboxConfig, where: str, *, queues: bool = False) -> LaneParallelism:
        """The mailbox's sends in flight: its ``concurrency``, or what its transport carries.
        ``queues``: its transport may be handed sends ahead (``reports_on_wire``)."""
        section = self.section(mailbox.transport, mailbox.plugin_section(mailbox.transport))
        parallel = section.parallel_sends if isinstance(section, SendsInParallel) else None
        return lane_parallelism(where, mailbox.concurrency, parallel, f"{mailbox.transport}.connections",
                                queues=queues)

    def check_parallelism(self, config: Config) -> list[str]:
        """Every mailbox's sends in flight checked against its transport: a warning for each setting
        that cannot fully take effect."""
        warnings: list[str] = []
        for index, mailbox in enumerate(config.mailboxes):
            warning = self.lane_parallelism(mailbox, f"mailboxes[{index}]").warning
            if warning is not None:
                warnings.append(warning)
        return warnings

    # -- building what a mailbox uses -----------------------------------------------------------

    def build_transport(self, mailbox: MailboxConfig, context: PluginContext) -> Transport:
        """The mailbox's transport, built by the plugin its ``transport`` key names."""
        name = mailbox.transport
        entry = self.transports.get(name)
        if entry is None:
            known = ", ".join(sorted(self.transports)) or "none"
            raise PluginError(f"mailbox {mailbox.id}: no transport plugin {name!r} (known: {known})", plugin=name)
        where = f"mailbox {mailbox.id}: transport {name!r}"
        section = self.section(name, mailbox.plugin_section(name))
        try:
            transport: Transport = entry.factory(mailbox_settings(mailbox), section, context)
        except DripdError:
            raise
        except Exception as exc:
            # e.g. a Maildir that cannot be created: the daemon reports it and exits.
            raise TransportError(f"{where} cannot start: {type(exc).__name__}: {exc}",
                                 details={"transport": name, "mailbox": mailbox.id}) from exc
        return GuardedTransport(transport, where)

    def build_detectors(self, mailbox: MailboxConfig, context_for: Callable[[str], PluginContext]) -> list[Detector]:
        """The detectors whose table this mailbox has (e.g. ``[mailboxes.imap]``), in registration order;
        ``context_for`` gives each plugin, by name, its own context."""
        found: list[Detector] = []
        settings = mailbox_settings(mailbox)
        for name, entry in self.detectors.items():
            raw = mailbox.plugin_section(name)
            if raw is None:
                continue
            try:
                detector: Detector | None = entry.factory(settings, self.section(name, raw), context_for(name))
            except DripdError:
                raise
            except Exception as exc:
                raise PluginError(f"mailbox {mailbox.id}: detector {name!r} cannot start: {type(exc).__name__}: {exc}",
                                  plugin=name) from exc
            if detector is not None:
                found.append(detector)
        return found

    # -- the other hooks ------------------------------------------------------------------------

    # Both are called once per send; with no plugin implementing them (the usual case) a hook
    # call was ~3 % of the event loop in bench/bench_dispatch.py, so they return early.

    def message_headers(self, mailbox_id: str, sequence_id: int, step_id: int) -> list[tuple[str, str]]:
        hook = self._pm.hook.dripd_message_headers
        if not hook.get_hookimpls():
            return []
        results = hook(mailbox_id=mailbox_id, sequence_id=sequence_id, step_id=step_id)
        return [header for result in results for header in (result or [])]

    def notify(self, event: Event) -> None:
        """Hand one committed event to the ``dripd_event`` hooks, as ``event.as_json()``."""
        hook = self._pm.hook.dripd_event
        if not hook.get_hookimpls():
            return
        try:
            hook(event=event.as_json())
        except Exception:  # an observer's bug must not stop a send
            log.exception("a plugin's dripd_event hook failed for %s", event.kind.value)

    def names(self) -> list[str]:
        return sorted(name or "?" for name, _ in self._pm.list_name_plugin())


def _describe(plugin: object) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__qualname__)

