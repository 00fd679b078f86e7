"""hypercorn's trio worker with every listener and every connection isolated from the daemon.

``hypercorn.trio.serve`` runs each connection in a task of the serving nursery, so an exception
escaping one connection cancels the listener, then the daemon's nursery: all sending stops. That
happened on the Unix socket (issue 20.1): a client sends headers and part of a body, then
closes. h11 raises ``RemoteProtocolError`` at the early EOF and hypercorn answers 400
(``H11Protocol._send_error_response``). On a Unix socket the first write to a closed peer
fails at once with EPIPE (on TCP it succeeds and only a later one fails, which is why TCP never
crashed); ``TCPServer.protocol_send`` turns that into ``Closed``, the request's task reacts by
closing the connection, and ``TCPServer._close`` calls ``stream.send_eof()`` without the send
lock. trio's ``SocketStream.send_eof`` holds the stream's send-conflict detector across a
checkpoint, so the error response's next ``send_all`` (from the reading task) meets it and
raises ``trio.BusyResourceError``, which ``protocol_send`` does not catch.

The work-around has two layers: ``_GuardedTCPServer`` treats that ``BusyResourceError`` as the
peer being gone (the connection is closing, there is nobody to send to), and ``serve`` below
runs each connection behind a handler that logs any other exception and closes only that
connection, and accepts on each listener in its own loop that logs and goes on, so no error in a
listener's connection handling can end the daemon. Otherwise this follows
``hypercorn.trio.run.worker_serve`` (hypercorn 0.18): lifespan, graceful shutdown on the trigger,
``graceful_timeout`` for the connections still open.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState, Framework, LifespanState
from hypercorn.utils import repr_socket_addr, wrap_app

log = logging.getLogger("dripd.api")

# accept() errors that mean "out of file descriptors or buffers for now": wait, then accept again.
_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
ACCEPT_RETRY_SECONDS = 0.1


class _GuardedTCPServer(TCPServer):
    """hypercorn's connection, with the Unix-socket race above read as a closed peer."""

    async def protocol_send(self, event: Event) -> None:
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:
            # Only send_eof (the connection closing) sends outside the send lock: the peer is
            # gone or going, so this data has nowhere to go, like a BrokenResourceError.
            await self.protocol.handle(Closed())


async def _connection(make: Callable[[trio.SocketStream], Awaitable[None]], name: str,
                      stream: trio.SocketStream) -> None:
    """One connection; whatever it raises is logged and ends this connection only."""
    try:
        await make(stream)
    except Exception as exc:  # noqa: BLE001 - isolation is the point: nothing reaches the nursery
        log.warning("%s: a connection failed and was closed: %s: %s", name, type(exc).__name__, exc, exc_info=exc)
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)


async def _accept_loop(listener: trio.SocketListener, name: str, handler_nursery: trio.Nursery,
                       make: Callable[[trio.SocketStream], Awaitable[None]]) -> None:
    """Accepts until cancelled or the listener is closed; an accept error never ends it."""
    while True:
        try:
            stream = await listener.accept()
        except trio.ClosedResourceError:
            return
        except OSError as exc:
            level = logging.WARNING if exc.errno in _CAPACITY_ERRNOS else logging.ERROR
            log.log(level, "%s: accept failed (%s); accepting again", name, exc)
            await trio.sleep(ACCEPT_RETRY_SECONDS)
            continue
        except Exception as exc:  # noqa: BLE001 - the listener outlives any one failure
            log.error("%s: accept failed: %s: %s; accepting again", name, type(exc).__name__, exc, exc_info=exc)
            await trio.sleep(ACCEPT_RETRY_SECONDS)
            continue
        handler_nursery.start_soon(_connection, make, name, stream)


async def serve(app: Framework, config: Config, *, shutdown_trigger: Callable[..., Awaitable[Any]],
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """``hypercorn.trio.serve`` for plain HTTP listeners, isolated as described above; the
    binds it serves go to ``task_status`` once listening. Returns after a graceful shutdown."""
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            sockets = config.create_sockets()
            listeners: list[tuple[str, trio.SocketListener]] = []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                bind = f"http://{repr_socket_addr(sock.family, sock.getsockname())}"
                listeners.append((bind, trio.SocketListener(trio.socket.from_stdlib_socket(sock))))

            async def make(stream: trio.SocketStream) -> None:
                # hypercorn types the stream as SSL and probes it (AttributeError: plain socket).
                await _GuardedTCPServer(wrapped, config, context, ConnectionState(lifespan_state.copy()),
                                        cast("trio.SSLStream[trio.SocketStream]", stream))

            try:
                async with trio.open_nursery() as accepting:
                    for bind, listener in listeners:
                        accepting.start_soon(_accept_loop, listener, bind, server_nursery, make)
                    task_status.started([bind for bind, _ in listeners])
                    await shutdown_trigger()
                    accepting.cancel_scope.cancel()
            finally:
                for _, listener in listeners:
                    with trio.CancelScope(shield=True):
                        await listener.aclose()
                # Idle keep-alive connections close now; busy ones get graceful_timeout to finish.
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()

