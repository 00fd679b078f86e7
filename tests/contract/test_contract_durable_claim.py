"""A claim returned by ``claim_send`` is on disk: a process killed right after it (SIGKILL, no
chance to flush or close) leaves the row 'sending', so the restarted daemon resolves it instead of
sending the step again. (SIGKILL is not a power cut: the SQLite backend's fsync of claim groups is
checked in sqlite/test_group_commit.py.)"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import trio
import trio_asyncio

from dripd.store import Refused
from tests.contract.support import RecordingSink, open_backend

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from pathlib import Path

import trio
import trio_asyncio

from tests.contract.support import T0, RecordingSink, active_sequence, enroll_one, open_backend


async def main() -> None:
    async with trio_asyncio.open_loop():
        store = await open_backend(sys.argv[1], Path(sys.argv[2]), RecordingSink())
        sequence, steps = await active_sequence(store)
        enrollment = await enroll_one(store, sequence.id)
        claim = await store.claim_send(enrollment, steps[0].id, "sales", "<crash@example.com>", "s", T0)
        print(f"claimed {claim.outbox_id} {enrollment} {steps[0].id}", flush=True)
        await trio.sleep_forever()  # "calling the transport" when the process dies


trio.run(main)
"""


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"the child did not claim within {timeout}s: {process.stderr.read() if process.stderr else ''}")
    return process.stdout.readline()


def test_a_claim_survives_the_process_being_killed(backend: str, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", CHILD, backend, str(tmp_path)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = read_line(process, 60)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    _, outbox_id, enrollment, step_id = line.split()

    async def reopen() -> None:
        async with trio_asyncio.open_loop():
            store = await open_backend(backend, tmp_path, RecordingSink())
            try:
                [row] = await store.outbox_in_state("sending")
                assert (row.id, row.message_id, row.enrollment_id) == (int(outbox_id), "<crash@example.com>", int(enrollment))
                again = await store.claim_send(int(enrollment), int(step_id), "sales", "<again@example.com>", "s", 1.0)
                assert again is Refused.IN_LEDGER
            finally:
                await store.close()

    trio.run(reopen)
