"""The only room that touches the database.

``dripd.store.api`` is the interface (a Protocol per consumer, and the values they exchange);
``dripd.store.sqlite`` is the embedded backend, whose ``Store`` implements all of it. The names
callers used before the split are re-exported here.
"""

from __future__ import annotations

from dripd.store.api import (
    BulkResult,
    BulkRow,
    Catalog,
    Claim,
    ContactInput,
    ContactProgress,
    DueRow,
    DueSource,
    EnrollResult,
    FullStore,
    LeaseFence,
    MessageFacts,
    OutboxRow,
    PluginState,
    Refused,
    Reports,
    RunContext,
    RunStore,
    SentRef,
    Signals,
    TrackedMessage,
)
from dripd.store.sqlite import Store, open_store

__all__ = ["BulkResult", "BulkRow", "Catalog", "Claim", "ContactInput", "ContactProgress", "DueRow", "DueSource",
           "EnrollResult", "FullStore", "LeaseFence", "MessageFacts", "OutboxRow", "PluginState", "Refused", "Reports",
           "RunContext", "RunStore",
           "SentRef", "Signals", "Store", "TrackedMessage", "open_store"]
