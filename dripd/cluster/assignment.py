"""Which node should hold which mailbox: pure, so every node computes the same answer from the
same facts (the live nodes and the mailboxes, both read from the database).

The spread is exact (each live node gets ``M // N`` or ``M // N + 1`` mailboxes) and stable:
each (mailbox, node) pair has a rendezvous-hash score, and mailboxes go to their best-scoring
node that still has room. A node joining or leaving moves about ``M / N`` mailboxes, not all.
``plan`` turns that into moves by counts: a node over its share releases the surplus at a
renewal, a node under it takes free or expired leases (never one another node holds), so the
spread converges without moving mailboxes that are already evenly held.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Collection, Mapping


def score(node_id: str, mailbox_id: str) -> int:
    """The pair's rendezvous weight: a stable hash, the same on every node and Python run."""
    digest = hashlib.blake2b(f"{node_id}\x00{mailbox_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(nodes: Collection[str], mailboxes: Collection[str]) -> dict[str, str]:
    """mailbox id -> node id over every mailbox; empty when there is no node.

    Pairs are taken best score first; a node takes a mailbox while it has fewer than ``M // N``
    or, for the first ``M % N`` nodes to reach that, one more. The capacities add up to M, so
    every mailbox is placed."""
    node_list = sorted(set(nodes))
    boxes = sorted(set(mailboxes))
    if not node_list:
        return {}
    floor, extra = divmod(len(boxes), len(node_list))
    pairs = sorted(((score(n, m), n, m) for n in node_list for m in boxes), reverse=True)
    count = dict.fromkeys(node_list, 0)
    owner: dict[str, str] = {}
    for _, node, mailbox in pairs:
        if mailbox in owner:
            continue
        if count[node] < floor:
            pass
        elif count[node] == floor and extra > 0:
            extra -= 1
        else:
            continue
        count[node] += 1
        owner[mailbox] = node
    return owner


@dataclass(frozen=True)
class Plan:
    """What one node does at a renewal: leases to take (free ones, while it is under its fair
    share) and to release (its surplus over the share, and mailboxes no longer configured)."""

    take: tuple[str, ...]
    release: tuple[str, ...]


def plan(me: str, live_nodes: Collection[str], mailboxes: Collection[str],
         holders: Mapping[str, str | None]) -> Plan:
    """``holders``: mailbox id -> the node holding an unexpired lease, None when free or expired
    (by the database's clock). This node counts as live whatever ``live_nodes`` says.

    Counts decide, the assignment only orders: a node keeps what it holds while it is within
    its share (``assign``'s count for it), so a node that looks dead for one heartbeat and
    comes back moves nothing. Over its share, it releases first what ``assign`` gives others;
    under it, it takes free mailboxes ``assign`` gives it first, then any free ones."""
    configured = set(mailboxes)
    target = assign(set(live_nodes) | {me}, configured)
    share = sum(1 for node in target.values() if node == me)
    held = sorted(m for m, holder in holders.items() if holder == me)
    gone = [m for m in held if m not in configured]
    kept = [m for m in held if m in configured]
    release: list[str] = list(gone)
    if len(kept) > share:
        # Others' mailboxes first, then the ones this node scores lowest on.
        surplus = sorted(kept, key=lambda m: (target.get(m) == me, score(me, m)))
        release += surplus[:len(kept) - share]
    take: list[str] = []
    if len(kept) < share:
        free = [m for m in configured if holders.get(m) is None]
        free.sort(key=lambda m: (target.get(m) != me, -score(me, m), m))
        take = free[:share - len(kept)]
    return Plan(take=tuple(take), release=tuple(sorted(release)))


@dataclass
class Tenure:
    """How long this node may keep sending on its leases, in its own monotonic time.

    A renewal that starts at local time t makes the database set expiry to (its clock at the
    update) + lease, and the update runs after t: so the lease lasts at least until t + lease
    in real time, whatever the clocks read. The node stops ``safety`` seconds before that, so
    sends in flight end before another node can take the mailbox over."""

    lease_seconds: float
    safety_seconds: float
    valid_until: float = float("-inf")

    def renewed(self, started_at: float) -> None:
        """A renewal that began at ``started_at`` committed."""
        self.valid_until = max(self.valid_until, started_at + self.lease_seconds - self.safety_seconds)

    def lapse(self) -> None:
        """Leases are gone (released, or the node stopped): nothing is valid any more."""
        self.valid_until = float("-inf")

    def valid(self, now: float) -> bool:
        return now < self.valid_until
