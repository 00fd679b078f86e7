"""CSV imports as jobs a client can watch, run in two passes: check everything, then enroll.

Pass one reads the upload as it streams in and checks it row by row; the checked rows go, in
batches of ``[api.limits] import_batch_rows``, to a temporary file in the state directory
(unlinked at once, so nothing is left behind). Nothing is enrolled unless the whole file is
valid (or ``skipInvalid``). Pass two reads the batches back and enrolls each in its own
transaction: the store is never held for the whole file, so the lanes' sends interleave with the
import. Memory stays bounded by the batch size, the first invalid rows and a digest per
address, whatever the file's size.

What a failed import leaves: a file refused in pass one (a bad row, too large, too slow, the
client gone) enrolls nobody. A refusal by the store in pass two (``skipInvalid`` false and, say,
a contact already enrolled or suppressed) stops the import at that batch: the batches before it
stay enrolled, and the error's ``details.enrolled`` says how many.

Each import is an ``ImportJob`` (``GET /api/imports/{id}``): its state and counters move while it
runs, so ``dripctl enroll --csv`` shows the server's progress, not only the upload's.
"""

from __future__ import annotations

import pickle
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, AsyncIterator, Callable

import trio

from dripd.api.csv_import import MAX_INVALID_REPORTED, CsvPass, CsvRows
from dripd.api.limits import ApiLimits
from dripd.errors import Conflict, DripdError, NotFound, ValidationError

if TYPE_CHECKING:
    from dripd.root import Services

KEEP_FINISHED = 50  # finished jobs kept for clients that poll late
SLICE_BYTES = 16 * 1024  # parsed between two pauses: a few milliseconds of work
# While a lane has a send in flight, an import may use this share of the event loop; the rest
# is left to the sends (bench/bench_import.py measures sends/s with and without an import).
IMPORT_SHARE = 0.25


class Pacer:
    """Pauses the import between slices of work: after ``w`` seconds of work it sleeps
    ``w * (1 - share) / share`` when a lane has a send in flight, else only yields."""

    def __init__(self, busy: Callable[[], bool], share: float = IMPORT_SHARE) -> None:
        self._busy = busy
        self._share = share
        self._since = trio.current_time()

    async def pause(self) -> None:
        worked = trio.current_time() - self._since
        if worked > 0 and self._busy():
            await trio.sleep(worked * (1 - self._share) / self._share)
        else:
            await trio.lowlevel.checkpoint()
        self._since = trio.current_time()


@dataclass
class ImportJob:
    id: str
    sequence_id: int
    started_at: float
    state: str = "receiving"  # receiving -> enrolling -> done | failed
    bytes_received: int = 0
    rows: int = 0
    invalid: int = 0
    enrolled: int = 0
    skipped: int = 0
    error: str | None = None
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "sequenceId": self.sequence_id, "state": self.state, "bytes": self.bytes_received,
                "rows": self.rows, "invalid": self.invalid, "enrolled": self.enrolled, "skipped": self.skipped,
                "error": self.error, "startedAt": self.started_at, "finishedAt": self.finished_at}


class ImportJobs:
    """The daemon's imports: every running one, and the last ``KEEP_FINISHED`` finished."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._counter = 0

    def create(self, sequence_id: int, wanted: str | None, now: float) -> ImportJob:
        if wanted is None:
            self._counter += 1
            wanted = f"import-{self._counter}"
            while wanted in self._jobs:
                self._counter += 1
                wanted = f"import-{self._counter}"
        elif wanted in self._jobs:
            raise Conflict(f"import {wanted} already exists; choose another importId", details={"importId": wanted})
        job = ImportJob(wanted, sequence_id, now)
        self._jobs[wanted] = job
        finished = [key for key, j in self._jobs.items() if j.finished_at is not None]
        for key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[key]
        return job

    def get(self, job_id: str) -> ImportJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no import {job_id}", details={"importId": job_id})
        return job

    def all(self) -> list[ImportJob]:
        return list(self._jobs.values())


def _finish(job: ImportJob, state: str, now: float, error: str | None = None) -> None:
    job.state, job.finished_at, job.error = state, now, error


async def run_import(services: "Services", job: ImportJob, stream: AsyncIterator[bytes], limits: ApiLimits,
                     *, skip_invalid: bool) -> dict[str, Any]:
    """Check, then enroll, the CSV ``stream`` into ``job.sequence_id``; the API's answer."""
    clock = services.clock
    try:
        with tempfile.TemporaryFile(dir=services.config.daemon.state_dir, prefix="import-") as spool:
            rows = CsvRows(keep=True, max_chars=limits.string_chars)
            reader = CsvPass(rows)
            scheduler = services.scheduler
            pacer = Pacer(scheduler.sending)
            job.state = "receiving"
            async for chunk in stream:
                job.bytes_received += len(chunk)
                for start in range(0, len(chunk), SLICE_BYTES):
                    reader.feed(chunk[start:start + SLICE_BYTES])
                    _spool_batches(rows, spool, limits.import_batch_rows)
                    job.rows, job.invalid = rows.total, rows.invalid_count
                    await pacer.pause()
            reader.feed(b"", final=True)
            _spool_batches(rows, spool, limits.import_batch_rows, final=True)
            job.rows, job.invalid = rows.total, rows.invalid_count
            if rows.invalid_count and not skip_invalid:
                bad = rows.invalid[0]
                more = f" (and {rows.invalid_count - 1} more)" if rows.invalid_count > 1 else ""
                error = ValidationError("csv", f"line {bad['line']}: {bad['field']}: {bad['rule']}{more}; "
                                               "nothing was enrolled")
                error.details.update(line=bad["line"], invalid=rows.invalid, invalidCount=rows.invalid_count)
                raise error
            job.state = "enrolling"
            spool.seek(0)
            skipped = await _enroll(services, job, spool, skip_invalid, pacer)
    except DripdError as exc:
        _finish(job, "failed", clock.now(), exc.message)
        exc.details.setdefault("importId", job.id)
        raise
    except BaseException:
        _finish(job, "failed", clock.now(), "the import was interrupted")
        raise
    _finish(job, "done", clock.now())
    return {"importId": job.id, "rows": rows.total, "enrolled": job.enrolled, "skipped": skipped,
            "skippedCount": job.skipped, "invalid": rows.invalid, "invalidCount": rows.invalid_count}


def _spool_batches(rows: CsvRows, spool: IO[bytes], size: int, *, final: bool = False) -> None:
    """Move the checked rows to the spool in batches of ``size`` (at the end, the rest): pass
    two enrolls them as they are, without parsing or checking them again."""
    while len(rows.valid) >= size or (final and rows.valid):
        batch, rows.valid = rows.valid[:size], rows.valid[size:]
        lines = {pos: rows.lines.pop(pos) for pos, _, _ in batch}
        # Our own rows, in a private unlinked file: pickle is safe here and the cheapest to read back.
        pickle.dump((batch, lines), spool, protocol=pickle.HIGHEST_PROTOCOL)


async def _enroll(services: "Services", job: ImportJob, spool: IO[bytes], skip_invalid: bool,
                  pacer: Pacer) -> list[dict[str, Any]]:
    skipped: list[dict[str, Any]] = []
    while True:
        try:
            batch, lines = pickle.load(spool)
        except EOFError:
            return skipped
        try:
            result = await services.control.bulk_enroll(job.sequence_id, batch, strict=not skip_invalid)
        except DripdError as exc:
            for refused in exc.details.get("refused", []):
                refused["line"] = lines.get(refused.pop("pos"))
            exc.details["enrolled"] = job.enrolled
            raise
        job.enrolled += result.enrolled
        job.skipped += len(result.skipped)
        room = MAX_INVALID_REPORTED - len(skipped)
        skipped.extend({"line": lines.get(s["pos"]), "email": s["email"], "reason": s["reason"],
                        "message": s["message"]} for s in result.skipped[:max(0, room)])
        await pacer.pause()  # the lanes run between batches
