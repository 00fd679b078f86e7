"""The lease tables in PostgreSQL (``cluster_nodes``, ``mailbox_leases``), read and written with
psycopg's sync API on a connection of their own, one call at a time in a worker thread.

A connection of its own: a heartbeat must not queue behind the store's sends, and a lost
connection here is what tells a node it is cut off. Every expiry is compared with the
DATABASE's clock (``clock_timestamp()``), never a node's, so clock skew between nodes cannot
give two of them the same mailbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Collection

import psycopg

log = logging.getLogger("dripd.cluster")

DB_NOW = "extract(epoch from clock_timestamp())::float8"
FORGET_NODES_AFTER_SECONDS = 3600.0  # dripctl status shows a dead node this long, then drops it


@dataclass(frozen=True)
class Round:
    """What one heartbeat learnt: the leases this node renewed, who is alive, who holds what."""

    renewed: dict[str, int]  # mailbox id -> generation, still this node's
    live_nodes: tuple[str, ...]
    holders: dict[str, str | None]  # mailbox id -> holder of an unexpired lease, None when free


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    address: str
    started_at: float
    heartbeat_at: float
    alive: bool


@dataclass(frozen=True)
class LeaseRow:
    mailbox_id: str
    holder: str | None
    generation: int
    expires_at: float
    valid: bool  # unexpired by the database's clock


@dataclass(frozen=True)
class ClusterState:
    now: float  # the database's clock
    nodes: list[NodeRow]
    leases: list[LeaseRow]


def _close(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection may fail too; it is gone either way
        pass


class LeaseTable:
    """Blocking calls; ``dripd.cluster.leases`` runs each in a worker thread with a timeout."""

    def __init__(self, url: str, password: str | None, *, timeout: float) -> None:
        self._url = url
        self._password = password
        self._timeout = timeout
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = psycopg.connect(
                self._url, password=self._password, autocommit=True, application_name="dripd-leases",
                connect_timeout=max(1, int(self._timeout)),
                # TCP keepalives notice a silent network loss on an idle session (ignored on a
                # Unix socket); a statement stuck on a slow server must not outlive a heartbeat.
                # A cut between two statements of a heartbeat leaves its transaction open on the
                # server, holding the row locks of this node's leases while the server still
                # sees the session up (a proxy, a half-open TCP session: for hours): no other
                # node could take those leases, and its own heartbeats (their upsert of the lease
                # rows waits on the locks) failed. The server ends such a transaction after the
                # same timeout: a call that slow is abandoned by this node anyway.
                keepalives=1, keepalives_idle=max(1, int(self._timeout)), keepalives_interval=1,
                keepalives_count=3, options=f"-c statement_timeout={int(self._timeout * 1000)}"
                f" -c idle_in_transaction_session_timeout={int(self._timeout * 1000)}")
        return conn

    def forget(self) -> None:
        """A call timed out (its thread may still be blocked on the connection): the next call
        opens a new connection; the blocked thread closes the old one when it returns. Never
        closed from here: closing a connection in use could block the caller."""
        self._conn = None

    def drop(self) -> None:
        """Close the connection (on the worker thread, or when nothing uses it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _close(conn)

    def _run(self, work: Any) -> Any:
        conn = self._connection()
        try:
            return work(conn)
        except psycopg.Error:
            if self._conn is conn:
                self._conn = None
            _close(conn)
            raise
        finally:
            if self._conn is not conn:
                _close(conn)  # forgotten while this call hung: this thread owns it now

    def join(self, node_id: str, address: str) -> None:
        """Register this node (a restart with a configured id starts its row afresh)."""
        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute(
                f"INSERT INTO cluster_nodes (node_id, address, started_at, heartbeat_at) VALUES (%s, %s, {DB_NOW}, "
                f"{DB_NOW}) ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, "
                "started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at", (node_id, address))
        self._run(work)

    def heartbeat(self, node_id: str, address: str, mailboxes: Collection[str], lease_seconds: float) -> Round:
        """One transaction: mark this node alive, make sure every configured mailbox has a lease
        row, renew this node's unexpired leases, and read who is alive and who holds what."""
        def work(conn: psycopg.Connection[Any]) -> Round:
            with conn.transaction():
                conn.execute(
                    f"INSERT INTO cluster_nodes (node_id, address, started_at, heartbeat_at) VALUES (%s, %s, "
                    f"{DB_NOW}, {DB_NOW}) ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address, "
                    "heartbeat_at = EXCLUDED.heartbeat_at", (node_id, address))
                conn.execute("INSERT INTO mailbox_leases (mailbox_id) SELECT unnest(%s::text[]) "
                             "ON CONFLICT (mailbox_id) DO NOTHING", (sorted(mailboxes),))
                # Only a lease still unexpired is renewed: an expired one may already be
                # another node's, and taking it back is an acquisition (a new generation).
                renewed = conn.execute(
                    f"UPDATE mailbox_leases SET expires_at = {DB_NOW} + %s WHERE holder = %s AND expires_at > {DB_NOW} "
                    "RETURNING mailbox_id, generation", (lease_seconds, node_id)).fetchall()
                # Nodes silent for an hour are forgotten (ids are new at every start by default);
                # SKIP LOCKED: two nodes pruning at once never wait on (or deadlock over) a row.
                conn.execute(f"DELETE FROM cluster_nodes WHERE node_id IN (SELECT node_id FROM cluster_nodes "
                             f"WHERE heartbeat_at < {DB_NOW} - %s FOR UPDATE SKIP LOCKED)",
                             (max(FORGET_NODES_AFTER_SECONDS, 10 * lease_seconds),))
                live = conn.execute(f"SELECT node_id FROM cluster_nodes WHERE heartbeat_at > {DB_NOW} - %s",
                                    (lease_seconds,)).fetchall()
                holders = conn.execute(
                    f"SELECT mailbox_id, CASE WHEN expires_at > {DB_NOW} THEN holder END FROM mailbox_leases").fetchall()
            return Round(renewed={m: int(g) for m, g in renewed}, live_nodes=tuple(sorted(n for (n,) in live)),
                         holders={m: h for m, h in holders})
        result: Round = self._run(work)
        return result

    def acquire(self, node_id: str, mailbox_id: str, lease_seconds: float) -> int | None:
        """Take a free or expired lease: its new generation, or None when another node was faster.
        The row is locked FOR UPDATE first, and only when it is free or expired: that lock waits
        for the old holder's ledger writes still in flight (their fence holds KEY SHARE, which
        the UPDATE alone would not wait for), and two nodes' attempts take turns; the second
        re-reads the row after the first's COMMIT and finds it held. A lease still held is not
        locked at all, so trying it never waits on its holder's sends."""
        def work(conn: psycopg.Connection[Any]) -> int | None:
            with conn.transaction():
                free = conn.execute(
                    f"SELECT 1 FROM mailbox_leases WHERE mailbox_id = %s AND (holder IS NULL OR expires_at <= {DB_NOW})"
                    " FOR UPDATE", (mailbox_id,)).fetchone()
                if free is None:
                    return None
                row = conn.execute(
                    f"UPDATE mailbox_leases SET holder = %s, generation = generation + 1, expires_at = {DB_NOW} + %s "
                    "WHERE mailbox_id = %s RETURNING generation", (node_id, lease_seconds, mailbox_id)).fetchone()
            return None if row is None else int(row[0])
        result: int | None = self._run(work)
        return result

    def release(self, node_id: str, mailbox_id: str, generation: int) -> bool:
        """Give a lease up (its lane has stopped): free at once for the node that should hold it.
        A ledger write of this node still in flight need not be waited for here: the next
        holder's ``acquire`` waits for it."""
        def work(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "UPDATE mailbox_leases SET holder = NULL, generation = generation + 1, expires_at = 0 "
                "WHERE mailbox_id = %s AND holder = %s AND generation = %s", (mailbox_id, node_id, generation))
            return cur.rowcount == 1
        result: bool = self._run(work)
        return result

    def leave(self, node_id: str) -> None:
        """A graceful stop: release every lease of this node and remove it from the live nodes."""
        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("UPDATE mailbox_leases SET holder = NULL, generation = generation + 1, expires_at = 0 "
                             "WHERE holder = %s", (node_id,))
                conn.execute("DELETE FROM cluster_nodes WHERE node_id = %s", (node_id,))
        self._run(work)

    def state(self, lease_seconds: float) -> ClusterState:
        """Every node and lease as the database sees them now (for status and metrics)."""
        def work(conn: psycopg.Connection[Any]) -> ClusterState:
            with conn.transaction():
                now = float(conn.execute(f"SELECT {DB_NOW}").fetchone()[0])  # type: ignore[index]
                nodes = conn.execute("SELECT node_id, address, started_at, heartbeat_at FROM cluster_nodes "
                                     "ORDER BY node_id").fetchall()
                leases = conn.execute("SELECT mailbox_id, holder, generation, expires_at FROM mailbox_leases "
                                      "ORDER BY mailbox_id").fetchall()
            return ClusterState(
                now=now,
                nodes=[NodeRow(n, a, float(s), float(h), float(h) > now - lease_seconds) for n, a, s, h in nodes],
                leases=[LeaseRow(m, h, int(g), float(e), h is not None and float(e) > now) for m, h, g, e in leases])
        result: ClusterState = self._run(work)
        return result

    def close(self) -> None:
        self.drop()
