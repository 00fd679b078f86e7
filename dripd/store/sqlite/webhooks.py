"""Webhook endpoints and the webhook outbox. Deliveries are inserted by the ``webhook_outbox``
trigger in the same commit as their event (migration 5); these operations read what is due,
record each attempt, and serve the API. All are control-plane operations: a group commit takes
only a few of them, so webhook work never holds up a send."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from dripd.store.sqlite.connection import Conn, control_operation, fetch_all, fetch_one
from dripd.webhooks.records import ALL_KINDS, Delivery, DeliveryStatus, Endpoint, EndpointSpec, EventFacts

_ENDPOINT_COLUMNS = ("id, name, url, secret, kinds, source, enabled, disabled_reason, retry_hours,"
                     " retry_first_seconds, timeout_seconds, concurrency, created_at")
_DELIVERY_COLUMNS = ("d.id, d.endpoint_id, d.event_id, d.status, d.attempts, d.created_at, d.retry_from,"
                     " d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, e.kind")


def _kinds_column(kinds: tuple[str, ...] | None) -> str:
    return ALL_KINDS if not kinds else "," + ",".join(kinds) + ","


def _endpoint(row: sqlite3.Row) -> Endpoint:
    kinds = None if row[4] == ALL_KINDS else tuple(k for k in row[4].split(",") if k)
    return Endpoint(row[0], row[1], row[2], row[3], kinds, row[5], bool(row[6]), row[7], row[8], row[9], row[10],
                    row[11], row[12])


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(row[0], row[1], row[2], DeliveryStatus(row[3]), row[4], row[5], row[6], row[7], row[8], row[9],
                    row[10], row[11], row[12] or "")


def _spec_values(spec: EndpointSpec) -> tuple[Any, ...]:
    return (spec.url, spec.secret, _kinds_column(spec.kinds), spec.retry_hours, spec.retry_first_seconds,
            spec.timeout_seconds, spec.concurrency)


def _insert(db: Conn, spec: EndpointSpec, source: str, now: float) -> int:
    cursor = db.execute(
        "INSERT INTO webhook_endpoints (url, secret, kinds, retry_hours, retry_first_seconds, timeout_seconds,"
        " concurrency, name, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (*_spec_values(spec), spec.name, source, now, now))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


class WebhookOps:
    """Mixin of webhook operations; ``self._db`` comes from SqliteConnection."""

    # -- endpoints ------------------------------------------------------------------------------

    @control_operation
    def webhook_sync_config(self, db: Conn, specs: Sequence[EndpointSpec], now: float) -> None:
        """Make the config-defined endpoints exactly ``specs`` (by name). A changed one keeps
        its id and its deliveries; a removed one goes with its outbox; an API endpoint of the
        same name becomes the config's."""
        wanted = {spec.name for spec in specs}
        for row in fetch_all(db, "SELECT id, name FROM webhook_endpoints WHERE source = 'config'"):
            if row[1] not in wanted:
                db.execute("DELETE FROM webhook_endpoints WHERE id = ?", (row[0],))
        for spec in specs:
            found = fetch_one(db, "SELECT id, url, secret, kinds, retry_hours, retry_first_seconds, timeout_seconds,"
                                  " concurrency, source FROM webhook_endpoints WHERE name = ?", (spec.name,))
            if found is None:
                _insert(db, spec, "config", now)
            elif tuple(found[1:8]) != _spec_values(spec) or found[8] != "config":
                db.execute("UPDATE webhook_endpoints SET url = ?, secret = ?, kinds = ?, retry_hours = ?,"
                           " retry_first_seconds = ?, timeout_seconds = ?, concurrency = ?, source = 'config',"
                           " updated_at = ? WHERE id = ?", (*_spec_values(spec), now, found[0]))

    @control_operation
    def webhook_create(self, db: Conn, spec: EndpointSpec, now: float) -> Endpoint | None:
        """A new API endpoint; None if the name is taken."""
        if fetch_one(db, "SELECT 1 FROM webhook_endpoints WHERE name = ?", (spec.name,)) is not None:
            return None
        endpoint_id = _insert(db, spec, "api", now)
        row = fetch_one(db, f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?", (endpoint_id,))
        assert row is not None
        return _endpoint(row)

    @control_operation
    def webhook_endpoints(self, db: Conn) -> list[Endpoint]:
        return [_endpoint(r) for r in fetch_all(db, f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id")]

    @control_operation
    def webhook_delete(self, db: Conn, endpoint_id: int) -> bool:
        """Delete an endpoint and its outbox."""
        return db.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,)).rowcount > 0

    @control_operation
    def webhook_set_enabled(self, db: Conn, endpoint_id: int, enabled: bool, reason: str | None, now: float) -> bool:
        return db.execute("UPDATE webhook_endpoints SET enabled = ?, disabled_reason = ?, updated_at = ?"
                          " WHERE id = ?", (int(enabled), None if enabled else reason, now, endpoint_id)).rowcount > 0

    # -- the outbox -------------------------------------------------------------------------------

    @control_operation
    def webhook_due(self, db: Conn, endpoint_id: int, now: float, limit: int, skip: Sequence[int]) -> list[Delivery]:
        """Up to ``limit`` pending deliveries of an endpoint due by ``now``, oldest first, except
        ``skip`` (in flight)."""
        skipped = tuple(skip)
        marks = ",".join("?" * len(skipped))
        not_in = f" AND d.id NOT IN ({marks})" if skipped else ""
        rows = fetch_all(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d"
                             " LEFT JOIN events e ON e.id = d.event_id"
                             f" WHERE d.endpoint_id = ? AND d.status = 'pending' AND d.next_attempt_at <= ?{not_in}"
                             " ORDER BY d.next_attempt_at, d.id LIMIT ?", (endpoint_id, now, *skipped, limit))
        return [_delivery(r) for r in rows]

    @control_operation
    def webhook_next_due(self, db: Conn, exclude: Sequence[int] = ()) -> float | None:
        """When the earliest pending delivery of an enabled endpoint (not in ``exclude``) is due."""
        excluded = tuple(exclude)
        not_in = f" AND w.id NOT IN ({','.join('?' * len(excluded))})" if excluded else ""
        row = fetch_one(db, "SELECT MIN(d.next_attempt_at) FROM webhook_endpoints w"
                            " JOIN webhook_deliveries d ON d.endpoint_id = w.id AND d.status = 'pending'"
                            f" WHERE w.enabled = 1{not_in}", excluded)
        return None if row is None or row[0] is None else float(row[0])

    @control_operation
    def webhook_event(self, db: Conn, event_id: int) -> EventFacts | None:
        row = fetch_one(db, "SELECT e.id, e.kind, e.at, e.mailbox_id, e.sequence_id, s.name, e.enrollment_id,"
                            " e.contact_id, c.email, e.step_id, e.outbox_id, e.data FROM events e"
                            " LEFT JOIN sequences s ON s.id = e.sequence_id LEFT JOIN contacts c ON c.id = e.contact_id"
                            " WHERE e.id = ?", (event_id,))
        if row is None:
            return None
        return EventFacts(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                          json.loads(row[11] or "{}"))

    @control_operation
    def webhook_record(self, db: Conn, delivery_id: int, status: DeliveryStatus, at: float, http_status: int | None,
                       error: str | None, next_attempt_at: float | None) -> None:
        """One attempt's result: delivered, failed for good, or pending again at ``next_attempt_at``."""
        db.execute("UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_attempt_at = ?,"
                   " last_status = ?, last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
                   " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END WHERE id = ?",
                   (status.value, at, http_status, error, next_attempt_at, status.value, at, delivery_id))

    @control_operation
    def webhook_expire(self, db: Conn, delivery_id: int, now: float, reason: str) -> None:
        """Give up on a delivery that waited past its retry period without an attempt."""
        db.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = ? WHERE id = ? AND status = 'pending'",
                   (reason, delivery_id))

    @control_operation
    def webhook_delivery(self, db: Conn, delivery_id: int) -> Delivery | None:
        row = fetch_one(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d LEFT JOIN events e"
                            " ON e.id = d.event_id WHERE d.id = ?", (delivery_id,))
        return None if row is None else _delivery(row)

    @control_operation
    def webhook_replay(self, db: Conn, delivery_id: int, now: float) -> Delivery | None:
        """Queue a delivery again now (same webhook-id), with a fresh retry period."""
        if db.execute("UPDATE webhook_deliveries SET status = 'pending', retry_from = ?, next_attempt_at = ?,"
                      " delivered_at = NULL WHERE id = ?", (now, now, delivery_id)).rowcount == 0:
            return None
        row = fetch_one(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d LEFT JOIN events e"
                            " ON e.id = d.event_id WHERE d.id = ?", (delivery_id,))
        return None if row is None else _delivery(row)

    @control_operation
    def webhook_deliveries(self, db: Conn, *, endpoint_id: int | None = None, status: str | None = None,
                           before_id: int | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries newest first, filtered; page with ``before_id`` (the last id seen)."""
        where, params = ["1 = 1"], []
        for clause, value in (("d.endpoint_id = ?", endpoint_id), ("d.status = ?", status), ("d.id < ?", before_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = fetch_all(db, f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d LEFT JOIN events e"
                             f" ON e.id = d.event_id WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT ?",
                             (*params, limit))
        return [_delivery(r) for r in rows]

    @control_operation
    def webhook_counts(self, db: Conn) -> dict[int, dict[str, int]]:
        """Deliveries per endpoint and status."""
        out: dict[int, dict[str, int]] = {}
        for row in fetch_all(db, "SELECT endpoint_id, status, COUNT(*) FROM webhook_deliveries"
                                 " GROUP BY endpoint_id, status"):
            out.setdefault(row[0], {})[row[1]] = row[2]
        return out
