"""A Unix-socket proxy in front of the test PostgreSQL server, to cut ONE node off the database.

libpq's ``host=DIR`` means the socket ``DIR/.s.PGSQL.5432``; a node given the proxy's directory
reaches the real server through it. ``freeze()`` is a network partition as a node sees it: its
open connections stop answering (bytes go nowhere) and new ones are accepted but never answered,
so the node's queries hang until its own timeouts fire. ``thaw()`` heals it: the frozen
connections are closed (as a real partition's broken TCP sessions would be) and new ones work.
"""

from __future__ import annotations

import selectors
import socket
import threading
from pathlib import Path

SOCKET_NAME = ".s.PGSQL.5432"


class PgProxy:
    def __init__(self, server_socket_dir: Path, proxy_dir: Path) -> None:
        proxy_dir.mkdir(parents=True, exist_ok=True)
        proxy_dir.chmod(0o755)
        self.dir = proxy_dir
        self._target = str(server_socket_dir / SOCKET_NAME)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(proxy_dir / SOCKET_NAME))
        self._listener.listen(64)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._limbo: list[socket.socket] = []
        self._frozen = False
        self._thaw_requested = False
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="pg-proxy", daemon=True)
        self._thread.start()

    def url(self, server_url: str, server_socket_dir: Path) -> str:
        return server_url.replace(f"host={server_socket_dir}", f"host={self.dir}")

    def freeze(self) -> None:
        with self._lock:
            self._frozen = True

    def thaw(self) -> None:
        with self._lock:
            self._frozen = False
            self._thaw_requested = True

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        for sock in [self._listener, *self._peers, *self._limbo]:
            sock.close()

    def _drop(self, selector: selectors.BaseSelector, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self._peers.pop(s, None)
            try:
                selector.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def _loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        while not self._stop:
            with self._lock:
                frozen, thaw, self._thaw_requested = self._frozen, self._thaw_requested, False
            if thaw:
                for sock in list(self._peers):
                    self._drop(selector, sock)
                for sock in self._limbo:
                    sock.close()
                self._limbo.clear()
            for key, _ in selector.select(0.02):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    client, _ = self._listener.accept()
                    if frozen:
                        self._limbo.append(client)  # accepted, never answered
                        continue
                    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        upstream.connect(self._target)
                    except OSError:
                        client.close()
                        upstream.close()
                        continue
                    self._peers[client], self._peers[upstream] = upstream, client
                    selector.register(client, selectors.EVENT_READ)
                    selector.register(upstream, selectors.EVENT_READ)
                    continue
                if frozen:
                    continue  # bytes stay in the kernel's buffers: nothing answers
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                peer = self._peers.get(sock)
                if not data or peer is None:
                    self._drop(selector, sock)
                    continue
                try:
                    peer.sendall(data)
                except OSError:
                    self._drop(selector, sock)
            if frozen:
                threading.Event().wait(0.02)  # readable sockets would make select spin
        selector.close()
