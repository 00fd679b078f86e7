"""The ``[cluster]`` table: who this node is and how long its mailbox leases last.

Only read when the store is PostgreSQL (several nodes); a SQLite daemon is one node and holds
every mailbox without a lease.
"""

from __future__ import annotations

import os
import socket

from pydantic import BaseModel, ConfigDict, Field


class ClusterConfig(BaseModel):
    """Several nodes on one PostgreSQL database: this node's id and its mailbox leases."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    node_id: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="This node's name in the cluster; unset: `<hostname>-<pid>` (a new name per start).",
        json_schema_extra={"rule": "letters, digits and _ . : @ - (unique per running node)"})
    address: str = Field(
        default="", max_length=300,
        description="The API address other people reach this node at (`host:port`), shown by "
                    "`dripctl status`; unset: `[api] listen`, or nothing.")
    lease_seconds: float = Field(
        default=15.0, ge=1.0, le=3600.0,
        description="How long a mailbox lease lasts without renewal. Renewed every third of it; a node "
                    "that cannot renew stops sending after two thirds of it, before the lease can "
                    "move; a dead node's mailboxes move to the others after it.")
    poll_seconds: float = Field(
        default=10.0, gt=0, le=3600.0,
        description="How often a node re-reads its mailboxes' due work and pause state, in case a "
                    "wake-up (PostgreSQL NOTIFY) was missed or another node paused a mailbox.")

    def node_name(self) -> str:
        """The configured id, or ``<hostname>-<pid>``."""
        return self.node_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def heartbeat_seconds(self) -> float:
        """Renewal interval: three chances to renew before the lease runs out."""
        return self.lease_seconds / 3

    @property
    def safety_seconds(self) -> float:
        """How long before the lease's end a node that could not renew stops its lanes: sends
        in flight finish in this time, before another node may take the mailbox over."""
        return self.lease_seconds / 3

    @property
    def call_timeout_seconds(self) -> float:
        """How long one call on the lease tables may take: a renewal slower than this could not
        extend the tenure any more (it ends lease - safety after the renewal began)."""
        return self.lease_seconds - self.safety_seconds
