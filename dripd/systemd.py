"""sd_notify written against the protocol: one datagram to ``$NOTIFY_SOCKET`` per message."""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address: str | None = None
        if address:
            # A leading '@' names an abstract socket (sd_notify(3)).
            self._address = "\0" + address[1:] if address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> None:
        if self._address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto("\n".join(fields).encode(), self._address)
            except OSError:
                pass  # the manager went away; nothing useful to do


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd asked for, in seconds (None when not asked)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


SD_LISTEN_FDS_START = 3


def listen_fds() -> list[int]:
    """Sockets systemd passed to this process (sd_listen_fds(3)): LISTEN_FDS counted from fd 3,
    honoured only when LISTEN_PID names us, so a child never takes its parent's sockets."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
