"""The wire journal (dripd/wire_journal.py) on real files: what recovery may believe, and when not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dripd import wire_journal
from dripd.wire_journal import ACCEPTED, CLAIMED, HANDED, MAGIC, WireJournal, current_boot_id, read_journal

BOOT = "0c5d7e4a-1111-4222-8333-944455556666"


def journal_at(tmp_path: Path, boot: str = BOOT) -> WireJournal:
    return WireJournal(tmp_path / "wire.journal", boot_id=boot)


def test_the_last_line_of_each_row_is_what_recovery_reads(tmp_path: Path) -> None:
    journal = journal_at(tmp_path)
    journal.claiming((1, 10))
    journal.claiming((2, 10))
    journal.handed((1, 10))
    journal.claiming((3, 11))
    journal.handed((3, 11))
    journal.accepted((3, 11))
    journal.claiming((4, 10))  # a claim whose line was written, then killed before the transport
    journal.close()
    assert read_journal(journal.path, BOOT) == {(1, 10): HANDED, (2, 10): CLAIMED, (3, 11): ACCEPTED,
                                                (4, 10): CLAIMED}
    assert journal.path.read_text().splitlines()[0] == f"{MAGIC} {BOOT}"


def test_a_journal_from_another_boot_is_not_believed(tmp_path: Path) -> None:
    journal = journal_at(tmp_path)
    journal.claiming((1, 10))
    journal.close()
    # After a reboot its last lines may never have reached the disk: a lost W would mean a resend.
    assert read_journal(journal.path, "another-boot") is None
    assert WireJournal(journal.path, boot_id="another-boot").previous() is None
    assert read_journal(journal.path, None) is None  # no boot id to compare: nothing is believed


@pytest.mark.parametrize("content", [
    b"",  # emptied
    b"not a journal\nC 1.10\n",  # no header
    f"{MAGIC} {BOOT}\nC 1.10\nW 1.1".encode(),  # the last line without its newline: cut short
    f"{MAGIC} {BOOT}\nC 1.10\nX 2.10\n".encode(),  # unknown kind
    f"{MAGIC} {BOOT}\nC 1\n".encode(),  # not a row name
    f"{MAGIC} {BOOT}\nC \xe9.1\n".encode("latin-1"),  # not ASCII
])
def test_a_damaged_journal_is_not_believed(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "wire.journal"
    path.write_bytes(content)
    assert read_journal(path, BOOT) is None


def test_a_missing_journal_is_not_believed(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "wire.journal", BOOT) is None
    assert journal_at(tmp_path).previous() is None


def test_previous_is_the_last_run_until_this_run_writes(tmp_path: Path) -> None:
    last_run = journal_at(tmp_path)
    last_run.claiming((7, 1))
    last_run.close()
    this_run = journal_at(tmp_path)
    assert this_run.previous() == {(7, 1): CLAIMED}
    this_run.claiming((8, 1))  # its first claim starts a new file: the previous one is gone
    assert this_run.previous() is None
    this_run.close()
    assert read_journal(this_run.path, BOOT) == {(8, 1): CLAIMED}


def test_rotation_keeps_the_rows_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire_journal, "ROTATE_BYTES", 200)
    journal = journal_at(tmp_path)
    journal.claiming((1, 1))
    journal.handed((1, 1))  # on the wire, never settled
    journal.claiming((2, 1))  # claimed, waiting for the wire
    for enrollment in range(100, 160):  # many sends come and go
        journal.claiming((enrollment, 1))
        journal.handed((enrollment, 1))
        journal.accepted((enrollment, 1))
        journal.settled((enrollment, 1))
    journal.claiming((3, 1))
    assert journal.path.stat().st_size < 400  # rewritten, not grown to ~60 x 3 lines
    assert not journal.path.with_name("wire.journal.new").exists()
    journal.close()
    said = read_journal(journal.path, BOOT)
    assert said is not None
    assert said[(1, 1)] == HANDED and said[(2, 1)] == CLAIMED and said[(3, 1)] == CLAIMED
    assert all(kind == ACCEPTED for row, kind in said.items() if row[0] >= 100)  # only unsettled ones remain


def test_a_claim_after_an_unsettled_handover_writes_no_claim_line(tmp_path: Path) -> None:
    journal = journal_at(tmp_path)
    journal.claiming((1, 1))
    journal.handed((1, 1))
    # Its result was never committed (a store failure): the row may still be 'sending', and a
    # C line now would have recovery send it a second time.
    journal.claiming((1, 1))
    journal.close()
    assert read_journal(journal.path, BOOT) == {(1, 1): HANDED}


def test_a_failed_write_leaves_no_journal_to_believe(tmp_path: Path) -> None:
    journal = journal_at(tmp_path)
    journal.claiming((1, 1))
    assert journal._fd is not None
    os.close(journal._fd)  # the descriptor goes bad under it: the next write fails for real
    journal.handed((1, 1))  # a W that did not reach the file: the journal must not say C
    assert read_journal(journal.path, BOOT) is None
    journal.claiming((2, 1))  # and nothing more is written in this run
    assert read_journal(journal.path, BOOT) is None


def test_the_boot_id_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    path = tmp_path / "boot_id"
    path.write_text(BOOT + "\n")
    assert current_boot_id(path) == BOOT
    assert current_boot_id(tmp_path / "missing") is None
    if wire_journal.BOOT_ID_PATH.exists():
        assert current_boot_id() == wire_journal.BOOT_ID_PATH.read_text().strip()


def test_without_a_boot_id_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire_journal, "current_boot_id", lambda: None)
    journal = WireJournal(tmp_path / "wire.journal")
    journal.claiming((1, 1))
    assert not journal.path.exists()


def test_lines_from_a_transport_thread_stay_whole_through_rewrites(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A transport that reports its transactions (OutgoingMessage.on_wire) writes W and A lines
    # from its own thread while the event loop's thread writes C lines; rewrites happen under both.
    import threading

    monkeypatch.setattr(wire_journal, "ROTATE_BYTES", 256)
    journal = journal_at(tmp_path)
    rows = [(n, 1) for n in range(2000)]
    for row in rows[:10]:
        journal.claiming(row)

    def transport_thread() -> None:
        for row in rows:
            journal.handed(row)
            journal.accepted(row)

    worker = threading.Thread(target=transport_thread)
    worker.start()
    for row in rows[10:]:
        journal.claiming(row)  # a C after the row's A is what a retry would write: still whole lines
    worker.join()
    journal.close()
    said = read_journal(journal.path, BOOT)
    assert said is not None, "a line was cut or mixed with another"
    assert set(said) == set(rows) and set(said.values()) <= {CLAIMED, ACCEPTED}
