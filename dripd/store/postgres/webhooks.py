"""Webhook endpoints and the webhook outbox; the PostgreSQL twin of ``dripd.store.sqlite.webhooks``.
Deliveries are inserted by the ``webhook_outbox`` trigger in the same commit as their event
(migration 1); these operations claim what is due, record each attempt, and serve the API.
Several nodes may run a dispatcher on one database: ``webhook_due`` claims rows with
``FOR UPDATE SKIP LOCKED`` and marks them in flight, so no two nodes post one delivery at once."""

from __future__ import annotations

import json
from typing import Any, Sequence

from dripd.store.postgres.connection import operation
from dripd.store.postgres.sql import Conn, PgRow, fetch_all, fetch_one
from dripd.webhooks.records import ALL_KINDS, Delivery, DeliveryStatus, Endpoint, EndpointSpec, EventFacts

_ENDPOINT_COLUMNS = ("id, name, url, secret, kinds, source, enabled, disabled_reason, retry_hours,"
                     " retry_first_seconds, timeout_seconds, concurrency, created_at")
_DELIVERY_COLUMNS = ("d.id, d.endpoint_id, d.event_id, d.status, d.attempts, d.created_at, d.retry_from,"
                     " d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, e.kind")


# A claimed delivery's attempt ends within the endpoint's timeout; past it and this margin, the
# node that claimed it is presumed gone and any node may attempt it again (deliveries are
# at-least-once, each signed with the same webhook-id, so a receiver can drop a repeat).
IN_FLIGHT_MARGIN = 60.0
_SYNC_LOCK = 0x647269707768  # "dripwh": the config sync's advisory lock key


def _kinds_column(kinds: tuple[str, ...] | None) -> str:
    return ALL_KINDS if not kinds else "," + ",".join(kinds) + ","


def _endpoint(row: PgRow) -> Endpoint:
    kinds = None if row[4] == ALL_KINDS else tuple(k for k in row[4].split(",") if k)
    return Endpoint(row[0], row[1], row[2], row[3], kinds, row[5], bool(row[6]), row[7], row[8], row[9], row[10],
                    row[11], row[12])


def _delivery(row: PgRow) -> Delivery:
    return Delivery(row[0], row[1], row[2], DeliveryStatus(row[3]), row[4], row[5], row[6], row[7], row[8], row[9],
                    row[10], row[11], row[12] or "")


def _spec_values(spec: EndpointSpec) -> tuple[Any, ...]:
    return (spec.url, spec.secret, _kinds_column(spec.kinds), spec.retry_hours, spec.retry_first_seconds,
            spec.timeout_seconds, spec.concurrency)


def _insert(db: Conn, spec: EndpointSpec, source: str, now: float) -> int:
    row = db.execute(
        "INSERT INTO webhook_endpoints (url, secret, kinds, retry_hours, retry_first_seconds, timeout_seconds,"
        " concurrency, name, source, created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
        (*_spec_values(spec), spec.name, source, now, now)).fetchone()
    assert row is not None
    return int(row[0])


class WebhookOps:
    """Mixin of webhook operations (``PgConnection`` runs them)."""

    # -- endpoints ------------------------------------------------------------------------------

    @operation
    def webhook_sync_config(self, db: Conn, specs: Sequence[EndpointSpec], now: float) -> None:
        """Make the config-defined endpoints exactly ``specs`` (by name). A changed one keeps
        its id and its deliveries; a removed one goes with its outbox; an API endpoint of the
        same name becomes the config's. Nodes starting at once run this one after the other
        (a transaction-level advisory lock), so each finds what the one before wrote."""
        db.execute("SELECT pg_advisory_xact_lock(%s)", (_SYNC_LOCK,))
        wanted = {spec.name for spec in specs}
        for row in fetch_all(db, "SELECT id, name FROM webhook_endpoints WHERE source = 'config'"):
            if row[1] not in wanted:
                db.execute("DELETE FROM webhook_endpoints WHERE id = %s", (row[0],))
        for spec in specs:
            found = fetch_one(db, "SELECT id, url, secret, kinds, retry_hours, retry_first_seconds, timeout_seconds,"
                                  " concurrency, source FROM webhook_endpoints WHERE name = %s", (spec.name,))
            if found is None:
                _insert(db, spec, "config", now)
            elif tuple(found[1:8]) != _spec_values(spec) or found[8] != "config":
                db.execute("UPDATE webhook_endpoints SET url = %s, secret = %s, kinds = %s, retry_hours = %s,"
                           " retry_first_seconds = %s, timeout_seconds = %s, concurrency = %s, source = 'config',"
                           " updated_at = %s WHERE id = %s", (*_spec_values(spec), now, found[0]))

    @operation
    def webhook_create(self, db: Conn, spec: EndpointSpec, now: float) -> Endpoint | None:
        """A new API endpoint; None if the name is taken."""
        if fetch_one(db, "SELECT 1 FROM webhook_endpoints WHERE name = %s", (spec.name,)) is not None:
            return None
        endpoint_id = _insert(db, spec, "api", now)
        row = fetch_one(db, f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s", (endpoint_id,))
        assert row is not None
        return _endpoint(row)

    @operation
    def webhook_endpoints(self, db: Conn) -> list[Endpoint]:
        return [_endpoint(r) for r in fetch_all(db, f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id")]

    @operation
    def webhook_delete(self, db: Conn, endpoint_id: int) -> bool:
        """Delete an endpoint and its outbox."""
        return db.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,)).rowcount > 0

    @operation
    def webhook_set_enabled(self, db: Conn, endpoint_id: int, enabled: bool, reason: str | None, now: float) -> bool:
        return db.execute("UPDATE webhook_endpoints SET enabled = %s, disabled_reason = %s, updated_at = %s"
                          " WHERE id = %s", (int(enabled), None if enabled else reason, now, endpoint_id)).rowcount > 0

    # -- the outbox -------------------------------------------------------------------------------

    @operation
    def webhook_due(self, db: Conn, endpoint_id: int, now: float, limit: int, skip: Sequence[int]) -> list[Delivery]:
        """Claim up to ``limit`` pending deliveries of an endpoint due by ``now``, oldest first,
        except ``skip`` (in flight here). Rows another node is claiming are skipped, not waited
        for; the claimed ones are marked in flight (due again only after the endpoint's timeout
        and a margin), so another node's dispatcher leaves them alone until this attempt is
        recorded, and takes them over if this node dies mid-attempt."""
        rows = fetch_all(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d"
                             " LEFT JOIN events e ON e.id = d.event_id"
                             " WHERE d.endpoint_id = %s AND d.status = 'pending' AND d.next_attempt_at <= %s"
                             " AND NOT (d.id = ANY(%s))"
                             " ORDER BY d.next_attempt_at, d.id LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                         (endpoint_id, now, list(skip), limit))
        if rows:
            db.execute("UPDATE webhook_deliveries SET next_attempt_at = %s + w.timeout_seconds + %s"
                       " FROM webhook_endpoints w WHERE w.id = webhook_deliveries.endpoint_id"
                       " AND webhook_deliveries.id = ANY(%s)", (now, IN_FLIGHT_MARGIN, [r[0] for r in rows]))
        return [_delivery(r) for r in rows]

    @operation
    def webhook_next_due(self, db: Conn, exclude: Sequence[int] = ()) -> float | None:
        """When the earliest pending delivery of an enabled endpoint (not in ``exclude``) is due."""
        row = fetch_one(db, "SELECT MIN(d.next_attempt_at) FROM webhook_endpoints w"
                            " JOIN webhook_deliveries d ON d.endpoint_id = w.id AND d.status = 'pending'"
                            " WHERE w.enabled = 1 AND NOT (w.id = ANY(%s))", (list(exclude),))
        return None if row is None or row[0] is None else float(row[0])

    @operation
    def webhook_event(self, db: Conn, event_id: int) -> EventFacts | None:
        row = fetch_one(db, "SELECT e.id, e.kind, e.at, e.mailbox_id, e.sequence_id, s.name, e.enrollment_id,"
                            " e.contact_id, c.email, e.step_id, e.outbox_id, e.data FROM events e"
                            " LEFT JOIN sequences s ON s.id = e.sequence_id LEFT JOIN contacts c ON c.id = e.contact_id"
                            " WHERE e.id = %s", (event_id,))
        if row is None:
            return None
        return EventFacts(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                          json.loads(row[11] or "{}"))

    @operation
    def webhook_record(self, db: Conn, delivery_id: int, status: DeliveryStatus, at: float, http_status: int | None,
                       error: str | None, next_attempt_at: float | None) -> None:
        """One attempt's result: delivered, failed for good, or pending again at ``next_attempt_at``."""
        db.execute("UPDATE webhook_deliveries SET status = %s, attempts = attempts + 1, last_attempt_at = %s,"
                   " last_status = %s, last_error = %s, next_attempt_at = COALESCE(%s, next_attempt_at),"
                   " delivered_at = CASE WHEN %s = 'delivered' THEN %s ELSE delivered_at END WHERE id = %s",
                   (status.value, at, http_status, error, next_attempt_at, status.value, at, delivery_id))

    @operation
    def webhook_expire(self, db: Conn, delivery_id: int, now: float, reason: str) -> None:
        """Give up on a delivery that waited past its retry period without an attempt."""
        db.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = %s WHERE id = %s AND status = 'pending'",
                   (reason, delivery_id))

    @operation
    def webhook_delivery(self, db: Conn, delivery_id: int) -> Delivery | None:
        row = fetch_one(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d LEFT JOIN events e"
                            " ON e.id = d.event_id WHERE d.id = %s", (delivery_id,))
        return None if row is None else _delivery(row)

    @operation
    def webhook_replay(self, db: Conn, delivery_id: int, now: float) -> Delivery | None:
        """Queue a delivery again now (same webhook-id), with a fresh retry period."""
        if db.execute("UPDATE webhook_deliveries SET status = 'pending', retry_from = %s, next_attempt_at = %s,"
                      " delivered_at = NULL WHERE id = %s", (now, now, delivery_id)).rowcount == 0:
            return None
        row = fetch_one(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d LEFT JOIN events e"
                            " ON e.id = d.event_id WHERE d.id = %s", (delivery_id,))
        return None if row is None else _delivery(row)

    @operation
    def webhook_deliveries(self, db: Conn, *, endpoint_id: int | None = None, status: str | None = None,
                           before_id: int | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries newest first, filtered; page with ``before_id`` (the last id seen)."""
        where, params = ["1 = 1"], []
        for clause, value in (("d.endpoint_id = %s", endpoint_id), ("d.status = %s", status), ("d.id < %s", before_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = fetch_all(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d LEFT JOIN events e"
                             f" ON e.id = d.event_id WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT %s",
                             (*params, limit))
        return [_delivery(r) for r in rows]

    @operation
    def webhook_counts(self, db: Conn) -> dict[int, dict[str, int]]:
        """Deliveries per endpoint and status."""
        out: dict[int, dict[str, int]] = {}
        for row in fetch_all(db, "SELECT endpoint_id, status, COUNT(*) FROM webhook_deliveries"
                                 " GROUP BY endpoint_id, status"):
            out.setdefault(row[0], {})[row[1]] = row[2]
        return out
