"""The wire journal: which ledger claims this process handed to a transport (issue 14).

A lane claims sends ahead of the wire (dripd/send_slots.py): up to ``concurrency`` rows per lane
are committed 'sending' while they wait for a connection. After a kill -9 the ledger alone cannot
tell such a row from one the transport was sending, so recovery would call every one of them
uncertain and never send it. This file tells them apart. A ledger row is named by its enrollment
and step (``<enrollment id>.<step id>``, unique in the ledger and known before the claim), and one
line is appended per event with ``os.write`` on an ``O_APPEND`` descriptor:

- ``C <row>`` right before the claim is issued, so no committed claim can be missing its line,
- ``W <row>`` right before the message is handed to the transport, or, for a transport that
  queues the messages it is handed and reports each transaction (``reports_on_wire``, the SMTP
  transport), right before its transaction could deliver it (``OutgoingMessage.on_wire``, written
  from the transport's thread: before its first command, or before its content when its
  envelope went out pipelined behind the message before it), and
- ``A <row>`` when the server accepted it (the transport answered ``accepted``, or reported it
  with ``on_accepted``), before the send gives up its place and long before its result is
  committed.

At the next start (dripd/recovery.py), a row still 'sending' whose last line is ``C`` was claimed
by the previous run and never reached a transport (or waited in one and never began a
transaction): it is released and sent (it never left). One whose last line is ``A`` is recorded
sent. One whose last line is ``W`` may have reached the server and keeps the old rules (the
transport's lookup, else uncertain or ``resend_uncertain``); so does a row the journal does not
name (a database brought from elsewhere): the journal acts only on positive evidence. So a kill
-9 leaves at most ``concurrency`` uncertain rows per lane (at most ``connections`` where the
transport reports its transactions), the sends that were on the wire, plus any the server had
refused whose result was not yet committed (a refusal writes no line: rare, and uncertain as
before). A retry claims its row again: the last line is what counts.

**Why no fsync.** The journal must survive a crash of the *process* (kill -9, OOM, a bug), not of
the machine: whatever ``write()`` returned for is in the kernel's page cache and reaches the file
whether or not the process lives on. fsyncing each line would put a second disk flush on every
send, the very wait that claiming ahead takes off the wire.

**Why a new boot id means distrust.** A power cut or a reboot loses the page cache: the last lines
(a ``W`` among them) may never have reached the disk, and a row whose ``W`` was lost would look
never-sent and go out twice. So the file starts with the kernel's boot id
(/proc/sys/kernel/random/boot_id) and is believed only in the boot that wrote it; after a reboot,
or when the file is missing, unreadable or malformed, every row falls back to the old rules.

The file is rewritten (atomically, by rename) with only the rows still in flight once it passes
``ROTATE_BYTES``. Recovery reads the previous run's file before this run writes its own, which
starts at its first claim; a cluster node keeps none (a mailbox taken over with its lease had its
rows claimed elsewhere).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("dripd.wire_journal")

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
MAGIC = "dripd-wire-journal 1"
ROTATE_BYTES = 1 << 20  # ~30,000 sends between rewrites
CLAIMED, HANDED, ACCEPTED = "C", "W", "A"

Row = tuple[int, int]  # (enrollment id, step id): one ledger row


def current_boot_id(path: Path = BOOT_ID_PATH) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def read_journal(path: Path, boot_id: str | None) -> dict[Row, str] | None:
    """Each row the previous run's file at ``path`` names -> the kind of its last line; None when
    the file cannot be trusted (missing, unreadable, malformed, or written in another boot)."""
    if boot_id is None:
        return None
    try:
        lines = path.read_bytes().decode("ascii").split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if lines[0] != f"{MAGIC} {boot_id}" or lines[-1] != "":
        return None  # another boot's, or a line without its newline (what was cut may be a W)
    last: dict[Row, str] = {}
    for line in lines[1:-1]:
        kind, _, name = line.partition(" ")
        enrollment, _, step = name.partition(".")
        if kind not in (CLAIMED, HANDED, ACCEPTED) or not enrollment.isdigit() or not step.isdigit():
            return None
        last[(int(enrollment), int(step))] = kind
    return last


class WireJournal:
    """This run's journal at ``path``: created at the first claim (after recovery has read the
    previous run's), appended to without fsync, never raising into the send path."""

    def __init__(self, path: Path, boot_id: str | None = None) -> None:
        self.path = path
        self.boot_id = boot_id if boot_id is not None else current_boot_id()
        self._fd: int | None = None
        self._size = 0
        self._in_flight: dict[Row, str] = {}  # row -> its last line's kind, until its result is committed
        self._broken = self.boot_id is None  # no boot id: nothing could trust the file
        # ``handed`` may come from a transport's own thread (``OutgoingMessage.on_wire``): one
        # writer at a time keeps the lines whole and the rewrite's snapshot consistent.
        self._lock = threading.Lock()

    def previous(self) -> dict[Row, str] | None:
        """What the previous run's file says (``read_journal``); read before this run writes."""
        return read_journal(self.path, self.boot_id) if self._fd is None else None

    def claiming(self, row: Row) -> None:
        with self._lock:
            if self._in_flight.get(row, CLAIMED) == CLAIMED:
                self._append(row, CLAIMED)
        # Else it was handed over earlier in this run and its result never committed (a store
        # failure): it may still be 'sending', and a C now would have recovery send it again.
        # Without the line, a claim made now counts as handed over: uncertain at worst.

    def handed(self, row: Row) -> None:
        with self._lock:
            self._append(row, HANDED)

    def accepted(self, row: Row) -> None:
        with self._lock:
            self._append(row, ACCEPTED)

    def settled(self, row: Row) -> None:
        """The row's claim came to nothing or its result is committed: it is no longer 'sending'
        and is left out of the next rewrite."""
        with self._lock:
            self._in_flight.pop(row, None)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _append(self, row: Row, kind: str) -> None:
        """Under ``_lock``."""
        if self._broken:
            return
        self._in_flight[row] = kind
        try:
            if self._fd is None or self._size >= ROTATE_BYTES:
                self._rewrite()
            else:
                line = f"{kind} {row[0]}.{row[1]}\n".encode()
                if os.write(self._fd, line) != len(line):
                    raise OSError("short write")
                self._size += len(line)
        except OSError as exc:
            self._give_up(exc)

    def _rewrite(self) -> None:
        """A new file with the header and the rows still in flight, put in place by rename: a
        kill at any moment leaves either the old file or the whole new one."""
        lines = "".join(f"{kind} {e}.{s}\n" for (e, s), kind in self._in_flight.items())
        data = f"{MAGIC} {self.boot_id}\n{lines}".encode()
        temporary = self.path.with_name(self.path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(f"short write to {temporary}")
            os.replace(temporary, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._close()
        self._fd, self._size = fd, len(data)

    def _give_up(self, exc: OSError) -> None:
        """A line could not be written: the file may now miss a ``W`` and must never be believed.
        Make it unreadable as a journal (emptied, else removed) and stop writing for this run;
        recovery then uses the old rules for every row."""
        self._broken = True
        log.error("wire journal %s: %s; after a crash, the rows in flight will count as uncertain", self.path, exc)
        emptied = False
        try:
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
                emptied = True
        except OSError:
            pass
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            if not emptied:
                    log.critical("wire journal %s can be neither emptied nor removed: delete it before restarting "
                             "dripd", self.path)
        try:
            self._close()
        except OSError:
            pass
