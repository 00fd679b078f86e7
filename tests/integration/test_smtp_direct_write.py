"""PipeliningProtocol.write: on a plain TCP connection the bytes go to the socket with a write
that lets go of the GIL, and whatever the socket does not take at once queues in the transport;
either way the server reads every byte once, in the order written. A real uvloop loop and a
real TCP server on loopback, reading in a thread of its own (TLS is checked end to end by
test_smtp_transport's TLS tests: the server would not read a byte that bypassed TLS)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import uvloop

from dripd_smtp.pipelining import PipeliningProtocol


class Reader:
    """What the server read, and a way to wait until it has read at least so many bytes."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.done = threading.Event()
        self._more = threading.Condition()

    def add(self, chunk: bytes) -> None:
        with self._more:
            self.received.extend(chunk)
            self._more.notify_all()

    def wait_for(self, size: int) -> bool:
        with self._more:
            return self._more.wait_for(lambda: len(self.received) >= size, timeout=30)


@contextmanager
def reading_server() -> Iterator[tuple[int, Reader]]:
    """A server that reads everything sent to it until the client closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    reader = Reader()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            while chunk := connection.recv(1 << 20):
                reader.add(chunk)
        reader.done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], reader
    finally:
        listener.close()
        thread.join(timeout=10)


def run(port: int, scenario: Callable[[PipeliningProtocol], Awaitable[None]]) -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        _, protocol = await loop.create_connection(lambda: PipeliningProtocol(loop=loop), "127.0.0.1", port)
        assert isinstance(protocol, PipeliningProtocol) and protocol.transport is not None
        await scenario(protocol)
        protocol.transport.close()  # after its queue is written
        while not protocol._connection_lost:
            await asyncio.sleep(0.001)

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(main(loop))
    finally:
        loop.close()


def test_a_write_behind_queued_bytes_waits_for_them() -> None:
    # The first piece is bigger than the socket buffers: part of it queues in the transport.
    # With the loop held up, the server reads all the socket took; the next piece, were it
    # written straight to the socket now, would overtake the queued rest of the first.
    first, second = os.urandom(16 * 1024 * 1024), b"MAIL FROM:<a@example.com>\r\n"

    with reading_server() as (port, reader):
        async def scenario(protocol: PipeliningProtocol) -> None:
            assert protocol.transport is not None
            protocol.write(first)
            queued = protocol.transport.get_write_buffer_size()
            assert queued > 0
            assert reader.wait_for(len(first) - queued)  # blocks the loop: nothing more is written
            protocol.write(second)

        run(port, scenario)
        assert reader.done.wait(30)
    assert len(reader.received) == len(first) + len(second)
    assert bytes(reader.received) == first + second


def test_small_writes_go_straight_to_the_socket() -> None:
    lines = [b"EHLO client\r\n", b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", b"x\r\n.\r\n"]

    async def scenario(protocol: PipeliningProtocol) -> None:
        assert protocol.transport is not None
        assert protocol._direct is not None and protocol._direct[0] is protocol.transport
        for line in lines:
            protocol.write(line)
            # Taken by the socket in the call itself: nothing was left to the transport.
            assert protocol.transport.get_write_buffer_size() == 0

    with reading_server() as (port, reader):
        run(port, scenario)
        assert reader.done.wait(30)
    assert bytes(reader.received) == b"".join(lines)
