"""A typed facade over pluggy's PluginManager: nothing else in dripd touches ``pm.hook``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pluggy
from pydantic import BaseModel

from dripd import hookspecs
from dripd.hookspecs import AddressVerifier, DetectorFactory, TransportFactory

log = logging.getLogger("dripd.plugins")


@dataclass(frozen=True)
class _Entry:
    factory: Any
    config: type[BaseModel] | None


class Plugins:
    """Loads plugins (entry-point group ``dripd`` plus any given objects) and holds what they registered."""

    def __init__(self, extra: Iterable[object] = (), *, entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs.DripdSpec)
        if entry_points:
            self._pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        for plugin in extra:
            self._pm.register(plugin)
        self.transports: dict[str, _Entry] = {}
        self.detectors: dict[str, _Entry] = {}
        self.verifiers: list[AddressVerifier] = []  # address re-verification ("triple check")
        self._pm.hook.dripd_register(registry=self)

    # Registry protocol
    def add_transport(self, name: str, factory: TransportFactory, config: type[BaseModel] | None = None) -> None:
        if name in self.transports:
            raise ValueError(f"transport {name!r} registered twice")
        self.transports[name] = _Entry(factory, config)

    def add_detector(self, name: str, factory: DetectorFactory, config: type[BaseModel] | None = None) -> None:
        if name in self.detectors:
            raise ValueError(f"detector {name!r} registered twice")
        self.detectors[name] = _Entry(factory, config)

    def add_verifier(self, verifier: AddressVerifier) -> None:
        self.verifiers.append(verifier)

    def config_sections(self) -> dict[str, type[BaseModel]]:
        """Per-mailbox TOML tables owned by plugins, keyed by table name."""
        out: dict[str, type[BaseModel]] = {}
        for name, entry in [*self.transports.items(), *self.detectors.items()]:
            if entry.config is not None:
                out[name] = entry.config
        return out

    def section(self, name: str, raw: Mapping[str, Any] | None) -> BaseModel | None:
        entry = self.transports.get(name) or self.detectors.get(name)
        if entry is None or entry.config is None:
            return None
        return entry.config.model_validate(raw or {})

    # Both are called once per send; with no plugin implementing them (the usual case) a hook
    # call was ~3 % of the event loop in bench/bench_dispatch.py, so they return early.

    def message_headers(self, mailbox_id: str, sequence_id: int, step_id: int) -> list[tuple[str, str]]:
        hook = self._pm.hook.dripd_message_headers
        if not hook.get_hookimpls():
            return []
        results = hook(mailbox_id=mailbox_id, sequence_id=sequence_id, step_id=step_id)
        return [header for result in results for header in (result or [])]

    def notify(self, kind: str, data: Mapping[str, Any]) -> None:
        hook = self._pm.hook.dripd_event
        if not hook.get_hookimpls():
            return
        try:
            hook(kind=kind, data=data)
        except Exception:  # an observer's bug must not stop a send
            log.exception("a plugin's dripd_event hook failed for %s", kind)

    def names(self) -> list[str]:
        return sorted(name or "?" for name, _ in self._pm.list_name_plugin())
