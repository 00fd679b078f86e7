"""Built-in Maildir transport: each message is written atomically into a Maildir (tmp/ then new/).

Useful to run dripd with no mail server at all (the embedded default) and as a delivery
target that tests can read back. The file name is derived from the Message-ID, so delivery
can be looked up after a crash and a message can never land twice.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio
from pydantic import BaseModel, ConfigDict, Field

from dripd.clock import offloaded
from dripd.config import ConfigPath
from dripd.config_files import directory_problem
from dripd.hookspecs import MailboxSettings, OutgoingMessage, PluginContext, Registry, SendOutcome, SendResult, hookimpl

NAME = "maildir"


class MaildirConfig(BaseModel):
    """The Maildir transport: each message is written atomically into `path/new/` (no mail server needed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: ConfigPath = Field(
        description="The Maildir; `tmp/`, `new/` and `cur/` are created. Messages land in `new/`, one file each.",
        json_schema_extra={"rule": "a writable directory, or one that can be created"})

    def unusable_files(self) -> list[tuple[str, str]]:
        """A Maildir that cannot be written is found at --check-config and start, not at the first send."""
        problem = directory_problem(self.path)
        return [("path", problem)] if problem else []


def file_name(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:32] + ".dripd"


class MaildirTransport:
    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def _write(self, message: OutgoingMessage) -> SendResult:
        name = file_name(message.message_id)
        tmp = self.path / "tmp" / name
        final = self.path / "new" / name
        if final.exists() or (self.path / "cur" / name).exists():
            return SendResult(SendOutcome.ACCEPTED, "already delivered")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, message.data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() refuses to replace an existing file: a message can never land twice.
            os.link(tmp, final)
        except FileExistsError:
            return SendResult(SendOutcome.ACCEPTED, "already delivered")
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(self.path / "new", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return SendResult(SendOutcome.ACCEPTED, f"written to {final}")

    async def send(self, message: OutgoingMessage) -> SendResult:
        try:
            with offloaded:
                return await trio.to_thread.run_sync(self._write, message)
        except OSError as exc:
            # A full or read-only disk is worth retrying once the fault clears.
            return SendResult(SendOutcome.TRANSIENT, f"cannot write to {self.path}: {exc.strerror}")

    async def lookup(self, message_id: str) -> bool | None:
        name = file_name(message_id)
        return (self.path / "new" / name).exists() or (self.path / "cur" / name).exists()

    async def aclose(self) -> None:
        return None


def _create(mailbox: MailboxSettings, section: MaildirConfig, context: PluginContext) -> MaildirTransport:
    return MaildirTransport(section.path)


@hookimpl
def dripd_register(registry: Registry) -> None:
    registry.add_transport(NAME, _create, MaildirConfig)
