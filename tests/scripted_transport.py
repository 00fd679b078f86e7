"""A transport plugin for engine tests: it delivers into a list and answers what the test
scripts per recipient (accepted, transient, permanent, uncertain, sender blocked).

It is a real plugin registered through the same hook as the built-ins, not a mock of a mail
server: the SMTP transport is tested against real servers in tests/integration/test_smtp*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio
from pydantic import BaseModel, ConfigDict

from dripd.hookspecs import OutgoingMessage, PluginContext, SendOutcome, SendResult, hookimpl


class ScriptedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "default"


@dataclass
class ScriptedTransport:
    now: Any
    delivered: list[tuple[float, OutgoingMessage]] = field(default_factory=list)
    attempts: list[tuple[float, str]] = field(default_factory=list)
    script: dict[str, list[SendOutcome]] = field(default_factory=dict)  # per recipient, consumed in order
    known: dict[str, bool | None] = field(default_factory=dict)  # lookup answers by Message-ID
    hold: trio.Event | None = None  # when set by a test, each send waits for it (a send in progress)

    async def send(self, message: OutgoingMessage) -> SendResult:
        if self.hold is not None:
            await self.hold.wait()
        self.attempts.append((self.now(), message.to_address))
        outcomes = self.script.get(message.to_address)
        outcome = outcomes.pop(0) if outcomes else SendOutcome.ACCEPTED
        if outcome is SendOutcome.ACCEPTED:
            self.delivered.append((self.now(), message))
        return SendResult(outcome, f"scripted {outcome.value}", status="5.1.1" if outcome is SendOutcome.PERMANENT else None)

    async def lookup(self, message_id: str) -> bool | None:
        return self.known.get(message_id)

    async def aclose(self) -> None:
        return None


class ScriptedPlugin:
    """Register with ``Plugins(extra=[plugin])``; ``transports`` maps mailbox id -> transport."""

    def __init__(self) -> None:
        self.transports: dict[str, ScriptedTransport] = {}

    @hookimpl
    def dripd_register(self, registry: Any) -> None:
        def create(mailbox: Any, section: BaseModel | None, context: PluginContext) -> ScriptedTransport:
            transport = self.transports.setdefault(mailbox.id, ScriptedTransport(context.now))
            transport.now = context.now
            return transport

        registry.add_transport("scripted", create, ScriptedConfig)
