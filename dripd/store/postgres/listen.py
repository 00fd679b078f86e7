"""LISTEN/NOTIFY: wake a node's lane when an enrollment of its mailbox became due sooner.

Writers send ``NOTIFY dripd_due, '<mailbox_id>'`` in the transaction that made work runnable
(``sql.notify_due``: enroll, start/resume, a sequence edit moving contacts to another mailbox);
PostgreSQL delivers it at COMMIT to every session listening. ``listen_due`` keeps one such
session per node on a worker thread and calls ``on_due(mailbox_id)`` on the trio side. It is a
hint, not the source of truth: a notification lost while the session was down is covered by the
lanes' polling, and the session reconnects after a pause.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import psycopg
import trio

log = logging.getLogger("dripd.store")

CHANNEL = "dripd_due"
_POLL_SECONDS = 0.5  # how often the listening thread looks up from its wait to see if it should stop
_RECONNECT_SECONDS = 2.0


def _listen_loop(connect: Callable[[], "psycopg.Connection[Any]"], on_due: Callable[[str], None],
                 token: trio.lowlevel.TrioToken, stop: threading.Event) -> None:
    """Worker thread: hold a LISTEN session and forward each payload until ``stop`` is set."""
    while not stop.is_set():
        try:
            conn = connect()
        except psycopg.Error as exc:
            log.warning("LISTEN %s: cannot connect (%s); lanes keep polling", CHANNEL, str(exc).splitlines()[0])
            stop.wait(_RECONNECT_SECONDS)
            continue
        try:
            conn.execute(f"LISTEN {CHANNEL}")
            while not stop.is_set():
                for notify in conn.notifies(timeout=_POLL_SECONDS):
                    try:
                        token.run_sync_soon(on_due, notify.payload)
                    except trio.RunFinishedError:
                        return  # the daemon is gone; this abandoned thread just ends
        except psycopg.Error as exc:
            if not stop.is_set():
                log.warning("LISTEN %s: session lost (%s); reconnecting", CHANNEL, str(exc).splitlines()[0])
                stop.wait(_RECONNECT_SECONDS)
        finally:
            conn.close()


async def listen_due(connect: Callable[[], "psycopg.Connection[Any]"], on_due: Callable[[str], None],
                     *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled: ``on_due(mailbox_id)`` (called on the trio thread) for every
    notification. Started with ``nursery.start``, it reports started at once: the database
    being down must not hold up a node's start (its lanes poll meanwhile)."""
    stop = threading.Event()
    token = trio.lowlevel.current_trio_token()
    task_status.started()
    try:
        # Abandoned on cancel: the thread sees ``stop`` within _POLL_SECONDS and closes its
        # session itself. Not counted in ``offloaded``: it waits for notifications by design.
        await trio.to_thread.run_sync(_listen_loop, connect, on_due, token, stop, abandon_on_cancel=True)
    finally:
        stop.set()
