"""The benchmarks' null transport: a real plugin, registered like the built-ins, that accepts
every message at once (bench/_common.py re-exports it as ``c.NullPlugin``)."""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from dripd.hookspecs import OutgoingMessage, PluginContext, SendOutcome, SendResult, hookimpl


class NullConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NullTransport:
    """Accepts every message at once and keeps only (time, recipient): no message bodies in
    memory, so it neither slows the engine nor inflates its RSS (tests' ScriptedTransport keeps
    every message, ~2 KB each)."""

    def __init__(self, now: Callable[[], float], keep: bool) -> None:
        self.now = now
        self.count = 0
        self.keep = keep
        self.sent: list[tuple[float, str]] = []

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.count += 1
        if self.keep:
            self.sent.append((self.now(), message.to_address))
        return SendResult(SendOutcome.ACCEPTED, "250 null", 250)

    async def lookup(self, message_id: str) -> bool | None:
        return None

    async def aclose(self) -> None:
        return None


class NullPlugin:
    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.transports: dict[str, NullTransport] = {}

    @hookimpl
    def dripd_register(self, registry: Any) -> None:
        def create(mailbox: Any, section: BaseModel | None, context: PluginContext) -> NullTransport:
            transport = self.transports.setdefault(mailbox.id, NullTransport(context.now, self.keep))
            transport.now = context.now
            return transport

        registry.add_transport("null", create, NullConfig)

    def count(self) -> int:
        return sum(t.count for t in self.transports.values())
